"""Tables of model quality (rule ``summarize_models``; the work: `salaudit.evaluation.model_tables`).

    python scripts/summarize_models.py --results results \
        --classifier-metrics results/siim/models/inception_v3/fold0/metrics.json ... \
        --localizer-maps results/siim/localizers/unet/fold0/maps.npy ... \
        --out-classifiers results/tables/classifiers.csv --out-localizers results/tables/localizers.csv

Reads the given classifier metrics.json files and localizer maps (and only those: the folders
of an earlier configuration are not summarized), with, for each dataset of a localizer, the
average mask and the masks of the evaluation images. Dataset, model and fold come from each
file's place in the results layout (``{results}/{dataset}/models|localizers/{name}/fold{k}/``).
Prints the per-dataset means.
"""

import argparse
import sys
from pathlib import Path

import pandas as pd

from salaudit import layout
from salaudit.evaluation.model_tables import CLASSIFIER_COLUMNS, LOCALIZER_COLUMNS, classifier_rows, localizer_rows


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default=layout.RESULTS)
    parser.add_argument("--classifier-metrics", nargs="*", default=[], help="metrics.json of each classifier")
    parser.add_argument("--localizer-maps", nargs="*", default=[], help="maps.npy of each localizer")
    parser.add_argument("--out-classifiers", required=True)
    parser.add_argument("--out-localizers", required=True)
    return parser


def main(args):
    results = args.results
    try:
        classifiers = pd.DataFrame(list(classifier_rows(args.classifier_metrics)), columns=CLASSIFIER_COLUMNS)
        localizers = pd.DataFrame(list(localizer_rows(results, args.localizer_maps)), columns=LOCALIZER_COLUMNS)
    except (OSError, ValueError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    for path, table in ((args.out_classifiers, classifiers), (args.out_localizers, localizers)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)
    if not classifiers.empty:
        print(classifiers.groupby(["dataset", "arch"])[["val_auroc", "test_auroc"]].mean().round(3).to_string())
    if not localizers.empty:
        print(localizers.groupby(["dataset", "localizer"])[["mean_auprc", "average_mask_auprc", "n_degenerate"]]
              .mean().round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
