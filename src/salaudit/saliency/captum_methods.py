"""Methods of the follow-up benchmarks (Saporta et al. 2022) computed by Captum: input × gradient
(IXG), occlusion and DeepLift. Each ``raw_*`` returns the raw attribution ``[B, 3, S, S]`` of a
batch (`salaudit.saliency.postprocess` makes it a map, as every method's).

DeepLift's rescale rule must reach every ReLU. Captum applies it only to ``nn.ReLU`` modules (forward
and backward hooks), so a functional ``F.relu`` (torchvision's InceptionV3 ``BasicConv2d``, any
model written with ``F.relu``) would silently back-propagate the plain gradient there — the trap
guided backpropagation had. `rescale_rules` replaces every ReLU entry point for the duration of the
attribution (`salaudit.saliency.guided.relu_replaced`, the mechanism GBP uses) by a ReLU whose
backward is Captum's rescale rule, and ``F.max_pool2d`` (InceptionV3's ``Mixed_6a``, ``Mixed_7a``
pool functionally; ``nn.MaxPool2d`` calls it too) by a max pooling whose backward is Captum's
max-pool rule with overlapping windows added up. Captum's own hooks are left off ``nn.ReLU``
modules (which call ``F.relu``: the rule reaches them, and Captum refuses a ReLU module used twice,
as every ResNet block's is) and off ``nn.MaxPool2d`` modules (`_deeplift`): it unpools with
``max_unpool2d``, which keeps one value where 3x3 stride-2 windows share a maximum, and
completeness (``Σ attribution = f(x) − f(baseline)``) then fails on InceptionV3.
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings

import torch

from salaudit.saliency.gradients import max_batch_of
from salaudit.saliency.guided import relu_replaced

# Captum's DeepLift: |Δin| below this takes the gradient instead of Δout / Δin.
DEEPLIFT_EPS = 1e-10


class _RescaleReLU(torch.autograd.Function):
    """ReLU whose backward is DeepLift's rescale rule (Captum's ``nonlinear``): ``grad × Δout / Δin``,
    Δ between the two halves of the batch (inputs, then their baselines: Captum's layout), the
    plain gradient where ``|Δin| < DEEPLIFT_EPS``."""

    @staticmethod
    def forward(ctx, x):
        out = x.clamp(min=0)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, out = ctx.saved_tensors
        if x.shape[0] % 2:
            raise RuntimeError("DeepLift's rescale ReLU ran on a batch that is not inputs + baselines")
        x_in, x_ref = x.chunk(2)
        out_in, out_ref = out.chunk(2)
        delta_in = torch.cat(2 * [x_in - x_ref])
        delta_out = torch.cat(2 * [out_in - out_ref])
        plain = torch.ops.aten.threshold_backward(grad_out, out, 0)
        return torch.where(delta_in.abs() < DEEPLIFT_EPS, plain, grad_out * delta_out / delta_in)


def _spread(values: torch.Tensor, indices: torch.Tensor, shape) -> torch.Tensor:
    """Each pooled value added to the input position it came from (``indices``: max_pool2d's)."""
    out = torch.zeros((*shape[:2], shape[2] * shape[3]), dtype=values.dtype, device=values.device)
    return out.scatter_add_(2, indices.flatten(2), values.flatten(2)).view(shape)


class _RescaleMaxPool(torch.autograd.Function):
    """Max pooling whose backward is Captum's DeepLift max-pool rule (``maxpool``): the output
    difference split between the inputs' and the baselines' maxima, over Δin; the plain gradient
    where ``|Δin| < DEEPLIFT_EPS``. Overlapping windows add up (``scatter_add``)."""

    @staticmethod
    def forward(ctx, x, pool):
        out, indices = pool(x)
        ctx.save_for_backward(x, out, indices)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, out, indices = ctx.saved_tensors
        if x.shape[0] % 2:
            raise RuntimeError("DeepLift's max pooling ran on a batch that is not inputs + baselines")
        x_in, x_ref = x.chunk(2)
        out_in, out_ref = out.chunk(2)
        delta_in = torch.cat(2 * [x_in - x_ref])
        cross_max = torch.max(out_in, out_ref)
        delta_out = torch.cat([cross_max - out_ref, out_in - cross_max])
        spread_in, spread_ref = _spread(grad_out * delta_out, indices, x.shape).chunk(2)
        rescaled = torch.cat(2 * [spread_in + spread_ref])
        plain = _spread(grad_out, indices, x.shape)
        return torch.where(delta_in.abs() < DEEPLIFT_EPS, plain, rescaled / delta_in), None


@contextlib.contextmanager
def rescale_rules():
    """Within the block every ReLU and every 2-D max pooling, functional ones included,
    back-propagates DeepLift's rule (only meaningful inside Captum's ``DeepLift.attribute``, whose
    batch is inputs + baselines). ``return_indices=True`` calls (Captum's own rule) run unchanged."""
    functional = torch.nn.functional
    original = functional.max_pool2d

    def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        pool = functools.partial(original, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                                 ceil_mode=ceil_mode, return_indices=True)
        return pool(x) if return_indices else _RescaleMaxPool.apply(x, pool)

    try:
        functional.max_pool2d = max_pool2d
        with relu_replaced(_RescaleReLU.apply):
            yield
    finally:
        functional.max_pool2d = original


@contextlib.contextmanager
def _quiet_captum():
    """Captum's DeepLift warns on every call that it sets hooks (it removes them itself)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Setting forward, backward hooks.*")
        yield


def _baseline(baseline, images: torch.Tensor):
    """A number, or a per-channel tensor ``[1, C, 1, 1]`` (a model brought as weights:
    `salaudit.models.to_input`) as one image ``[1, C, S, S]``, the shape Captum expands."""
    if not torch.is_tensor(baseline):
        return float(baseline)
    return baseline.to(device=images.device, dtype=images.dtype).expand(1, *images.shape[1:]).contiguous()


def raw_ixg(model, images, target, **_):
    """Input × gradient (Captum's ``InputXGradient``): ``x ⊙ ∂ logit[target] / ∂x``, one pass."""
    from captum.attr import InputXGradient

    return InputXGradient(model).attribute(images.detach().clone().requires_grad_(True), target=target).detach()


def occlusion_windows(image_size: int, window: int, stride: int) -> int:
    """Occluded copies of one image: the window's positions along each side, squared (Captum's
    ``ceil((S - window) / stride) + 1`` per side; the last position is cut at the image's edge).
    Captum's limits, as one-line errors: the window fits the image, the stride is at most the window."""
    if window > image_size:
        raise ValueError(f"occlusion window {window} px is larger than the {image_size} px image")
    if stride > window and window < image_size:
        raise ValueError(f"occlusion stride {stride} px is larger than its window {window} px (pixels never occluded)")
    return (math.ceil((image_size - window) / stride) + 1) ** 2


def raw_occlusion(model, images, target, *, window, stride, baseline, max_batch, **_):
    """Occlusion (Captum's ``Occlusion``): a ``window`` × ``window`` square of every channel set to
    ``baseline`` at every ``stride``-th position; each pixel's attribution is the mean drop of the
    target logit over the windows covering it (0 where none does). ``max_batch`` inputs per pass."""
    from captum.attr import Occlusion

    occlusion_windows(images.shape[-1], int(window), int(stride))
    per_eval = max(1, max_batch_of(max_batch) // images.shape[0])
    with torch.no_grad():
        return Occlusion(model).attribute(
            images.detach(), target=target, sliding_window_shapes=(images.shape[1], int(window), int(window)),
            strides=(images.shape[1], int(stride), int(stride)), baselines=_baseline(baseline, images),
            perturbations_per_eval=per_eval).detach()


def raw_deeplift(model, images, target, *, baseline, **_):
    """DeepLift (Captum's ``DeepLift``, rescale rule) from a constant ``baseline`` image, every ReLU
    and max pooling under DeepLift's rules (`rescale_rules`): ``(x − b) ⊙`` the DeepLift
    multipliers. One pass of ``2B`` rows (the images and their baselines)."""
    x = images.detach().clone().requires_grad_(True)
    with _quiet_captum(), rescale_rules():
        attr = _deeplift(model).attribute(x, baselines=_baseline(baseline, x), target=target)
    return attr.detach()


def _deeplift(model):
    """Captum's ``DeepLift`` without its hooks on ``nn.MaxPool2d`` and ``nn.ReLU`` (`rescale_rules`
    gives every max pooling and every ReLU the rule; module docstring). Captum's ReLU hook also
    refuses a module called twice (torchvision's ResNet blocks call their ``relu`` twice)."""
    from captum.attr import DeepLift

    class PoolsLeftToRescaleRules(DeepLift):
        def _is_non_linear(self, module):
            return super()._is_non_linear(module) and not isinstance(module, (torch.nn.MaxPool2d, torch.nn.ReLU))

    return PoolsLeftToRescaleRules(model, eps=DEEPLIFT_EPS)
