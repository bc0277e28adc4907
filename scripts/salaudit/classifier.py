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

from . import models, seeds, training


@dataclass
class TrainSettings:
    arch: str
    fold: int
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 3
    augment: bool = True
    seed: int = 0
    pretrained: str | None = None
    memory_format: str = "auto"  # training.memory_format: auto, channels_last or contiguous


def fold_indices(splits: pd.DataFrame, fold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Array indices (rows of splits.csv = rows of the arrays) of train, validation and test."""
    folds = splits["fold"].to_numpy()
    is_test = (splits["split"] == "test").to_numpy()
    if fold not in set(folds[~is_test]):
        raise ValueError(f"fold {fold} is not in splits (folds: {sorted(set(folds[~is_test]))})")
    train = np.flatnonzero(~is_test & (folds != fold))
    val = np.flatnonzero(~is_test & (folds == fold))
    return train, val, np.flatnonzero(is_test)


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
    log=print,
    checkpoint_seconds: float = training.CHECKPOINT_SECONDS,
) -> tuple[nn.Module, dict, np.ndarray]:
    """Train one fold. Returns the best model (on ``device``), metrics, test probabilities.

    ``checkpoint_seconds``: how often the resumable training state is saved (`training.fit`)."""
    began = time.perf_counter()
    models.check_image_size(settings.arch, images.shape[-1])
    train_idx, val_idx, test_idx = fold_indices(splits, settings.fold)
    stream = ("train_classifier", settings.arch, settings.fold)  # salaudit.seeds: one stream per model
    torch.manual_seed(seeds.derive(settings.seed, *stream, "init"))
    fmt = training.memory_format(settings.memory_format, settings.arch, device)
    model = models.build_model(settings.arch, pretrained=settings.pretrained).to(device, memory_format=fmt)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    targets = torch.tensor(np.asarray(labels), dtype=torch.long)
    log(f"{settings.arch} fold {settings.fold}: {len(train_idx)} train, {len(val_idx)} val, "
        f"{len(test_idx)} test images of {images.shape[-1]} px on {device}")

    def train_epoch(epoch: int) -> dict:
        began_epoch = time.perf_counter()
        generator = training.epoch_generator(settings.seed, *stream, epoch)
        training.restart_batchnorm_statistics(model)
        order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
        total, count = 0.0, 0
        for start in range(0, len(order), settings.batch_size):
            batch = order[start:start + settings.batch_size]
            if len(batch) < 2:  # BatchNorm cannot train on a single image
                continue
            x = models.preprocess(images[np.sort(batch)])
            y = targets[np.sort(batch)]
            if settings.augment:
                x = training.augment(x, generator)
            x, y = x.to(device, memory_format=fmt), y.to(device)
            optimizer.zero_grad(set_to_none=True)
            with training.autocast(device):
                loss = loss_fn(model(x).float(), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
            count += len(batch)
        return {"loss": total / max(count, 1), "img_per_s": round(count / (time.perf_counter() - began_epoch))}

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
        "val_auroc": result.best_score, "test_auroc": auroc(labels[test_idx], test_probs),
        "best_epoch": result.best_epoch + 1, "epochs_run": len(result.history),
        "train_seconds": round(result.seconds, 2), "seconds": round(time.perf_counter() - began, 2),
        "train_images_per_s": round(trained_images / max(result.seconds, 1e-9), 2),
        "device": str(device), "memory_format": "channels_last" if fmt == torch.channels_last else "contiguous",
        "n_train": len(train_idx), "n_val": len(val_idx), "n_test": len(test_idx),
        "history": result.history,
    }
    return model, metrics, test_probs

