"""Classifier architectures: the networks of the registry (`salaudit.registry`) and preprocessing.

Every architecture takes ``[B, 3, S, S]`` float input in [-1, 1] (`preprocess`) and returns
two logits (normal, abnormal). Nothing is ever downloaded: ``pretrained`` reads a local
state-dict file (e.g. torchvision's ImageNet weights saved by the user), skipping the
classification head, whose shape differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from salaudit import config
from salaudit.registry import ARCH_SPECS, ModelError


class TinyCNN(nn.Module):
    """A few conv layers, for tests: small enough to train in seconds on a CPU."""

    def __init__(self, num_classes: int = 2, width: int = 8):
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.block2 = nn.Sequential(nn.Conv2d(width, 2 * width, 3, padding=1, stride=2), nn.BatchNorm2d(2 * width), nn.ReLU())
        self.block3 = nn.Sequential(nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU())
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        x = self.block3(self.block2(self.block1(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def _inception_v3(num_classes: int) -> nn.Module:
    from torchvision.models import inception_v3

    # No auxiliary head: the paper's classifier is the main logits; input is already in
    # [-1, 1], so torchvision's ImageNet re-normalisation (transform_input) stays off.
    model = inception_v3(weights=None, aux_logits=False, transform_input=False, init_weights=True, num_classes=num_classes)
    # torchvision initialises every layer, the head included, from N(0, 0.1): over 2048
    # features that gives logits of several units and a from-scratch run that barely learns
    # in a few epochs. The head gets nn.Linear's default initialisation instead.
    model.fc.reset_parameters()
    return model


def _densenet121(num_classes: int) -> nn.Module:
    from torchvision.models import DenseNet

    class DenseNet121(DenseNet):
        """torchvision's DenseNet-121 (``densenet121(weights=None)``: the same modules, weights and
        outputs) whose final ReLU is a module, ``relu``: the activations the classifier receives
        (Grad-CAM's layer) then have a name. torchvision applies it as a function after
        ``features`` (whose output is ``norm5``'s, before the ReLU)."""

        def __init__(self):
            super().__init__(32, (6, 12, 24, 16), 64, num_classes=num_classes)
            self.relu = nn.ReLU()

        def forward(self, x):
            out = torch.flatten(nn.functional.adaptive_avg_pool2d(self.relu(self.features(x)), (1, 1)), 1)
            return self.classifier(out)

    return DenseNet121()


def _with_relu_module(model: nn.Module) -> nn.Module:
    """A torchvision DenseNet whose final ReLU (a function in torchvision's forward) is the module
    ``relu``, as `_densenet121`'s: Grad-CAM's layer, the activations the classifier receives."""
    model.relu = nn.ReLU()

    def forward(x):
        return model.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(model.relu(model.features(x)), 1), 1))

    model.forward = forward
    return model


def torchvision_model(name: str, num_classes: int) -> nn.Module:
    """torchvision's classification model ``name``, untrained (``weights=None``: nothing is
    downloaded), with ``num_classes`` outputs; GoogLeNet without its auxiliary heads, DenseNets
    with their final ReLU as a module. Its registry entry is derived from this model
    (`salaudit.models.structure`)."""
    from torchvision import models
    from torchvision.models import DenseNet

    extra = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    model = models.get_model(name, weights=None, num_classes=num_classes, **extra)
    return _with_relu_module(model) if isinstance(model, DenseNet) else model


@dataclass(frozen=True)
class Architecture:
    build: Callable[[int], nn.Module]
    min_size: int
    head: str  # the classification layer (skipped when loading pretrained weights)
    gradcam_layer: str  # the activations the classifier head receives (registry.ArchSpec)
    # Cascade steps top-down: (step name, module paths re-initialised at that step).
    cascade: tuple[tuple[str, tuple[str, ...]], ...] = field(default_factory=tuple)


_BUILDERS: dict[str, Callable[[int], nn.Module]] = {
    "inception_v3": _inception_v3, "densenet121": _densenet121, "tiny_cnn": lambda n: TinyCNN(n),
}
# The torch-free facts (sizes, layers, cascade blocks) live in salaudit.registry.
ARCHITECTURES: dict[str, Architecture] = {
    name: Architecture(build=_BUILDERS.get(name, partial(torchvision_model, name)), min_size=spec.min_size, head=spec.head,
                       gradcam_layer=spec.gradcam_layer, cascade=spec.cascade)
    for name, spec in ARCH_SPECS.items()
}


def get_architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise ModelError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def build_model(arch: str, num_classes: int = 2, pretrained: str | Path | None = None,
                channels: int | None = None) -> nn.Module:
    """A fresh model; with ``pretrained``, every weight except the head's from that local file;
    ``channels``: the input channels (`set_input_channels`; None: the architecture's 3)."""
    model = set_input_channels(get_architecture(arch).build(num_classes), channels)
    if pretrained:
        load_pretrained(model, arch, pretrained)
    return model


def load_pretrained(model: nn.Module, arch: str, path: str | Path) -> None:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"pretrained weights file {path} does not exist (nothing is downloaded)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    head = get_architecture(arch).head + "."
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if not k.startswith(head) and k in own and own[k].shape == v.shape}
    missing = [k for k in own if not k.startswith(head) and k not in usable and not k.endswith("num_batches_tracked")]
    if missing:
        raise ModelError(f"{path}: not {arch} weights ({len(missing)} tensors missing or mis-shaped, e.g. {missing[0]})")
    model.load_state_dict(usable, strict=False)


# What a model takes (classifiers.preprocess.<arch>): the project's own models take the grey image
# in [-1, 1] on 3 channels (the schema's defaults of classifiers.preprocess.<arch>); a model
# brought as weights may expect, e.g., ImageNet's [0, 1] with
# per-channel mean and std, or one channel.
DEFAULT_INPUT = config.resolve({"datasets": {"x": {"format": "siim"}},
                                "classifiers": {"preprocess": {"x": {}}}})["classifiers"]["preprocess"]["x"]


def input_spec(spec: dict | None) -> dict:
    """``spec`` with the defaults filled in (None: the project's preprocessing)."""
    return {**DEFAULT_INPUT, **(spec or {})}


def preprocess(images, spec: dict | None = None) -> torch.Tensor:
    """uint8 ``[B, S, S]`` (array or tensor) → float32 ``[B, C, S, S]``: by default ``C = 3`` in
    [-1, 1], as in the paper. ``spec`` (`input_spec`; a checkpoint's ``meta["input"]``): the grey
    value 0..255 mapped linearly onto ``range``, then ``(x - mean[c]) / std[c]`` per channel
    when given, on ``channels`` channels.

    The one preprocessing function every stage uses.
    """
    x = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    if x.dtype != torch.uint8 or x.ndim != 3:
        raise ValueError(f"expected uint8 [B, S, S], got {x.dtype} {tuple(x.shape)}")
    spec = input_spec(spec)
    if spec == DEFAULT_INPUT:
        x = x.to(torch.float32) / 127.5 - 1.0
        return x.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()
    return _scaled(x.to(torch.float32).unsqueeze(1), spec).contiguous()


def to_input(value: float, spec: dict | None) -> float | torch.Tensor:
    """A pixel value given in the project's preprocessed scale (``[-1, 1]``: a method's
    ``baseline``, -1 = black) as the model of ``spec`` sees that grey level: the value itself for
    the project's preprocessing, else a float32 tensor ``[1, C, 1, 1]`` (per channel)."""
    spec = input_spec(spec)
    if spec == DEFAULT_INPUT:
        return value
    return _scaled(torch.full((1, 1, 1, 1), (float(value) + 1.0) * 127.5), spec)


def _scaled(grey: torch.Tensor, spec: dict) -> torch.Tensor:
    """Grey levels 0..255 (float ``[B, 1, H, W]``) as a model of ``spec`` (not the project's
    default) takes them: onto ``range``, on ``channels`` channels, ``(x - mean) / std``."""
    low, high = spec["range"]
    x = (grey / 255.0 * (high - low) + low).expand(-1, spec["channels"], -1, -1)
    if spec["mean"] is not None:
        mean = torch.tensor(spec["mean"], dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(spec["std"], dtype=torch.float32).view(1, -1, 1, 1)
        x = (x - mean) / std
    return x


def set_input_channels(model: nn.Module, channels: int | None) -> nn.Module:
    """The model with its first convolution taking ``channels`` input channels (a grey model:
    1), freshly initialised; the weights of a file then fill it. None or 3: unchanged."""
    if channels in (None, 3):
        return model
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            conv = nn.Conv2d(channels, module.out_channels, module.kernel_size, module.stride, module.padding,
                             module.dilation, module.groups, module.bias is not None, module.padding_mode,
                             device=module.weight.device)
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, attr, conv)
            return model
    raise ModelError("no convolution to take the input")


PREPROCESSING = "uint8 grayscale / 127.5 - 1, replicated to 3 channels"
