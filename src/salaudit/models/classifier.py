"""Training one classifier fold: fold k trains on the other folds, selects its epoch on fold k.

The held-out test split is only predicted, after selection, for ``predictions.csv`` and
the test AUROC in ``metrics.json``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from salaudit import models, seeds
from salaudit.datasets.splits import fold_indices
from salaudit.models import training


@dataclass
class TrainSettings:
    """One classifier's training settings; `from_config` takes them from the validated config
    (``classifiers``, ``seed``): the schema owns the defaults."""

    arch: str
    fold: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    patience: int
    augment: bool
    seed: int
    pretrained: str | None
    memory_format: str  # training.memory_format: auto, channels_last or contiguous
    permuted_labels: bool  # the data randomization test: the fold pool's labels permuted (`permute_labels`)

    @classmethod
    def from_config(cls, config: dict, arch: str, fold: int, permuted_labels: bool = False) -> "TrainSettings":
        c = config["classifiers"]
        return cls(arch=arch, fold=fold, epochs=c["epochs"], batch_size=c["batch_size"], lr=c["lr"],
                   weight_decay=c["weight_decay"], patience=c["patience"], augment=c["augment"], seed=config["seed"],
                   pretrained=c["pretrained"].get(arch), memory_format=c["memory_format"],
                   permuted_labels=permuted_labels)


def permute_labels(labels: np.ndarray, splits: pd.DataFrame, seed: int, fold: int) -> np.ndarray:
    """The labels with those of the fold pool (every ``train`` row: training and validation of
    every fold) permuted among themselves, from the stream ``(seed, "permute_labels", fold)``;
    test labels unchanged, so the test AUROC measures what the model learned of the truth."""
    labels = np.asarray(labels).copy()
    pool = np.flatnonzero(splits["split"].to_numpy() == "train")
    labels[pool] = labels[pool][seeds.rng(seed, "permute_labels", fold).permutation(len(pool))]
    return labels


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUROC of binary ``labels`` (1 = positive), NaN when only one class is present (never raises).

    The Mann-Whitney form: the probability that a positive outranks a negative, ties counting
    half (midranks), which equals sklearn's ``roc_auc_score``. Written in numpy because importing
    sklearn took a second of every training job's start-up.
    """
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ordered = scores[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]  # start of each run of equal scores
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(ordered)]
    midranks = np.repeat((starts + ends + 1) / 2.0, ends - starts)  # 1-based average rank of each run
    ranks = np.empty_like(midranks)
    ranks[order] = midranks
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    splits: pd.DataFrame,
    settings: TrainSettings,
    state_path: str | Path,
    device: torch.device,
    log,
    checkpoint_seconds: float = training.CHECKPOINT_SECONDS,
) -> tuple[nn.Module, dict, np.ndarray]:
    """Train one fold. Returns the best model (on ``device``), metrics, test probabilities.

    ``checkpoint_seconds``: how often the resumable training state is saved (`training.fit`)."""
    began = time.perf_counter()
    models.check_image_size(settings.arch, images.shape[-1])
    train_idx, val_idx, test_idx = fold_indices(splits, settings.fold)
    true_labels = np.asarray(labels)
    if settings.permuted_labels:
        labels = permute_labels(true_labels, splits, settings.seed, settings.fold)
    stream = ("train_classifier", settings.arch, settings.fold)  # salaudit.seeds: one stream per model
    torch.manual_seed(seeds.derive(settings.seed, *stream, "init"))
    fmt = training.memory_format(settings.memory_format, settings.arch, device)
    model = models.build_model(settings.arch, pretrained=settings.pretrained).to(device, memory_format=fmt)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    targets = torch.tensor(np.asarray(labels), dtype=torch.long)
    log(f"{settings.arch} fold {settings.fold}: {len(train_idx)} train, {len(val_idx)} val, "
        f"{len(test_idx)} test images of {images.shape[-1]} px on {device}")

    def make_batch(rows, generator):
        x, y = models.preprocess(images[rows]), targets[rows]
        return (training.augment(x, generator) if settings.augment else x), y

    def train_epoch(epoch: int) -> dict:
        return training.run_epoch(model, optimizer, train_idx, settings.batch_size,
                                  training.epoch_generator(settings.seed, *stream, epoch), make_batch,
                                  lambda x, y: loss_fn(model(x).float(), y), device,
                                  lambda: training.autocast(device), fmt, log=log)

    def validate() -> tuple[float, float]:
        probs = training.predict_proba(model, images, val_idx, settings.batch_size, device, models.preprocess, fmt)
        y = labels[val_idx]
        eps = 1e-7
        nll = -np.mean(y * np.log(probs + eps) + (1 - y) * np.log(1 - probs + eps))
        return auroc(y, probs), -float(nll)  # equal AUROCs: the lower validation loss wins

    result = training.fit(
        model, optimizer, train_epoch, validate, epochs=settings.epochs, patience=settings.patience,
        state_path=state_path, settings={**asdict(settings), "n_images": len(images), "size": images.shape[-1]},
        log=log, score_name="val_auroc", checkpoint_seconds=checkpoint_seconds,
    )
    test_probs = training.predict_proba(model, images, test_idx, settings.batch_size, device, models.preprocess, fmt)
    trained_images = sum(len(train_idx) for _ in result.history)
    metrics = {
        "arch": settings.arch, "fold": settings.fold,
        "val_auroc": result.best_score, "test_auroc": auroc(true_labels[test_idx], test_probs),
        "permuted_labels": settings.permuted_labels,
        "best_epoch": result.best_epoch + 1, "epochs_run": len(result.history),
        "train_seconds": round(result.seconds, 2), "seconds": round(time.perf_counter() - began, 2),
        "train_images_per_s": round(trained_images / max(result.seconds, 1e-9), 2),
        "device": str(device), "memory_format": "channels_last" if fmt == torch.channels_last else "contiguous",
        "n_train": len(train_idx), "n_val": len(val_idx), "n_test": len(test_idx),
        "history": result.history,
    }
    return model, metrics, test_probs

