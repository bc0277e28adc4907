"""Saliency methods as the paper's code computes them (Arun et al. 2021, `scripts/create_maps_*.py`,
through PAIR's `saliency` library): one registry, one call signature, the paper's post-processing.

``METHODS[id](model, images, target=None, **settings) -> (maps, flags)``

* ``images``: float tensor ``[B, 3, S, S]`` already preprocessed (`models.preprocess`).
* ``maps``: float32 numpy ``[B, S, S]`` in [0, 1]; ``flags``: bool numpy ``[B]``, True where the
  raw map was constant (the map is then all zeros, never NaN).

The target of every gradient method is the logit (pre-softmax) of the class the model predicts
for each image (``target``: computed by one forward pass unless the caller, who runs several
methods on the same batch, passes it). `compute_maps` is the public entry: it validates the id,
merges the settings with `DEFAULT_SETTINGS` (the paper's values), puts the model in eval mode
and restores its mode afterwards.

What each method computes (PAIR's ``saliency.core`` classes the paper's scripts call):

* ``grad``: the gradient of the target logit wrt the input (``GradientSaliency``).
* ``sg``: SmoothGrad as ``GetSmoothedMask``: ``samples`` noisy copies ``x + N(0, σ²)`` with
  ``σ = noise × (max − min)`` of the image, the mean of the squared gradients (``nt_type``
  ``smoothgrad_sq``, PAIR's ``magnitude=True``) or of the gradients (``smoothgrad``).
* ``ig``: ``IntegratedGradients``: ``(x − baseline) × mean_k ∇(baseline + α_k (x − baseline))``
  with ``α = linspace(0, 1, steps)``, every point weighted 1/steps, both ends included
  (``ig_method: pair``). Captum's rules (``riemann_trapezoid`` ... ``gausslegendre``: other points
  and weights) are an option.
* ``sig``: SmoothGrad over Integrated Gradients (``IntegratedGradients.GetSmoothedMask``).
* ``gcam``: ``GradCam`` on the activations the classifier head receives (post-ReLU: the
  registry's ``gradcam_layer``; settings ``layer``: another module path, or a mapping
  architecture → path, `gradcam_layer_name`): ``ReLU(Σ_k mean_ij(∂y/∂A_k) A_k)``, upsampled as
  PAIR's ``skimage.transform.resize`` does (bilinear, mirrored edges: `upsample`).
* ``gbp``: guided backpropagation with every ReLU guided (`guided_relu`; PAIR's TF1-only
  ``GuidedBackprop`` is not in its framework-agnostic core).
* ``ggcam``: the product of the *post-processed* GBP and GCAM maps, min-max scaled (the paper's
  ``gbp_mask * grad_mask_2d``; `guided_gradcam`).
* ``xrai``: PAIR's ``XRAI`` (`xrai_attribution`, `xrai_segments`, `xrai_regions`), its signed
  region gains min-max scaled.
* ``random``: the control, uniform noise from a seeded generator.

Post-processing (`postprocess`): PAIR's ``VisualizeImageGrayscale`` (|·| summed over channels,
``(m − min) / (p99 − min)`` clipped to [0, 1]), then the min-max of the paper's
``saliency_ttest`` — every method but XRAI (signed min-max) and GGCAM (min-max of the product).

Passes through the model. Each pass holds, image after image, the inputs PAIR passes for each
image of the batch: GRAD, GCAM and GBP one row per image; SmoothGrad one noisy sample of every
image; IG (and each noisy sample of SIG) ``max(1, max_batch // B)`` path points per image; XRAI
one image at a time, ``max_batch`` points. PAIR's per-image calls run in lockstep over a batch
therefore form the same passes: on a CPU, whose kernels change their last bits with the batch,
``tools/verify_maps.py`` compares the maps with PAIR's own computation exactly. Path points and
noisy inputs are formed in float64 from the float32 image, as PAIR forms them in numpy.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Callable

import numpy as np
import torch
from torch import nn

from .models import get_architecture

DISPLAY_NAMES: dict[str, str] = {
    "grad": "GRAD", "sg": "SG", "ig": "IG", "sig": "SIG", "gcam": "GCAM", "gbp": "GBP",
    "ggcam": "GGCAM", "xrai": "XRAI", "random": "RANDOM",
}

# The paper's settings: PAIR's GetSmoothedMask defaults (stdev_spread 0.15, 25 samples,
# magnitude=True) and the scripts' IntegratedGradients call (x_steps=10, a -1 baseline).
DEFAULT_SETTINGS: dict[str, dict] = {
    "grad": {},
    "sg": {"samples": 25, "noise": 0.15, "nt_type": "smoothgrad_sq", "seed": 0},
    "ig": {"steps": 10, "baseline": -1.0, "ig_method": "pair", "max_batch": 64},
    "sig": {"samples": 25, "noise": 0.15, "nt_type": "smoothgrad_sq", "steps": 10, "baseline": -1.0,
            "ig_method": "pair", "seed": 0, "max_batch": 64},
    # layer None: the architecture's gradcam_layer (needs `arch`); or a path, or {arch: path}
    "gcam": {"layer": None},
    "gbp": {},
    "ggcam": {"layer": None},
    # PAIR's XRAI defaults: IG with 100 steps from a black and a white baseline, full algorithm.
    "xrai": {"steps": 100, "max_batch": 64, "area_threshold": 1.0, "algorithm": "full", "segment_cache": None},
    "random": {"seed": 0},
}

# Integration rules of IG/SIG: PAIR's (the paper's), then Captum's.
IG_METHODS = ("pair", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle", "gausslegendre")
NT_TYPES = ("smoothgrad_sq", "smoothgrad")

# A map whose range is within float32 rounding of its magnitude is constant: e.g. Grad-CAM
# on a 1x1 feature map (InceptionV3's Mixed_7c below ~120 px), whose upsampling varies only in
# the last bits; scaling that to [0, 1] would make a map of rounding noise.
CONSTANT_RTOL = 1e-5

# Methods whose raw map is signed and only min-max scaled (no |·|, no percentile clip).
SIGNED_METHODS = frozenset({"xrai"})


# --------------------------------------------------------------------------- post-processing

def postprocess(attributions, signed: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Raw attributions → (maps float32 [B, S, S] in [0, 1], flags bool [B]).

    Default (the paper's post-processing of every map but XRAI's): PAIR's
    VisualizeImageGrayscale, ``clip((m - min) / (p99 - min), 0, 1)`` of ``m`` = |attribution|
    summed over channels (``[B, C, S, S]``; ``[B, S, S]`` is taken as one channel), then
    ``(m - min) / (max - min)`` (``saliency_ttest``). ``signed``: only that min-max, of the map
    as it is (``[B, S, S]``; XRAI's region gains, GGCAM's product).

    Degenerate maps, where PAIR would divide by zero: a constant or non-finite map becomes all
    zeros and is flagged (constant: range within ``CONSTANT_RTOL`` of the magnitude); a map
    whose 99th percentile equals its minimum but that is not constant (very sparse) is scaled by
    its maximum instead of the percentile (PAIR: NaN).
    """
    if torch.is_tensor(attributions) and attributions.is_cuda:
        return _postprocess_on_device(attributions.detach(), signed)
    a = attributions.detach().cpu().double().numpy() if torch.is_tensor(attributions) else np.asarray(attributions, np.float64)
    m = _grayscale_input(a, signed, np.abs, lambda x: x.sum(axis=1))
    maps = np.zeros(m.shape, np.float32)
    flags = np.zeros(m.shape[0], bool)
    for i, mi in enumerate(m):
        if not np.all(np.isfinite(mi)):
            warnings.warn(f"non-finite attributions in map {i}: zeroed and flagged", RuntimeWarning, stacklevel=2)
            flags[i] = True
            continue
        lo, hi = mi.min(), mi.max()
        if hi - lo <= CONSTANT_RTOL * max(abs(hi), abs(lo)):
            flags[i] = True
            continue
        if not signed:  # VisualizeImageGrayscale
            top = np.percentile(mi, 99)
            mi = np.clip((mi - lo) / ((top if top > lo else hi) - lo), 0.0, 1.0)
            lo, hi = mi.min(), mi.max()
        maps[i] = (mi - lo) / (hi - lo)  # saliency_ttest's min-max
    return maps, flags


def _grayscale_input(a, signed: bool, absolute, channel_sum):
    """The 2-D maps post-processing starts from: |·| summed over channels, or the signed map."""
    if signed:
        if a.ndim != 3:
            raise ValueError(f"a signed map is [B, S, S], got shape {tuple(a.shape)}")
        return a
    if a.ndim == 4:
        return channel_sum(absolute(a))
    if a.ndim == 3:
        return absolute(a)
    raise ValueError(f"expected attributions [B, C, S, S] or [B, S, S], got shape {tuple(a.shape)}")


def _postprocess_on_device(a: torch.Tensor, signed: bool) -> tuple[np.ndarray, np.ndarray]:
    """`postprocess` of a CUDA batch in float32 on the device (the same formula; numpy's float64
    per-image loop costs several passes' time per 320 px map on a GPU). Differs from the CPU
    path by float32 rounding only (~1e-6, far below the float16 rounding of the saved maps)."""
    m = _grayscale_input(a, signed, torch.abs, lambda x: x.sum(dim=1))
    flat = m.flatten(1).float()
    finite = torch.isfinite(flat).all(dim=1)
    if not bool(finite.all()):
        warnings.warn(f"non-finite attributions in map(s) {torch.nonzero(~finite).flatten().tolist()}: zeroed and flagged",
                      RuntimeWarning, stacklevel=3)
        flat = torch.where(finite[:, None], flat, torch.zeros_like(flat))
    lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
    constant = (hi - lo <= CONSTANT_RTOL * torch.maximum(hi.abs(), lo.abs())) | ~finite
    if not signed:  # torch.quantile refuses inputs over 2**24 elements: a few maps at a time
        rows = max(1, (1 << 24) // flat.shape[1])
        top = torch.cat([torch.quantile(flat[i:i + rows], 0.99, dim=1) for i in range(0, len(flat), rows)])
        top = torch.where(top <= lo, hi, top)
        flat = ((flat - lo[:, None]) / torch.where(constant, 1.0, top - lo)[:, None]).clamp(0.0, 1.0)
        lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
    maps = (flat - lo[:, None]) / torch.where(constant, 1.0, hi - lo)[:, None]
    maps[constant] = 0.0
    return maps.view(m.shape).cpu().numpy(), constant.cpu().numpy()


def guided_gradcam(gbp: tuple[np.ndarray, np.ndarray], gcam: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """GGCAM from the post-processed GBP and GCAM ``(maps, flags)``: their product, min-max scaled
    (the paper's ``ggcam = gbp_mask * grad_mask_2d``, then ``saliency_ttest``). Flagged (zeros)
    where either map is, or where the product is constant."""
    (gbp_maps, gbp_flags), (cam_maps, cam_flags) = gbp, gcam
    maps, flags = postprocess(np.asarray(gbp_maps, np.float64) * np.asarray(cam_maps, np.float64), signed=True)
    flags = flags | gbp_flags | cam_flags
    maps[flags] = 0.0
    return maps, flags


# --------------------------------------------------------------------------- helpers

@torch.no_grad()
def predicted_class(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """argmax of the model's logits, per image (the target of every method)."""
    return model(images).argmax(dim=1)


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """The model in eval mode within the block; its previous mode restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _max_batch(settings: dict, default: int = 64) -> int:
    mb = settings.get("max_batch", default)
    return int(mb) if mb else 1 << 30


def _generator(seed, device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def gradcam_layer_name(layer, arch: str | None) -> str | None:
    """The module path of Grad-CAM's layer: ``layer`` as configured — a path, ``None`` (the
    architecture's `registry` layer) or a mapping architecture → path (absent: the registry's)."""
    if isinstance(layer, dict):
        layer = layer.get(arch)
    if layer is None and arch is not None:
        layer = get_architecture(arch).gradcam_layer
    return layer


def _resolve_layer(model: nn.Module, layer, arch: str | None) -> nn.Module:
    if isinstance(layer, nn.Module):
        return layer
    layer = gradcam_layer_name(layer, arch)
    if layer is None:
        raise ValueError("Grad-CAM needs the architecture name (arch=...) or settings['layer']")
    return model.get_submodule(layer)


def gradcam_extent(model: nn.Module, arch: str, image_size: int, layer=None) -> tuple[int, int]:
    """(rows, columns) of Grad-CAM's layer output for ``image_size`` px input (one forward of a
    blank image). At 1 x 1 every Grad-CAM map is constant (e.g. InceptionV3's ``Mixed_7c``
    below 107 px): `saliency_maps.py` warns, and the maps are flagged degenerate."""
    module = _resolve_layer(model, layer, arch)
    device = next(model.parameters()).device
    with _layer_output(module) as held, torch.no_grad():
        model.eval()(torch.zeros(1, 3, image_size, image_size, device=device))
    return tuple(int(v) for v in held["out"].shape[-2:])


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
                         ig_method: str = "pair", points_per_image: int = 64, dtype=torch.float32) -> torch.Tensor:
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
    seeded with ``seed`` on the images' device (`salaudit.maps` seeds it per model and batch).
    """
    if nt_type not in NT_TYPES:
        raise ValueError(f"unknown nt_type {nt_type!r}; known: {', '.join(NT_TYPES)}")
    generator = _generator(seed, images.device)
    x64 = images.detach().double()
    flat = x64.flatten(1)
    sigma = (float(noise) * (flat.amax(dim=1) - flat.amin(dim=1))).view(-1, *([1] * (images.ndim - 1)))
    total = torch.zeros(images.shape, dtype=torch.float32, device=images.device)
    for _ in range(int(samples)):
        eps = torch.randn(images.shape, generator=generator, dtype=torch.float32, device=images.device)
        grad = inner(x64 + sigma * eps.double())
        total += grad * grad if nt_type == "smoothgrad_sq" else grad
    return total / int(samples)


@contextlib.contextmanager
def _layer_output(module: nn.Module):
    """``holder["out"]`` is the module's output of the forward run inside the block."""
    holder = {}
    handle = module.register_forward_hook(lambda mod, inputs, out: holder.__setitem__("out", out))
    try:
        yield holder
    finally:
        handle.remove()


def _mirror(index: np.ndarray, n: int) -> np.ndarray:
    """Indices outside ``0..n-1`` reflected about the edge pixels (``d c b | a b c d``)."""
    if n == 1:
        return np.zeros_like(index)
    period = 2 * (n - 1)
    index = np.abs(index) % period
    return np.where(index > n - 1, period - index, index)


def interpolation_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``[n_out, n_in]`` weights of PAIR's upsampling (``skimage.transform.resize``, order 1,
    ``mode='reflect'``): output pixel *o* is the linear interpolation at input coordinate
    ``(o + 0.5) n_in / n_out - 0.5``, mirrored about the edge pixel centres."""
    src = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    low = np.floor(src).astype(np.int64)
    frac = src - low
    weights = np.zeros((n_out, n_in))
    for index, w in ((low, 1.0 - frac), (low + 1, frac)):
        np.add.at(weights, (np.arange(n_out), _mirror(index, n_in)), w)
    return weights


def upsample(maps: torch.Tensor, size) -> torch.Tensor:
    """``[B, h, w]`` → ``[B, H, W]`` as ``skimage.transform.resize(map, (H, W))`` (float64)."""
    height, width = (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))
    rows = torch.as_tensor(interpolation_matrix(maps.shape[-2], height), device=maps.device)
    cols = torch.as_tensor(interpolation_matrix(maps.shape[-1], width), device=maps.device)
    return torch.einsum("oh,bhw,pw->bop", rows, maps.double(), cols)


# --------------------------------------------------------------------------- guided ReLU

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


def _guided(x, *args, **kwargs):  # accepts (and ignores) inplace=...: returns a new tensor
    return _GuidedReLU.apply(x)


# (owner, attribute) pairs replaced by the guided ReLU. nn.ReLU modules call F.relu, so they
# are covered too (inplace ones included: the guided version returns a new tensor, which every
# caller in torchvision uses).
_RELU_ENTRY_POINTS = (
    (torch.nn.functional, "relu"), (torch.nn.functional, "relu_"),
    (torch, "relu"), (torch, "relu_"),
    (torch.Tensor, "relu"), (torch.Tensor, "relu_"),
)
_MISSING = object()


@contextlib.contextmanager
def guided_relu():
    """Within the block every ReLU (functional, ``torch.relu``, ``Tensor.relu``, ``nn.ReLU``)
    back-propagates as in guided backpropagation. Everything is restored on exit, exceptions
    included. (A model that bound ``relu`` at import time, ``from torch.nn.functional import
    relu``, is not covered.)"""
    saved = [(owner, name, owner.__dict__.get(name, _MISSING)) for owner, name in _RELU_ENTRY_POINTS]
    try:
        for owner, name in _RELU_ENTRY_POINTS:
            setattr(owner, name, _guided)
        yield
    finally:
        for owner, name, original in saved:
            if original is _MISSING:
                with contextlib.suppress(AttributeError):
                    delattr(owner, name)
            else:
                setattr(owner, name, original)


# --------------------------------------------------------------------------- raw attributions
# Each returns the raw attribution tensor [B, C, S, S] (Grad-CAM: [B, 1, S, S] upsampled).

def _points_per_image(images: torch.Tensor, max_batch) -> int:
    """IG path points of every image in one pass: ``max_batch`` inputs over the batch (at least 1)."""
    return max(1, _max_batch({"max_batch": max_batch}) // images.shape[0])


def _raw_grad(model, images, target, **_):
    return input_gradients(model, images, target)


def _raw_sg(model, images, target, *, samples=25, noise=0.15, nt_type="smoothgrad_sq", seed=0, **_):
    def inner(noisy):
        return input_gradients(model, noisy.to(images.dtype), target)

    return smoothgrad(images, inner, samples=samples, noise=noise, nt_type=nt_type, seed=seed)


def _raw_ig(model, images, target, *, steps=10, baseline=-1.0, ig_method="pair", max_batch=64, **_):
    return integrated_gradients(model, images, target, baseline, steps=steps, ig_method=ig_method,
                                points_per_image=_points_per_image(images, max_batch), dtype=images.dtype)


def _raw_sig(model, images, target, *, samples=25, noise=0.15, nt_type="smoothgrad_sq", steps=10, baseline=-1.0,
             ig_method="pair", seed=0, max_batch=64, **_):
    per_image = _points_per_image(images, max_batch)

    def inner(noisy):
        return integrated_gradients(model, noisy, target, baseline, steps=steps, ig_method=ig_method,
                                    points_per_image=per_image, dtype=images.dtype)

    return smoothgrad(images, inner, samples=samples, noise=noise, nt_type=nt_type, seed=seed)


def _raw_gcam(model, images, target, *, layer=None, arch=None, **_):
    """PAIR's GradCam: ReLU of the activations weighted by their spatially averaged gradients,
    upsampled to the image (PAIR's ``should_resize``; its division by the maximum first and its
    ``three_dims`` copies are scalings the post-processing removes)."""
    with _layer_output(_resolve_layer(model, layer, arch)) as held:
        out = model(images.detach())
    acts = held["out"]
    (grads,) = torch.autograd.grad(out.gather(1, target.view(-1, 1)).sum(), acts)
    cam = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * acts).sum(dim=1))
    return upsample(cam.detach(), images.shape[-2:]).unsqueeze(1)


def _raw_gbp(model, images, target, **_):
    with guided_relu():
        return input_gradients(model, images, target)


_RAW: dict[str, Callable] = {
    "grad": _raw_grad, "sg": _raw_sg, "ig": _raw_ig, "sig": _raw_sig, "gcam": _raw_gcam, "gbp": _raw_gbp,
}


def _make_method(method_id: str) -> Callable:
    raw = _RAW[method_id]

    def run(model: nn.Module, images: torch.Tensor, target: torch.Tensor | None = None, **settings):
        if target is None:
            target = predicted_class(model, images)
        return postprocess(raw(model, images.detach(), target, **settings))

    run.__name__ = f"saliency_{method_id}"
    run.__doc__ = f"{DISPLAY_NAMES[method_id]}: (model, images [B,3,S,S], **settings) -> (maps, flags)"
    return run


def _ggcam(model: nn.Module, images: torch.Tensor, target: torch.Tensor | None = None, *, layer=None, arch=None, **_):
    """Guided Grad-CAM as the paper's scripts compute it: `guided_gradcam` of the post-processed
    GBP and GCAM maps. (`salaudit.maps.compute_all` reuses the batch's GBP and GCAM maps.)"""
    if target is None:
        target = predicted_class(model, images)
    gbp = postprocess(_raw_gbp(model, images, target))
    gcam = postprocess(_raw_gcam(model, images, target, layer=layer, arch=arch))
    return guided_gradcam(gbp, gcam)


def _random(model: nn.Module, images: torch.Tensor, target=None, *, seed=0, **_):
    """Control: uniform noise from a seeded generator (independent of model and image)."""
    g = _generator(seed, "cpu")
    b, _, h, w = images.shape
    return postprocess(torch.rand((b, h, w), generator=g, dtype=torch.float64))


# --------------------------------------------------------------------------- XRAI

def _to_hwc(image) -> np.ndarray:
    a = image.detach().cpu().numpy() if torch.is_tensor(image) else np.asarray(image)
    a = a.astype(np.float64)
    if a.ndim == 2:
        a = a[:, :, None]
    elif a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.ndim != 3:
        raise ValueError(f"expected an image [S, S], [S, S, C] or [C, S, S], got shape {a.shape}")
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a


def xrai_segments(image) -> list[np.ndarray]:
    """XRAI's Felzenszwalb segments (PAIR) of one image: uint8 or float, [S,S] / [S,S,C] / [C,S,S].

    They depend only on the image (PAIR rescales it to its own min-max first), not on a model.
    A constant image gets one segment: the whole image.
    """
    from saliency.core.xrai import _get_segments_felzenszwalb

    im = _to_hwc(image)
    if im.max() <= im.min():
        return [np.ones(im.shape[:2], bool)]
    return _get_segments_felzenszwalb(im)


def image_key(image) -> str:
    """Key of an image in a ``segment_cache``: a hash of its float32 pixels and shape."""
    import hashlib

    a = np.ascontiguousarray(_to_hwc(image).astype(np.float32))
    return hashlib.sha1(a.tobytes() + str(a.shape).encode()).hexdigest()


def xrai_attribution(model: nn.Module, images: torch.Tensor, target: torch.Tensor, *, steps=100,
                     max_batch=64) -> np.ndarray:
    """XRAI's base attribution as PAIR computes it, for a batch of images: the mean of the
    `integrated_gradients` (PAIR's rule) from a black and a white baseline (the image's min and
    max), aggregated over channels by their max. Each image goes through the model alone,
    ``max_batch`` path points at a time, as in PAIR's loop, so that on a CPU the model returns
    PAIR's gradients (XRAI's ranking of nearly equal regions amplifies last-bit differences:
    batching across images moved demo maps by up to 1 %). Returns float64 ``[B, S, S]``.
    """
    x = images.detach()
    per_pass = _max_batch({"max_batch": max_batch})
    out = np.empty((x.shape[0], *x.shape[2:]), np.float64)
    for i in range(x.shape[0]):
        xi, x64 = x[i:i + 1], x[i:i + 1].double()
        black, white = (integrated_gradients(model, xi, target[i:i + 1], base, steps=steps,
                                             points_per_image=per_pass, dtype=x.dtype)
                        for base in (x64.min(), x64.max()))
        out[i] = ((black + white) / 2)[0].amax(dim=0).cpu().numpy()
    return out


def xrai_regions(attr, segments, *, area_threshold=1.0, min_pixel_diff=50) -> np.ndarray:
    """PAIR's full XRAI region selection (``XRAI._xrai``), the same result bit for bit.

    Greedily adds the segment whose not-yet-covered pixels have the highest mean attribution
    (segments adding fewer than ``min_pixel_diff`` pixels are dropped) until the covered area
    exceeds ``area_threshold`` or no segment is left; each pixel gets the gain of the segment that
    covered it, the rest the mean attribution of the rest. PAIR rescans every segment's full
    mask at every step; here only the segments that overlap the newly covered pixels are
    updated, over their own uncovered pixels (8-12x faster, same float64 means in the same order).
    """
    attr = np.asarray(attr, np.float64)
    a = attr.ravel()
    masks = np.stack([np.asarray(s, bool).ravel() for s in segments])
    if masks.shape[1] != a.size:
        raise ValueError(f"segments of {masks.shape[1]} pixels for an attribution of shape {attr.shape}")
    free = [np.flatnonzero(m) for m in masks]  # each segment's pixels not covered yet
    counts = np.array([len(f) for f in free], np.int64)
    gains = np.array([a[f].mean() if len(f) else -np.inf for f in free])
    alive = np.ones(len(free), bool)
    covered = np.zeros(a.size, bool)
    out = np.full(a.size, -np.inf)
    area = 0.0
    while area <= area_threshold:
        alive &= counts >= min_pixel_diff
        if not alive.any():
            break
        best = int(np.argmax(np.where(alive, gains, -np.inf)))  # first of equals, as PAIR's scan
        new = free[best]
        out[new] = gains[best]
        covered[new] = True
        area = covered.mean()
        alive[best] = False
        cand = np.flatnonzero(alive)
        for k in cand[masks[np.ix_(cand, new)].any(axis=1)]:
            f = free[k][~covered[free[k]]]
            free[k], counts[k] = f, len(f)
            gains[k] = a[f].mean() if len(f) else -np.inf
    rest = out == -np.inf
    if rest.any():
        out[rest] = a[rest].mean()
    return out.reshape(attr.shape)


def _xrai(model: nn.Module, images: torch.Tensor, target: torch.Tensor | None = None, *, steps=100, max_batch=64,
          area_threshold=1.0, algorithm="full", segment_cache=None, **_):
    """XRAI (Kapishnikov et al. 2019) as PAIR's ``saliency.core.XRAI`` computes it with its
    defaults: `xrai_attribution` (on the model's device), Felzenszwalb segments
    (`xrai_segments`; ``segment_cache``: a dict image hash → segments shared across models and
    calls), then `xrai_regions` (``algorithm='full'``) or PAIR's ``_xrai_fast`` (``'fast'``)."""
    from saliency.core.xrai import XRAI

    if algorithm not in ("full", "fast"):
        raise ValueError(f"unknown XRAI algorithm {algorithm!r}; known: full, fast")
    if target is None:
        target = predicted_class(model, images)
    attrs = xrai_attribution(model, images, target, steps=steps, max_batch=max_batch)
    raw = []
    for i, attr in enumerate(attrs):
        if segment_cache is not None:
            key = image_key(images[i])
            if key not in segment_cache:
                segment_cache[key] = xrai_segments(images[i])
            segs = segment_cache[key]
        else:
            segs = xrai_segments(images[i])
        if not np.all(np.isfinite(attr)):
            raw.append(attr)  # flagged by postprocess
        elif algorithm == "full":
            raw.append(xrai_regions(attr, segs, area_threshold=float(area_threshold)))
        else:
            raw.append(XRAI._xrai_fast(attr, segs)[0])
    return postprocess(np.stack(raw), signed=True)


METHODS: dict[str, Callable] = {mid: _make_method(mid) for mid in _RAW}
METHODS["ggcam"] = _ggcam
METHODS["xrai"] = _xrai
METHODS["random"] = _random
METHODS = {mid: METHODS[mid] for mid in DISPLAY_NAMES}  # the registry in the paper's order


def _check(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown saliency method {method!r}; known: {', '.join(METHODS)}")


def resolve_settings(method: str, settings: dict | None = None) -> dict:
    """`DEFAULT_SETTINGS` of ``method`` updated by ``settings`` (unknown keys are an error)."""
    _check(method)
    merged = dict(DEFAULT_SETTINGS[method])
    unknown = set(settings or {}) - set(merged)
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)} for {method!r}; known: {sorted(merged)}")
    merged.update(settings or {})
    return merged


def compute_maps(method: str, model: nn.Module, images: torch.Tensor, settings: dict | None = None,
                 arch: str | None = None, target: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Maps and flags of ``method`` for a batch of preprocessed images (see module docstring).

    ``arch`` names the architecture (needed by gcam/ggcam unless settings['layer'] is given).
    ``target``: the class per image when already known (`predicted_class` of this model and
    these images: one forward pass shared by every method); computed here otherwise.
    """
    merged = resolve_settings(method, settings)
    if method in ("gcam", "ggcam"):
        merged["arch"] = arch
    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise ValueError(f"expected float images [B, 3, S, S], got {getattr(images, 'dtype', type(images))} "
                         f"{tuple(getattr(images, 'shape', ()))}")
    if target is not None and tuple(target.shape) != (images.shape[0],):
        raise ValueError(f"target: expected one class per image, shape ({images.shape[0]},), got {tuple(target.shape)}")
    with eval_mode(model):
        return METHODS[method](model, images, target, **merged)


def passes_per_image(method: str, settings: dict | None = None) -> int:
    """Forward+backward passes per image (excluding the one forward that picks the target)."""
    s = resolve_settings(method, settings)
    if method == "sg":
        return int(s["samples"])
    if method == "ig":
        return int(s["steps"])
    if method == "sig":
        return int(s["samples"]) * int(s["steps"])
    if method == "xrai":
        return 2 * int(s["steps"])  # two baselines (black, white)
    return {"grad": 1, "gcam": 1, "gbp": 1, "ggcam": 2, "random": 0}[method]


def total_passes(method_settings: dict[str, dict | None]) -> int:
    """Passes per image of several methods computed together (`salaudit.maps.compute_all`):
    GGCAM costs none when GBP and GCAM are computed too (their maps are reused)."""
    reused = {"gbp", "gcam"} <= set(method_settings)
    return sum(0 if method == "ggcam" and reused else passes_per_image(method, settings)
               for method, settings in method_settings.items())
