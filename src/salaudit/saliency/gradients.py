"""The gradient methods as PAIR computes them: the input gradient (GRAD), SmoothGrad (SG),
Integrated Gradients (IG) and SmoothGrad over IG (SIG). Each ``raw_*`` returns the raw
attribution ``[B, C, S, S]`` of a batch (`salaudit.saliency.postprocess` makes it a map);
how passes are laid out: `salaudit.saliency.methods`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

# Integration rules of IG/SIG: PAIR's (the paper's), then Captum's.
IG_METHODS = ("pair", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle", "gausslegendre")
NT_TYPES = ("smoothgrad_sq", "smoothgrad")


def max_batch_of(max_batch) -> int:
    """The most model inputs per pass: ``max_batch`` (0 or None: no limit)."""
    return int(max_batch) if max_batch else 1 << 30


def generator(seed, device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def input_gradients(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """∂ logit[target[r]] / ∂ x[r] for every row ``r`` of ``x`` (one pass; rows independent)."""
    x = x.detach().requires_grad_(True)
    out = model(x)
    (grad,) = torch.autograd.grad(out.gather(1, target.view(-1, 1)).sum(), x)
    return grad


def ig_rule(ig_method: str, steps: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Points ``α`` of an IG rule and their weights; weights ``None``: PAIR's equal weights, applied
    as PAIR does (the sum of the gradients times ``(x - baseline) / steps``)."""
    steps = int(steps)
    if ig_method == "pair":
        return np.linspace(0.0, 1.0, steps), None
    if ig_method not in IG_METHODS:
        raise ValueError(f"unknown ig_method {ig_method!r}; known: {', '.join(IG_METHODS)}")
    from captum.attr._utils.approximation_methods import approximation_parameters

    step_sizes, alphas = approximation_parameters(ig_method)
    return np.asarray(alphas(steps), np.float64), np.asarray(step_sizes(steps), np.float64)


def integrated_gradients(model: nn.Module, x: torch.Tensor, target: torch.Tensor, baseline, *, steps: int,
                         ig_method: str, points_per_image: int, dtype=torch.float32) -> torch.Tensor:
    """Integrated Gradients of a batch, float64 ``[B, C, S, S]`` (PAIR's ``IntegratedGradients``).

    ``x`` may be float64 (a noisy SmoothGrad sample); ``baseline`` is a number, or a tensor that
    broadcasts against ``x`` (e.g. ``[B, 1, 1, 1]``: one value per image). Path points
    ``baseline + α (x - baseline)`` are formed in float64 and cast to ``dtype``; each pass holds
    ``points_per_image`` consecutive points of every image, image after image (PAIR's
    ``batch_size`` for one image).
    """
    x64 = x.detach().double()
    base = torch.as_tensor(baseline, dtype=torch.float64, device=x.device).expand_as(x64)
    diff = x64 - base
    alphas, weights = ig_rule(ig_method, steps)
    a = torch.as_tensor(alphas, dtype=torch.float64, device=x.device)
    m = max(1, int(points_per_image))
    n, shape = x.shape[0], tuple(x.shape[1:])
    total = torch.zeros(x.shape, dtype=dtype, device=x.device)
    for start in range(0, len(a), m):
        ak = a[start:start + m].view(1, -1, *([1] * len(shape)))
        k = ak.shape[1]
        points = (base.unsqueeze(1) + ak * diff.unsqueeze(1)).to(dtype).reshape(n * k, *shape)
        grads = input_gradients(model, points, target.repeat_interleave(k)).view(n, k, *shape)
        if weights is not None:
            grads = grads * torch.as_tensor(weights[start:start + k], dtype=dtype, device=x.device).view(ak.shape)
        total += grads.sum(dim=1)
    scale = float(len(a)) if weights is None else 1.0
    return total.double() * diff / scale


def smoothgrad(images: torch.Tensor, inner: Callable[[torch.Tensor], torch.Tensor], *, samples: int, noise: float,
               nt_type: str, seed: int) -> torch.Tensor:
    """PAIR's ``GetSmoothedMask`` over a batch: ``samples`` times, ``inner(x + noise)`` (noise drawn
    for every image at once, ``σ = noise × (max − min)`` per image), summed (squared for
    ``smoothgrad_sq``) in float32 and averaged. ``inner`` takes the float64 noisy batch.

    The noise of sample *k* is ``σ × randn(images.shape)``, the *k*-th float32 draw of a generator
    seeded with ``seed`` on the images' device (`salaudit.saliency.maps` seeds it per model and batch).
    """
    if nt_type not in NT_TYPES:
        raise ValueError(f"unknown nt_type {nt_type!r}; known: {', '.join(NT_TYPES)}")
    rng = generator(seed, images.device)
    x64 = images.detach().double()
    flat = x64.flatten(1)
    sigma = (float(noise) * (flat.amax(dim=1) - flat.amin(dim=1))).view(-1, *([1] * (images.ndim - 1)))
    total = torch.zeros(images.shape, dtype=torch.float32, device=images.device)
    for _ in range(int(samples)):
        eps = torch.randn(images.shape, generator=rng, dtype=torch.float32, device=images.device)
        grad = inner(x64 + sigma * eps.double())
        total += grad * grad if nt_type == "smoothgrad_sq" else grad
    return total / int(samples)


def points_per_image(images: torch.Tensor, max_batch) -> int:
    """IG path points of every image in one pass: ``max_batch`` inputs over the batch (at least 1)."""
    return max(1, max_batch_of(max_batch) // images.shape[0])


def raw_grad(model, images, target, **_):
    return input_gradients(model, images, target)


def raw_sg(model, images, target, *, samples, noise, nt_type, seed, **_):
    def inner(noisy):
        return input_gradients(model, noisy.to(images.dtype), target)

    return smoothgrad(images, inner, samples=samples, noise=noise, nt_type=nt_type, seed=seed)


def raw_ig(model, images, target, *, steps, baseline, ig_method, max_batch, **_):
    return integrated_gradients(model, images, target, baseline, steps=steps, ig_method=ig_method,
                                points_per_image=points_per_image(images, max_batch), dtype=images.dtype)


def raw_sig(model, images, target, *, samples, noise, nt_type, steps, baseline, ig_method, seed, max_batch, **_):
    per_image = points_per_image(images, max_batch)

    def inner(noisy):
        return integrated_gradients(model, noisy, target, baseline, steps=steps, ig_method=ig_method,
                                    points_per_image=per_image, dtype=images.dtype)

    return smoothgrad(images, inner, samples=samples, noise=noise, nt_type=nt_type, seed=seed)
