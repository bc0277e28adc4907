"""Training one localizer fold (train on folds != k, select the epoch on fold k) through the
epoch loop every model shares (`salaudit.models.training`), and its maps of the evaluation images.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from salaudit import models, seeds
from salaudit.datasets.splits import fold_indices
from salaudit.models import training
from salaudit.models.localizers.io import box_masks, boxes_from_masks
from salaudit.models.localizers.networks import LocalizerSettings, check_settings, get_localizer


def predict_maps(model: nn.Module, localizer: str, images: np.ndarray, indices, batch_size: int,
                 device: torch.device | str) -> np.ndarray:
    """float16 ``[len(indices), S, S]`` maps in [0, 1] for ``images[indices]``, in ``indices`` order."""
    spec = get_localizer(localizer)
    device = torch.device(device)
    indices = np.asarray(indices, dtype=np.int64)
    size = images.shape[-1]
    out = np.zeros((len(indices), size, size), dtype=np.float16)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            batch = indices[start:start + batch_size]
            x = models.preprocess(images[batch]).to(device)
            with training.autocast(device) if spec.use_autocast else nullcontext():
                maps = spec.maps(model, x)
            out[start:start + len(batch)] = maps.float().clamp(0, 1).cpu().numpy().astype(np.float16)
    return out


# --------------------------------------------------------------------------------------- train

def train_localizer(
    images: np.ndarray,
    masks: np.ndarray,
    boxes: list[np.ndarray],
    splits: pd.DataFrame,
    settings: LocalizerSettings,
    state_path: str | Path,
    device: torch.device,
    log,
    checkpoint_seconds: float = training.CHECKPOINT_SECONDS,
) -> tuple[nn.Module, dict]:
    """Train one fold (train on folds != k, select the epoch on fold k). Returns the best model
    (on ``device``) and metrics. ``boxes[i]`` are the ``[K, 4]`` boxes of image ``i``;
    ``checkpoint_seconds``: how often the resumable training state is saved (`training.fit`)."""
    began = time.perf_counter()
    spec = get_localizer(settings.localizer)
    size = images.shape[-1]
    if images.shape != masks.shape or images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images {images.shape} and masks {masks.shape} must both be [N, S, S]")
    if len(boxes) != len(images):
        raise ValueError(f"{len(boxes)} box lists for {len(images)} images")
    check_settings(settings, size)
    train_idx, val_idx, _ = fold_indices(splits, settings.fold)
    has_mask = np.asarray(masks.reshape(len(masks), -1).max(axis=1) > 0)
    val_pos = val_idx[has_mask[val_idx]]
    if len(val_pos) == 0:
        raise ValueError(f"fold {settings.fold} has no validation image with a mask: nothing to select on")
    stream = ("train_localizer", settings.localizer, settings.fold)  # salaudit.seeds: one stream per model
    torch.manual_seed(seeds.derive(settings.seed, *stream, "init"))
    model = spec.build(settings, size).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    amp = (lambda: training.autocast(device)) if spec.use_autocast else nullcontext
    log(f"{settings.localizer} fold {settings.fold}: {len(train_idx)} train ({int(has_mask[train_idx].sum())} with "
        f"lesions), {len(val_idx)} val ({len(val_pos)} with lesions) images of {size} px on {device}")

    def make_batch(rows, generator):
        x = models.preprocess(images[rows])
        y = torch.from_numpy(np.asarray(masks[rows], dtype=np.float32)).unsqueeze(1)
        batch_boxes = [torch.from_numpy(boxes[i]) for i in rows] if spec.uses_boxes else None
        if settings.augment and spec.uses_boxes:
            # Boxes get the images' shift through one mask channel per box (then their extent).
            per_box = box_masks([boxes[i] for i in rows], size)
            x, shifted = training.augment(x, generator, masks=torch.cat([y, per_box], dim=1))
            y, batch_boxes = shifted[:, :1], boxes_from_masks(shifted[:, 1:], [len(boxes[i]) for i in rows])
        elif settings.augment:
            x, y = training.augment(x, generator, masks=y)
        return x, y, batch_boxes

    def train_epoch(epoch: int) -> dict:
        return training.run_epoch(model, optimizer, train_idx, settings.batch_size,
                                  training.epoch_generator(settings.seed, *stream, epoch), make_batch,
                                  lambda x, y, b: spec.loss(model, x, y, b), device, amp, log=log)

    def validate() -> float:
        maps = predict_maps(model, settings.localizer, images, val_pos, settings.batch_size, device)
        return spec.score(maps, masks[val_pos])

    result = training.fit(
        model, optimizer, train_epoch, validate, epochs=settings.epochs, patience=settings.patience,
        state_path=state_path, settings={**asdict(settings), "n_images": len(images), "size": size},
        log=log, score_name=spec.score_name, checkpoint_seconds=checkpoint_seconds,
    )
    trained_images = len(train_idx) * len(result.history)
    summary = {
        "localizer": settings.localizer, "fold": settings.fold,
        "score_name": spec.score_name, "val_score": result.best_score,
        "best_epoch": result.best_epoch + 1, "epochs_run": len(result.history),
        "train_seconds": round(result.seconds, 2), "seconds": round(time.perf_counter() - began, 2),
        "train_images_per_s": round(trained_images / max(result.seconds, 1e-9), 2),
        "device": str(device), "n_train": len(train_idx), "n_val": len(val_idx), "n_val_lesion": len(val_pos),
        "history": result.history,
    }
    return model, summary
