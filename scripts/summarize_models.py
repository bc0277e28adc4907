"""Tables of model quality: classifier AUROC per fold, localizer AUPRC vs the average mask.

    python scripts/summarize_models.py --results results --datasets siim rsna \
        --out-classifiers results/tables/classifiers.csv --out-localizers results/tables/localizers.csv

Reads the metrics.json files of the classifiers and, for each dataset, the localizer maps,
the average mask and the masks of the evaluation images. Prints the per-dataset means.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from salaudit import metrics

CLASSIFIER_COLUMNS = ["dataset", "arch", "fold", "val_auroc", "test_auroc", "best_epoch", "epochs_run",
                      "train_images_per_s", "seconds", "device"]
LOCALIZER_COLUMNS = ["dataset", "localizer", "fold", "n_eval", "mean_auprc", "average_mask_auprc", "n_degenerate"]


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results")
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--out-classifiers", required=True)
    parser.add_argument("--out-localizers", required=True)
    return parser


def classifier_rows(results: Path, dataset: str):
    for path in sorted((results / dataset / "models").glob("*/fold*/metrics.json")):
        m = json.loads(path.read_text())
        yield {"dataset": dataset, **{k: m.get(k) for k in CLASSIFIER_COLUMNS if k != "dataset"}}


def localizer_rows(results: Path, dataset: str):
    masks = np.load(results / dataset / "data" / "masks.npy", mmap_mode="r")
    eval_idx = pd.read_csv(results / dataset / "eval_images.csv")["index"].to_numpy()
    truth = masks[eval_idx]
    average = np.load(results / dataset / "baselines" / "average_mask.npy")
    baseline = [metrics.auprc(average, t) for t in truth]
    for path in sorted((results / dataset / "localizers").glob("*/fold*/maps.npy")):
        maps = np.load(path)
        scores = [metrics.auprc(m, t) for m, t in zip(maps, truth)]
        degenerate = sum(float(m.max()) == float(m.min()) for m in maps)  # e.g. no detection painted
        yield {"dataset": dataset, "localizer": path.parent.parent.name, "fold": int(path.parent.name[4:]),
               "n_eval": len(maps), "mean_auprc": float(np.nanmean(scores)),
               "average_mask_auprc": float(np.nanmean(baseline)), "n_degenerate": int(degenerate)}


def main(args):
    results = Path(args.results)
    classifiers = pd.DataFrame([r for d in args.datasets for r in classifier_rows(results, d)], columns=CLASSIFIER_COLUMNS)
    localizers = pd.DataFrame([r for d in args.datasets for r in localizer_rows(results, d)], columns=LOCALIZER_COLUMNS)
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
