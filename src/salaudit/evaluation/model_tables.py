"""Tables of model quality: classifier AUROC per fold (from each ``metrics.json``), localizer
AUPRC of the evaluation images against the average mask's (from each ``maps.npy``).

Dataset, model and fold come from each file's place in the results layout (`model_of`:
``{results}/{dataset}/models|localizers/{name}/fold{k}/``, `salaudit.layout`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from salaudit import files, layout
from salaudit.evaluation import metrics

CLASSIFIER_COLUMNS = ["dataset", "arch", "fold", "val_auroc", "test_auroc", "best_epoch", "epochs_run",
                      "train_images_per_s", "seconds", "device"]
LOCALIZER_COLUMNS = ["dataset", "localizer", "fold", "n_eval", "mean_auprc", "average_mask_auprc", "n_degenerate"]


def model_of(path: str | Path) -> tuple[str, str, int]:
    """(dataset, model name, fold) of ``{results}/{dataset}/{models|localizers}/{name}/fold{k}/{file}``."""
    parts = Path(path).parts
    if len(parts) < 5 or not parts[-2].startswith("fold") or not parts[-2][4:].isdigit():
        raise ValueError(f"{path}: not in the results layout {{dataset}}/models|localizers/{{name}}/fold{{k}}/")
    return parts[-5], parts[-3], int(parts[-2][4:])


def classifier_rows(paths):
    for path in paths:
        dataset, arch, fold = model_of(path)
        m = json.loads(Path(path).read_text())
        yield {"dataset": dataset, **{k: m.get(k) for k in CLASSIFIER_COLUMNS if k != "dataset"}, "arch": arch,
               "fold": fold}


def localizer_rows(results: str | Path, paths):
    by_dataset = {}
    for path in paths:
        by_dataset.setdefault(model_of(path)[0], []).append(path)
    for dataset, map_paths in by_dataset.items():
        masks = files.load_npy(layout.path(layout.MASKS, results, dataset=dataset))
        eval_idx = pd.read_csv(layout.path(layout.EVAL_IMAGES, results, dataset=dataset))["index"].to_numpy()
        truth = masks[eval_idx]
        average = files.load_npy(layout.path(layout.AVERAGE_MASK, results, dataset=dataset), mmap=False)
        baseline = [metrics.auprc(average, t) for t in truth]
        for path in map_paths:
            _, localizer, fold = model_of(path)
            maps = files.load_npy(path, mmap=False)
            scores = [metrics.auprc(m, t) for m, t in zip(maps, truth)]
            degenerate = sum(float(m.max()) == float(m.min()) for m in maps)  # e.g. no detection painted
            yield {"dataset": dataset, "localizer": localizer, "fold": fold, "n_eval": len(maps),
                   "mean_auprc": float(np.nanmean(scores)), "average_mask_auprc": float(np.nanmean(baseline)),
                   "n_degenerate": int(degenerate)}
