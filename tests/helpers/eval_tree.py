"""A synthetic results tree in the README's contracts, for the evaluation scripts' tests.

Methods with known behaviour:
* ``GOOD``: the mask, blurred, over a faint structure shared by every image, plus a little
  per-model noise - localizes (beats the average mask), is repeatable and reproducible, and its randomized maps (every step of every mode, and
  the replicate retrained on permuted labels) are noise: it must pass every criterion;
* the four controls, each drawn as the registry's control of that name behaves:
  ``random`` (uniform noise for every model and step), ``smooth_random`` (a 4 x 4 random field
  per model, step and image, upsampled), ``edge`` (a fixed map per image, the same for every
  model and step: it does not depend on the model), ``prior`` (the average mask for every image,
  model and step). Each must get the verdicts of ``registry.CONTROL_MUST_FAIL``.

The scripts read which maps exist from ``--settings`` (the config), whose schema only knows the
registry's methods and whose randomization steps come from the registry: the tree therefore uses
real ids (``grad`` stands for the good method; ``tiny_cnn`` is the randomized architecture) but
no network ever runs.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import uniform_filter

from salaudit import registry

ARCHS = ("tiny_cnn", "densenet121")  # the first is randomized (its steps: STEPS)
FOLDS = (0, 1, 2)
STEPS = {ARCHS[0]: registry.step_labels(ARCHS[0])}
GOOD = "grad"
METHODS = (GOOD, *registry.CONTROLS)
LABEL_MODELS = ((ARCHS[0], 0),)  # (arch, fold) retrained on permuted labels
# a dataset's format decides its localizer (masks: unet, boxes: retinanet)
FORMAT = {localizer: fmt for fmt, localizer in registry.FORMAT_LOCALIZER.items()}


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


def good_maps(truth, rng, noise=0.05, shared=0.15):
    """The blurred mask, plus a faint structure every image shares (as real maps share the body's
    outline: it makes maps of different images rank-correlated) and a little noise."""
    structure = shared * np.linspace(0, 1, truth.shape[-1])[None, None, :]
    maps = uniform_filter(truth.astype(np.float64), size=(1, 3, 3)) + structure + noise * rng.random(truth.shape)
    return np.clip(maps / maps.max(axis=(1, 2), keepdims=True), 0, 1)


def smooth_field(shape, rng):
    """A 4 x 4 uniform random field per map, upsampled (nearest, then a box blur) to ``shape``."""
    n, size = shape[0], shape[1]
    field = np.kron(rng.random((n, 4, 4)), np.ones((size // 4, size // 4)))
    return uniform_filter(field, size=(1, size // 4, size // 4))


def control_maps(method, truth, prior, edges, rng):
    """The maps of a control for one model (or randomized model): see the module docstring."""
    if method == "random":
        return rng.random(truth.shape)
    if method == "smooth_random":
        return smooth_field(truth.shape, rng)
    if method == "edge":
        return edges
    return np.broadcast_to(prior, truth.shape)  # prior


def write_tree(results: Path, dataset: str = "siim", n_eval: int = 12, size: int = 32, seed: int = 0,
               localizer: str = "unet", empty_mask: bool = False, constant_map: bool = False,
               methods=METHODS, archs=ARCHS, folds=FOLDS, steps=None, modes=("cascade",),
               label_models=LABEL_MODELS) -> dict:
    """Write one dataset's inputs of score.py; return what the test needs to know."""
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
    pd.DataFrame({"image_id": ["left_out"], "reason": ["not in split file"]}).to_csv(root / "data" / "excluded.csv",
                                                                                      index=False)
    all_ids = [f"img{i:03d}" for i in range(n_images)]
    pd.DataFrame({"image_id": all_ids, "label": (masks.reshape(n_images, -1).max(axis=1) > 0).astype(int)}).to_csv(
        root / "data" / "manifest.csv", index=False)
    test = np.isin(np.arange(n_images), eval_index)  # the evaluation images are the test set here
    pd.DataFrame({"image_id": all_ids, "split": np.where(test, "test", "train"),
                  "fold": np.where(test, -1, np.arange(n_images) % len(folds))}).to_csv(root / "splits.csv", index=False)
    ids = [f"img{i:03d}" for i in eval_index]
    pd.DataFrame({"index": eval_index, "image_id": ids}).to_csv(root / "eval_images.csv", index=False)
    (root / "baselines").mkdir(parents=True, exist_ok=True)
    # average of the non-evaluation masks: a broad, weak prior
    average = masks[:4].mean(axis=0).astype(np.float32) * 0.5 + 0.1
    np.save(root / "baselines" / "average_mask.npy", average)
    truth = masks[eval_index]
    prior = (average - average.min()) / (average.max() - average.min())
    edges = rng.random(truth.shape)  # any map of the image alone
    for fold in folds:
        path = root / "localizers" / localizer / f"fold{fold}" / "maps.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, good_maps(truth, rng).astype(np.float16))
        for arch in archs:
            base = root / "maps" / arch / f"fold{fold}"
            for method in methods:
                if method in registry.CONTROLS:
                    save_maps(base / method / "trained.npy", control_maps(method, truth, prior, edges, rng))
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
            def randomized(method):  # the maps of a randomized model: noise, or the control's own
                if method in registry.CONTROLS:
                    return control_maps(method, truth, prior, edges, rng)
                return rng.random(truth.shape)

            for step in steps.get(arch, []):
                for method, mode in ((m, mode) for m in methods for mode in modes):
                    save_maps(base / method / mode / f"{step}.npy", randomized(method))
            if (arch, fold) in label_models:
                for method in methods:
                    save_maps(base / method / "label_randomized.npy", randomized(method))
    return {"root": root, "ids": ids, "truth": truth}


def settings(datasets: dict[str, str], seed: int = 0, modes=("cascade",), label_models=LABEL_MODELS,
             **evaluation) -> dict:
    """The config keys the evaluation scripts read (``--settings``) for trees of ``write_tree``:
    ``datasets`` maps each dataset to its localizer; ``evaluation``: keys of ``evaluation``."""
    labels = {"archs": sorted({a for a, _ in label_models}), "folds": sorted({f for _, f in label_models})}
    return {"seed": seed, "folds": len(FOLDS), "classifiers": {"archs": list(ARCHS)},
            "saliency": {"methods": list(METHODS),
                         "randomization": {"archs": list(STEPS), "folds": list(FOLDS), "modes": list(modes)}},
            "evaluation": {**evaluation, "label_randomization": labels},
            "datasets": {name: {"format": FORMAT[localizer]} for name, localizer in datasets.items()}}


def score_args(results: Path, dataset: str = "siim", localizer: str = "unet", random_pairs: int = 10, seed: int = 0,
               modes=("cascade",), label_models=LABEL_MODELS):
    config = settings({dataset: localizer}, seed=seed, modes=modes, label_models=label_models,
                      random_pairs=random_pairs)
    return ["--results", str(results), "--dataset", dataset, "--out", str(results / dataset / "scores"),
            "--settings", json.dumps(config)]


def aggregate_args(results: Path, datasets: dict[str, str], classifiers: Path, modes=("cascade",),
                   label_models=LABEL_MODELS, **evaluation):
    """aggregate.py's arguments: ``datasets`` as in `settings`; the outputs under ``results``."""
    return ["--results", str(results), "--classifier-table", str(classifiers), "--scorecard", str(results / "scorecard.csv"),
            "--scorecard-md", str(results / "tables" / "scorecard.md"), "--tables", str(results / "tables"),
            "--settings", json.dumps(settings(datasets, modes=modes, label_models=label_models, **evaluation))]


def figures_args(results: Path, datasets: dict[str, str], out: Path, modes=("cascade",), label_models=LABEL_MODELS):
    """figures.py's arguments; the example model is the first randomized one (ARCHS[0], fold 0)."""
    return ["--results", str(results), "--tables", str(results / "tables"), "--out", str(out),
            "--settings", json.dumps(settings(datasets, modes=modes, label_models=label_models))]
