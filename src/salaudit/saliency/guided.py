"""Guided backpropagation (GBP): every ReLU back-propagates only positive gradients through
positive inputs (`guided_relu`). PAIR's TF1-only ``GuidedBackprop`` is not in its
framework-agnostic core, so the paper's GBP is written here.
"""

from __future__ import annotations

import contextlib

import torch

from salaudit.saliency.gradients import input_gradients


class _GuidedReLU(torch.autograd.Function):
    """ReLU whose backward passes only positive gradients through positive inputs.

    The backward is ReLU's own kernel (``threshold_backward``: the gradient where the output is
    positive, 0 elsewhere) applied to the clamped gradient: two elementwise kernels per ReLU
    instead of four (clamp, compare, cast, multiply).
    """

    @staticmethod
    def forward(ctx, x):
        out = x.clamp(min=0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        (out,) = ctx.saved_tensors
        return torch.ops.aten.threshold_backward(grad_out.clamp(min=0), out, 0)


# (owner, attribute) pairs `relu_replaced` replaces. nn.ReLU modules call F.relu, so they
# are covered too (inplace ones included: the replacement returns a new tensor, which every
# caller in torchvision uses).
_RELU_ENTRY_POINTS = (
    (torch.nn.functional, "relu"), (torch.nn.functional, "relu_"),
    (torch, "relu"), (torch, "relu_"),
    (torch.Tensor, "relu"), (torch.Tensor, "relu_"),
)
_MISSING = object()


@contextlib.contextmanager
def relu_replaced(relu):
    """Within the block every ReLU (functional, ``torch.relu``, ``Tensor.relu``, ``nn.ReLU``) is
    ``relu(x)``, an autograd function whose backward is a method's rule (guided backpropagation,
    DeepLift's rescale, LRP's pass-through). Everything is restored on exit, exceptions included.
    (A model that bound ``relu`` at import time, ``from torch.nn.functional import relu``, is not
    covered.)"""

    def call(x, *args, **kwargs):  # accepts (and ignores) inplace=...: returns a new tensor
        return relu(x)

    saved = [(owner, name, owner.__dict__.get(name, _MISSING)) for owner, name in _RELU_ENTRY_POINTS]
    try:
        for owner, name in _RELU_ENTRY_POINTS:
            setattr(owner, name, call)
        yield
    finally:
        for owner, name, original in saved:
            if original is _MISSING:
                with contextlib.suppress(AttributeError):
                    delattr(owner, name)
            else:
                setattr(owner, name, original)


def guided_relu():
    """Within the block every ReLU back-propagates as in guided backpropagation (`relu_replaced`)."""
    return relu_replaced(_GuidedReLU.apply)


def raw_gbp(model, images, target, **_):
    with guided_relu():
        return input_gradients(model, images, target)
