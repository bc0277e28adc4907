"""The facts the saliency and randomization code needs about a classifier, derived from its module
structure: the classification layer, Grad-CAM's layer, the cascade's blocks (top-level stages,
top-down), the smallest input it takes and its activations. `tools/gen_torchvision_archs.py`
runs `derive` over torchvision's classification models and writes the torch-free table
`salaudit/torchvision_archs.json` that `salaudit.registry` reads at parse time.

The rules (README, "Any torchvision CNN"):

* **head**: the last ``nn.Linear`` of the last top-level child holding one (``fc``,
  ``classifier``, ``classifier.1``, ...): the layer a pretrained file's weights skip. None: not
  derivable (e.g. SqueezeNet's convolutional classifier).
* **trunk**: the top-level children with parameters before that child. One of them holding
  every convolution (``features`` of DenseNet, EfficientNet, ConvNeXt, VGG, MobileNet) is
  expanded one level into its children. Children without a convolution (``bn1``, ``norm5``) join
  the stage before them (the first ones the stage after).
* **cascade**: the head's top-level child, then the trunk's stages from the top down; a step's
  name is the module's name (``layer4``, ``denseblock3``), or its path with ``_`` for numbered
  children (``features_7``).
* **Grad-CAM's layer**: what the head receives: the expanded trunk child itself (``features``),
  else the last trunk stage (``layer4``); DenseNets are built with their final ReLU as a module
  (``relu``) by `salaudit.models.architectures`, so their layer is that ReLU's output.
* **activations**: the class names of the activation modules; guided methods need ``ReLU``
  only (activations applied as functions are not seen: torchvision's use ``F.relu``).
* Not a CNN (attention layers, or no convolution in the last trunk stage): refused with the
  reason.
"""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.ELU,
               nn.LeakyReLU, nn.PReLU, nn.Mish, nn.SELU, nn.Softplus)


class NotDerivable(ValueError):
    """A model whose structure the rules above cannot read; the message says why."""


def _has(module: nn.Module, kind) -> bool:
    return any(isinstance(m, kind) for m in module.modules())


def _params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _step_name(path: str) -> str:
    last = path.rsplit(".", 1)[-1]
    return path.replace(".", "_") if last.isdigit() else last


def _stages(model: nn.Module) -> tuple[str, str, list[tuple[str, nn.Module]], str]:
    """(head path, head's top-level child, trunk stages as (path, module), Grad-CAM layer)."""
    children = [(name, child) for name, child in model.named_children() if _params(child)]
    holders = [name for name, child in children if _has(child, nn.Linear)]
    if not holders:
        raise NotDerivable("no linear classification layer")
    top = holders[-1]
    head = [f"{top}.{name}" if name else top for name, m in dict(model.named_children())[top].named_modules()
            if isinstance(m, nn.Linear)][-1]
    trunk = [(name, child) for name, child in children[: [n for n, _ in children].index(top)]]
    convs = [name for name, child in trunk if _has(child, nn.Conv2d)]
    if not convs:
        raise NotDerivable("no convolutional trunk")
    if len(convs) == 1 and len(list(dict(trunk)[convs[0]].children())) > 1:
        outer = convs[0]
        layer = "relu" if hasattr(model, "relu") and outer == "features" else outer
        trunk = [(f"{outer}.{name}", child) for name, child in dict(trunk)[outer].named_children() if _params(child)]
    else:
        layer = convs[-1]
    return head, top, trunk, layer


def _cascade(top: str, trunk: list[tuple[str, nn.Module]]) -> list[tuple[str, list[str]]]:
    steps: list[list[str]] = []
    waiting: list[str] = []  # parameter-holding stages before the first convolution
    for path, module in trunk:
        if _has(module, nn.Conv2d):
            steps.append(waiting + [path])
            waiting = []
        elif steps:
            steps[-1].append(path)
        else:
            waiting.append(path)
    if not steps or not _has(dict(trunk)[steps[-1][0]], nn.Conv2d):
        raise NotDerivable("no convolution in the trunk's last stage")
    named = [(_step_name(next(p for p in paths if _has(dict(trunk)[p], nn.Conv2d))), paths) for paths in steps]
    return [(_step_name(top), [top])] + named[::-1]


def min_size(model: nn.Module, layer: str, upper: int = 1024) -> int:
    """The smallest square input (px) the model runs on with Grad-CAM's layer at least 1×1
    (forward passes on the meta device: no memory, no arithmetic)."""
    module = dict(model.named_modules())[layer]
    seen = {}
    hook = module.register_forward_hook(lambda m, i, o: seen.update(shape=tuple(o.shape)))

    def works(size):
        try:
            with torch.no_grad():
                model(torch.empty(1, 3, size, size, device="meta"))
        except (RuntimeError, ValueError, IndexError, AssertionError):
            return False
        return len(seen["shape"]) == 4 and min(seen["shape"][2:]) >= 1

    try:
        if not works(upper):
            raise NotDerivable(f"does not run on {upper} px images")
        low, high = 1, upper  # works(high); binary search for the smallest size that works
        while low < high:
            mid = (low + high) // 2
            low, high = (low, mid) if works(mid) else (mid + 1, high)
        return high
    finally:
        hook.remove()


def derive(model: nn.Module) -> dict:
    """The registry entry of a classifier built on the meta device (or anywhere): ``head``,
    ``gradcam_layer``, ``cascade`` [(step, [module paths])], ``min_size``, ``activations``
    (sorted class names), ``guided`` (every activation a ReLU). `NotDerivable` otherwise."""
    attention = sorted({type(m).__name__ for m in model.modules()
                        if isinstance(m, nn.MultiheadAttention) or "Attention" in type(m).__name__})
    if attention:
        raise NotDerivable(f"not a CNN: attention layers ({', '.join(attention)})")
    head, top, trunk, layer = _stages(model)
    activations = sorted({type(m).__name__ for m in model.modules() if isinstance(m, ACTIVATIONS)})
    model.eval()
    return {
        "head": head, "gradcam_layer": layer, "cascade": _cascade(top, trunk),
        # no activation module: functional ReLUs (torchvision's GoogLeNet), which guided_relu covers
        "min_size": min_size(model, layer), "activations": activations, "guided": set(activations) <= {"ReLU"},
    }
