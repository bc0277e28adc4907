"""Classifiers brought as weights (``classifiers.weights.<arch>: [file, ...]``, one file per
replicate): read, checked against the architecture, evaluated on the study's splits and written
as the project's ``model.pt``, so every criterion runs on them as on the workflow's own.

A file is a ``state_dict`` saved with ``torch.save`` (also inside a dict under ``state_dict`` or
``model``, as training scripts and Lightning save them; keys prefixed ``module.`` by
``DataParallel`` are accepted), a TorchScript file (``torch.jit.save``: its parameters and
buffers are read by name, so the scripted model must be the torchvision architecture), or a
``model.pt`` of this project. Its head must have two outputs (normal, abnormal).
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from salaudit.models.architectures import build_model, get_architecture
from salaudit.registry import ModelError


def _torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/constants.pkl") or name.startswith("code/") or "/code/" in name
                       for name in archive.namelist())
    except zipfile.BadZipFile:
        return False


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file (see the module docstring), by name; `ModelError` naming the
    file when it holds none."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such weights file")
    try:
        if _torchscript(path):
            with warnings.catch_warnings():  # torch.jit is deprecated; the files teams have are not
                warnings.simplefilter("ignore", FutureWarning)
                return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - whatever the unpickler meets, the file is not weights
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        raise ModelError(f"{path}: not a torch weights file ({reason})") from None
    for key in ("state_dict", "model"):
        if isinstance(payload, dict) and isinstance(payload.get(key), dict):
            payload = payload[key]
    if not isinstance(payload, dict) or not payload or not all(torch.is_tensor(v) for v in payload.values()):
        raise ModelError(f"{path}: holds no state_dict (a dict of tensors by parameter name)")
    if all(k.startswith("module.") for k in payload):
        payload = {k[len("module."):]: v for k, v in payload.items()}
    return payload


def load_weights(path: str | Path, arch: str, channels: int | None = None) -> nn.Module:
    """``arch`` with the weights of ``path`` (strict: every tensor present, nothing left over, the
    same shapes), in eval mode on the CPU. One-line `ModelError`s name the file and what is wrong."""
    state = read_state_dict(path)
    head = get_architecture(arch).head
    out = state.get(f"{head}.weight")
    if out is not None and out.ndim == 2 and out.shape[0] != 2:
        raise ModelError(f"{path}: {arch} weights with {out.shape[0]} output classes at {head}; the audit needs 2 "
                         "(normal, abnormal)")
    model = build_model(arch, channels=channels)
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = ([f"{len(missing)} missing (e.g. {missing[0]})"] if missing else []) + \
                ([f"{len(unexpected)} unexpected (e.g. {unexpected[0]})"] if unexpected else [])
        raise ModelError(f"{path}: not {arch} weights: {', '.join(parts)} tensors")
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if shapes:
        k = shapes[0]
        hint = (" (a grey model: set classifiers.preprocess." + arch + ".channels: 1)"
                if state[k].ndim == 4 and state[k].shape[1] == 1 and own[k].shape[1] == 3 else "")
        raise ModelError(f"{path}: not {arch} weights: {len(shapes)} tensors of another shape, e.g. {k} "
                         f"{tuple(state[k].shape)} instead of {tuple(own[k].shape)}{hint}")
    model.load_state_dict({k: v for k, v in state.items()}, strict=False)
    return model.eval()


def evaluate(model: nn.Module, images, labels, splits, fold: int, input_spec: dict, device: torch.device,
             batch_size: int) -> tuple[dict, "np.ndarray"]:
    """The metrics a trained fold gets (``metrics.json``: validation and test AUROC on the fold's
    rows of the study's split, no training: ``best_epoch`` and ``epochs_run`` 0) and the test
    probabilities (``predictions.csv``)."""
    import time
    from functools import partial

    import numpy as np

    from salaudit.datasets.splits import fold_indices
    from salaudit.models import training
    from salaudit.models.architectures import preprocess
    from salaudit.models.classifier import auroc

    began = time.perf_counter()
    _, val_idx, test_idx = fold_indices(splits, fold)
    labels = np.asarray(labels)
    model = model.to(device)
    prep = partial(preprocess, spec=input_spec)
    val = training.predict_proba(model, images, val_idx, batch_size, device, prep)
    test = training.predict_proba(model, images, test_idx, batch_size, device, prep)
    metrics = {"val_auroc": auroc(labels[val_idx], val), "test_auroc": auroc(labels[test_idx], test),
               "permuted_labels": False, "best_epoch": 0, "epochs_run": 0, "train_seconds": 0.0,
               "seconds": round(time.perf_counter() - began, 2), "device": str(device),
               "n_train": 0, "n_val": len(val_idx), "n_test": len(test_idx)}
    return metrics, test
