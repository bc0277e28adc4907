"""One checkpoint format for every trained model, classifier or localizer: ``model.pt``.

A dict saved with ``torch.save``:

* ``kind``: ``classifier`` or ``localizer``; ``name``: its architecture (`salaudit.registry`) or
  localizer (`salaudit.models.localizers`);
* ``state_dict``: every tensor on the CPU, contiguous (a model trained channels-last is saved in
  the layout every loader expects);
* ``settings``: the training settings (the dataclass as a dict: fold, seed, ...);
* ``image_size``: S of the ``[B, 3, S, S]`` inputs it was trained on; ``preprocessing``: how;
* ``input``: what the model takes (`salaudit.models.architectures.input_spec`: channels, range,
  mean, std), absent for the project's own preprocessing; ``imported``: for a classifier brought
  as weights (classifiers.weights), the file and its sha256;
* ``versions``: python, torch, torchvision, numpy; then whatever the trainer adds (``metrics``).

`load_checkpoint` rebuilds either kind. Checkpoints written before this format (a classifier's
``arch`` key, a localizer's ``localizer`` key) still load.
"""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import torch
from torch import nn

from salaudit import files
from salaudit.models.architectures import PREPROCESSING, build_model
from salaudit.registry import ModelError

KINDS = ("classifier", "localizer")


def library_versions() -> dict[str, str]:
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": np.__version__}


def save_checkpoint(path: str | Path, model: nn.Module, kind: str, name: str, settings: dict, image_size: int,
                    **meta) -> None:
    """Write ``model.pt`` (the format above); ``meta``: more entries (e.g. ``metrics``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown checkpoint kind {kind!r}; known: {', '.join(KINDS)}")
    payload = {
        "kind": kind,
        "name": name,
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "settings": dict(settings),
        "image_size": int(image_size),
        "preprocessing": PREPROCESSING,
        "versions": library_versions(),
        **meta,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)


def _kind_and_name(payload: dict, path) -> tuple[str, str]:
    if payload.get("kind") in KINDS:
        return payload["kind"], payload["name"]
    if "arch" in payload:  # before the common format
        return "classifier", payload["arch"]
    if "localizer" in payload:
        return "localizer", payload["localizer"]
    raise ModelError(f"{path}: not a saliency-audit checkpoint (no 'kind')")


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict]:
    """The model of a ``model.pt`` (either kind) in eval mode on CPU, and everything saved
    beside it (``meta["kind"]``, ``meta["name"]``, ``meta["settings"]``, ...)."""
    files.check_zip(path)  # cut short: one line naming it and the rule that remakes it
    payload = torch.load(path, map_location="cpu", weights_only=False)
    kind, name = _kind_and_name(payload, path)
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    meta.update(kind=kind, name=name)
    if kind == "localizer":
        from salaudit.models.localizers.networks import LocalizerSettings, build_localizer

        model = build_localizer(LocalizerSettings.from_dict(payload["settings"]), payload["image_size"])
        model.load_state_dict(payload["state_dict"])
        return model.eval(), meta
    # Built on the meta device: no random initialisation (InceptionV3's takes seconds), every
    # tensor then taken from the checkpoint; strict loading fails if one were missing. (RegNets
    # compute their widths with tensors at construction: built on the CPU.)
    channels = payload.get("input", {}).get("channels")
    try:
        with torch.device("meta"):
            model = build_model(name, channels=channels)
    except NotImplementedError:
        model = build_model(name, channels=channels)
    model.load_state_dict(payload["state_dict"], assign=True)
    missing = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if missing:
        raise ModelError(f"{path}: no value for {', '.join(missing)} (non-persistent buffers are not supported)")
    return model.eval(), meta
