"""A synthetic results tree in the README's contracts, for the evaluation scripts' tests.

Two methods with known behaviour:
* ``good``: the mask, blurred, plus a little per-model noise - localizes (beats the average
  mask), is repeatable and reproducible, and its fully randomized maps are noise (far less
  similar to the trained map than trained maps of different images are to each other);
* ``random``: uniform noise drawn independently for every model and step - must fail all four.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import uniform_filter

ARCHS = ("arch_a", "arch_b")
FOLDS = (0, 1, 2)
STEPS = {"arch_a": ["01_fc", "02_block2", "03_block1"]}
METHODS = ("good", "random")


def rectangle_masks(n: int, size: int, rng) -> np.ndarray:
    masks = np.zeros((n, size, size), np.uint8)
    for mask in masks:
        h, w = rng.integers(size // 6, size // 3, size=2)
        r, c = rng.integers(0, size - h), rng.integers(0, size - w)
        mask[r:r + h, c:c + w] = 1
    return masks


def save_maps(path: Path, maps: np.ndarray, flags: np.ndarray | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, maps.astype(np.float16))
    np.save(path.with_suffix(".flags.npy"), np.zeros(len(maps), bool) if flags is None else flags)


def good_maps(truth, rng, noise=0.05):
    maps = uniform_filter(truth.astype(np.float64), size=(1, 3, 3)) + noise * rng.random(truth.shape)
    return np.clip(maps / maps.max(axis=(1, 2), keepdims=True), 0, 1)


def write_tree(results: Path, dataset: str = "siim", n_eval: int = 12, size: int = 32, seed: int = 0,
               localizer: str = "unet", empty_mask: bool = False, constant_map: bool = False,
               methods=METHODS, archs=ARCHS, folds=FOLDS, steps=None, modes=("cascade",)) -> dict:
    """Write one dataset's inputs of score.py; return what the test needs to know.

    Every method but ``random`` behaves like ``good``.
    """
    steps = STEPS if steps is None else steps
    rng = np.random.default_rng(seed)
    root = results / dataset
    n_images = n_eval + 8
    masks = rectangle_masks(n_images, size, rng)
    eval_index = np.arange(4, 4 + n_eval)
    if empty_mask:
        masks[eval_index[1]] = 0
    (root / "data").mkdir(parents=True, exist_ok=True)
    np.save(root / "data" / "masks.npy", masks)
    np.save(root / "data" / "images.npy", (rng.random((n_images, size, size)) * 255).astype(np.uint8))
    pd.DataFrame({"source": ["bad.dcm"], "reason": ["truncated"]}).to_csv(root / "data" / "rejected.csv", index=False)
    ids = [f"img{i:03d}" for i in eval_index]
    pd.DataFrame({"index": eval_index, "image_id": ids}).to_csv(root / "eval_images.csv", index=False)
    (root / "baselines").mkdir(parents=True, exist_ok=True)
    # average of the non-evaluation masks: a broad, weak prior
    np.save(root / "baselines" / "average_mask.npy", masks[:4].mean(axis=0).astype(np.float32) * 0.5 + 0.1)
    truth = masks[eval_index]
    for fold in folds:
        path = root / "localizers" / localizer / f"fold{fold}" / "maps.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, good_maps(truth, rng).astype(np.float16))
        for arch in archs:
            base = root / "maps" / arch / f"fold{fold}"
            for method in methods:
                if method == "random":
                    save_maps(base / method / "trained.npy", rng.random(truth.shape))
                    continue
                good = good_maps(truth, rng)
                flags = np.zeros(n_eval, bool)
                if constant_map and arch == archs[0] and fold == 0:
                    good[0], flags[0] = 0.0, True  # a degenerate (constant) map, stored as zeros
                save_maps(base / method / "trained.npy", good, flags)
            labels = np.repeat([0, 1], 5)
            model = root / "models" / arch / f"fold{fold}"
            model.mkdir(parents=True, exist_ok=True)
            pd.DataFrame({"image_id": [f"t{i}" for i in range(10)], "label": labels,
                          "prob": np.clip(0.3 * labels + 0.7 * rng.random(10), 0, 1)}).to_csv(
                model / "predictions.csv", index=False)
            for step in steps.get(arch, []):
                for method, mode in ((m, mode) for m in methods for mode in modes):
                    save_maps(base / method / mode / f"{step}.npy", rng.random(truth.shape))
    return {"root": root, "ids": ids, "truth": truth}


def score_args(results: Path, dataset: str = "siim", localizer: str = "unet", random_pairs: int = 10, seed: int = 0,
               modes=("cascade",)):
    steps = [f"{arch}={','.join(labels)}" for arch, labels in STEPS.items()]
    return ["--results", str(results), "--dataset", dataset, "--methods", *METHODS, "--archs", *ARCHS,
            "--folds", *map(str, FOLDS), "--localizer", localizer, "--steps", *steps,
            "--random-folds", *map(str, FOLDS), "--modes", *modes, "--random-pairs", str(random_pairs),
            "--seed", str(seed), "--out", str(results / dataset / "scores")]
