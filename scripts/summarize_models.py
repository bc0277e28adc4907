"""Tables of model quality: classifier AUROC per fold, localizer AUPRC vs the average mask.

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
    parser.add_argument("--classifier-metrics", nargs="*", default=[], help="metrics.json of each classifier")
    parser.add_argument("--localizer-maps", nargs="*", default=[], help="maps.npy of each localizer")
    parser.add_argument("--out-classifiers", required=True)
    parser.add_argument("--out-localizers", required=True)
    return parser


def model_of(path: str | Path) -> tuple[str, str, int]:
    """(dataset, model name, fold) of ``{results}/{dataset}/{models|localizers}/{name}/fold{k}/{file}``."""
    parts = Path(path).parts
    if len(parts) < 5 or not parts[-2].startswith("fold") or not parts[-2][4:].isdigit():
        raise SystemExit(f"{path}: not in the results layout {{dataset}}/models|localizers/{{name}}/fold{{k}}/")
    return parts[-5], parts[-3], int(parts[-2][4:])


def classifier_rows(paths):
    for path in paths:
        dataset, arch, fold = model_of(path)
        m = json.loads(Path(path).read_text())
        yield {"dataset": dataset, **{k: m.get(k) for k in CLASSIFIER_COLUMNS if k != "dataset"}, "arch": arch,
               "fold": fold}


def localizer_rows(results: Path, paths):
    by_dataset = {}
    for path in paths:
        by_dataset.setdefault(model_of(path)[0], []).append(path)
    for dataset, files in by_dataset.items():
        masks = np.load(results / dataset / "data" / "masks.npy", mmap_mode="r")
        eval_idx = pd.read_csv(results / dataset / "eval_images.csv")["index"].to_numpy()
        truth = masks[eval_idx]
        average = np.load(results / dataset / "baselines" / "average_mask.npy")
        baseline = [metrics.auprc(average, t) for t in truth]
        for path in files:
            _, localizer, fold = model_of(path)
            maps = np.load(path)
            scores = [metrics.auprc(m, t) for m, t in zip(maps, truth)]
            degenerate = sum(float(m.max()) == float(m.min()) for m in maps)  # e.g. no detection painted
            yield {"dataset": dataset, "localizer": localizer, "fold": fold, "n_eval": len(maps),
                   "mean_auprc": float(np.nanmean(scores)), "average_mask_auprc": float(np.nanmean(baseline)),
                   "n_degenerate": int(degenerate)}


def main(args):
    results = Path(args.results)
    classifiers = pd.DataFrame(list(classifier_rows(args.classifier_metrics)), columns=CLASSIFIER_COLUMNS)
    localizers = pd.DataFrame(list(localizer_rows(results, args.localizer_maps)), columns=LOCALIZER_COLUMNS)
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
