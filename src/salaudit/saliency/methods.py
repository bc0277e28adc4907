"""Saliency methods as the paper's code computes them (Arun et al. 2021, `scripts/create_maps_*.py`,
through PAIR's `saliency` library): one registry, one call signature, the paper's post-processing.

``METHODS[id](model, images, target, **settings) -> (maps, flags)``; one module per method
family: `gradients` (GRAD, SG, IG, SIG), `guided` (GBP), `cam` (GCAM, GGCAM), `xrai`; the
follow-up benchmarks' (Saporta et al. 2022; opt-in): `captum_methods` (IXG, DEEPLIFT, OCCLUSION),
`library_cams` (GCAMPP, EIGENCAM), `lrp` (LRP); the post-processing every map goes through in
`postprocess`.

* ``images``: float tensor ``[B, 3, S, S]`` already preprocessed (`salaudit.models.preprocess`;
  ``[B, 1, S, S]`` for a grey model brought as weights).
* ``maps``: float32 numpy ``[B, S, S]`` in [0, 1]; ``flags``: bool numpy ``[B]``, True where the
  raw map was constant (the map is then all zeros, never NaN).

The target of every gradient method is the logit (pre-softmax) of the class the model predicts
for each image (``target``: computed by one forward pass unless the caller, who runs several
methods on the same batch, passes it). `compute_maps` is the public entry: it validates the id,
merges the settings with `default_settings` (the schema's, which are the paper's values), puts
the model in eval mode and restores its mode afterwards.

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
* ``ixg``: input × gradient (Captum's ``InputXGradient``).
* ``deeplift``: Captum's ``DeepLift`` (rescale rule) from a constant ``baseline``, every ReLU and
  max pooling under DeepLift's rules, functional ones included (`captum_methods.rescale_rules`).
* ``occlusion``: Captum's ``Occlusion``: the drop of the target logit when a ``window`` square
  (every ``stride`` px) is set to ``baseline``, averaged over the windows covering each pixel.
* ``gcampp``, ``eigencam``: pytorch-grad-cam's ``GradCAMPlusPlus`` and ``EigenCAM`` on Grad-CAM's
  layer, ReLU, upsampled as ``gcam``.
* ``lrp``: zennit's LRP (``composite``, BatchNorm merged, every ReLU and average pooling given its
  rule: `lrp.functional_rules`); only the architectures of the registry's ``METHOD_ARCHS``.
* the controls (`salaudit.saliency.controls`): ``random`` (white noise), ``smooth_random`` (a random
  field at Grad-CAM's resolution), ``edge`` (Sobel edges, no model), ``prior`` (the average mask).

Post-processing (`postprocess`): PAIR's ``VisualizeImageGrayscale`` (|·| summed over channels,
``(m − min) / (p99 − min)`` clipped to [0, 1]), then the min-max of the paper's
``saliency_ttest`` — every method but XRAI (signed min-max) and GGCAM (min-max of the product).

Passes through the model (`passes_per_image`: model inputs per image). Each pass holds, image after image, the inputs PAIR passes for each
image of the batch: GRAD, GCAM and GBP one row per image; SmoothGrad one noisy sample of every
image; IG (and each noisy sample of SIG) ``max(1, max_batch // B)`` path points per image; XRAI
one image at a time, ``max_batch`` points. PAIR's per-image calls run in lockstep over a batch
therefore form the same passes: on a CPU, whose kernels change their last bits with the batch,
``tools/verify_maps.py`` compares the maps with PAIR's own computation exactly. Path points and
noisy inputs are formed in float64 from the float32 image, as PAIR forms them in numpy.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np
import torch
from torch import nn

from salaudit import config
from salaudit.registry import DISPLAY_NAMES, METHOD_CONFIG_SECTIONS
from salaudit.saliency.cam import ggcam, raw_gcam
from salaudit.saliency.captum_methods import occlusion_windows, raw_deeplift, raw_ixg, raw_occlusion
from salaudit.saliency.controls import CONTROL_METHODS
from salaudit.saliency.gradients import raw_grad, raw_ig, raw_sg, raw_sig
from salaudit.saliency.guided import raw_gbp
from salaudit.saliency.library_cams import raw_eigencam, raw_gcampp
from salaudit.saliency.lrp import raw_lrp
from salaudit.saliency.postprocess import postprocess
from salaudit.saliency.xrai import xrai

# Settings a method takes besides its config section (saliency.<section>): the run's seed, the
# cap on inputs per pass (saliency.max_batch), XRAI's segment cache and the prior's average mask
# (filled by the caller), the architecture (Grad-CAM's layer; LRP's rules).
SEEDED = frozenset({"sg", "sig", "random", "smooth_random"})
BATCHED = frozenset({"ig", "sig", "xrai", "occlusion"})
NEEDS_ARCH = frozenset({"gcam", "ggcam", "gcampp", "eigencam", "lrp", "smooth_random"})


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


_RAW: dict[str, Callable] = {
    "grad": raw_grad, "sg": raw_sg, "ig": raw_ig, "sig": raw_sig, "gcam": raw_gcam, "gbp": raw_gbp,
    "ixg": raw_ixg, "deeplift": raw_deeplift, "occlusion": raw_occlusion, "gcampp": raw_gcampp,
    "eigencam": raw_eigencam, "lrp": raw_lrp,
}


def _make_method(method_id: str) -> Callable:
    raw = _RAW[method_id]

    def run(model: nn.Module, images: torch.Tensor, target: torch.Tensor, **settings):
        return postprocess(raw(model, images.detach(), target, **settings))

    run.__name__ = f"saliency_{method_id}"
    run.__doc__ = f"{DISPLAY_NAMES[method_id]}: (model, images [B,3,S,S], target, **settings) -> (maps, flags)"
    return run


METHODS: dict[str, Callable] = {mid: _make_method(mid) for mid in _RAW}
METHODS["ggcam"] = ggcam
METHODS["xrai"] = xrai
METHODS.update(CONTROL_METHODS)
METHODS = {mid: METHODS[mid] for mid in DISPLAY_NAMES}  # the registry in the paper's order


def _check(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown saliency method {method!r}; known: {', '.join(METHODS)}")


def default_settings(method: str, saliency: dict | None = None, seed: int | None = None) -> dict:
    """The settings ``method`` is called with: its config section (``saliency.sg`` ..., the
    schema's defaults where ``saliency`` is not given; GGCAM: Grad-CAM's), the seed
    (``seed``, else the schema's) and ``max_batch`` where it uses them, XRAI's segment cache."""
    _check(method)
    defaults = config.defaults()
    saliency = saliency if saliency is not None else defaults["saliency"]
    section = METHOD_CONFIG_SECTIONS.get(method)
    out = dict(saliency[section]) if section else {}
    if method in SEEDED:
        out["seed"] = defaults["seed"] if seed is None else seed
    if method in BATCHED:
        out["max_batch"] = saliency["max_batch"]
    if method == "xrai":
        out["segment_cache"] = None
    if method == "prior":
        out["prior"] = None
    if method == "lrp":
        out["bounds"] = None  # the z-box bounds, filled by the caller for a model brought as weights
    return out


def resolve_settings(method: str, settings: dict | None = None) -> dict:
    """`default_settings` of ``method`` updated by ``settings`` (unknown keys are an error)."""
    merged = default_settings(method)
    unknown = set(settings or {}) - set(merged)
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)} for {method!r}; known: {sorted(merged)}")
    merged.update(settings or {})
    return merged


def compute_maps(method: str, model: nn.Module, images: torch.Tensor, settings: dict | None = None,
                 arch: str | None = None, target: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Maps and flags of ``method`` for a batch of preprocessed images (see module docstring).

    ``arch`` names the architecture (needed by gcam, ggcam, gcampp, eigencam and smooth_random unless
    settings['layer'] is given; by lrp, which refuses an architecture it does not support).
    ``target``: the class per image when already known (`predicted_class` of this model and
    these images: one forward pass shared by every method); computed here otherwise.
    """
    merged = resolve_settings(method, settings)
    if method in NEEDS_ARCH:
        merged["arch"] = arch
    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] not in (1, 3) or not images.is_floating_point():
        raise ValueError(f"expected float images [B, 3, S, S] (or [B, 1, S, S]), got {getattr(images, 'dtype', type(images))} "
                         f"{tuple(getattr(images, 'shape', ()))}")
    if target is not None and tuple(target.shape) != (images.shape[0],):
        raise ValueError(f"target: expected one class per image, shape ({images.shape[0]},), got {tuple(target.shape)}")
    with eval_mode(model):
        if target is None:
            target = predicted_class(model, images)
        return METHODS[method](model, images, target, **merged)


def passes_per_image(method: str, settings: dict | None = None, image_size: int | None = None) -> int:
    """Model inputs per image, each through a forward and (but Eigen-CAM's, occlusion's) a backward
    pass, excluding the one forward that picks the target. Occlusion's depend on the image size
    (``image_size``, required for it): one per window position, + the unoccluded image."""
    s = resolve_settings(method, settings)
    if method == "sg":
        return int(s["samples"])
    if method == "ig":
        return int(s["steps"])
    if method == "sig":
        return int(s["samples"]) * int(s["steps"])
    if method == "xrai":
        return 2 * int(s["steps"])  # two baselines (black, white)
    if method == "occlusion":
        if image_size is None:
            raise ValueError("occlusion's passes per image depend on the image size: pass image_size")
        return occlusion_windows(int(image_size), int(s["window"]), int(s["stride"])) + 1
    return {"grad": 1, "gcam": 1, "gbp": 1, "ggcam": 2, "ixg": 1, "deeplift": 2, "gcampp": 1, "eigencam": 1,
            "lrp": 1, "random": 0, "smooth_random": 0, "edge": 0, "prior": 0}[method]


def total_passes(method_settings: dict[str, dict | None], image_size: int | None = None) -> int:
    """Passes per image of several methods computed together (`salaudit.saliency.maps.compute_all`):
    GGCAM costs none when GBP and GCAM are computed too (their maps are reused)."""
    reused = {"gbp", "gcam"} <= set(method_settings)
    return sum(0 if method == "ggcam" and reused else passes_per_image(method, settings, image_size)
               for method, settings in method_settings.items())
