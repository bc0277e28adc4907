"""Grad-CAM (GCAM) as PAIR's ``GradCam`` computes it, on the activations the classifier head
receives (the registry's ``gradcam_layer``, or a configured module path), upsampled as PAIR's
``skimage.transform.resize`` does; and Guided Grad-CAM (GGCAM), the product of the
post-processed GBP and GCAM maps.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

from salaudit.registry import get_spec
from salaudit.saliency.guided import raw_gbp
from salaudit.saliency.postprocess import guided_gradcam, postprocess


def gradcam_layer_name(layer, arch: str | None) -> str | None:
    """The module path of Grad-CAM's layer: ``layer`` as configured — a path, ``None`` (the
    architecture's `registry` layer) or a mapping architecture → path (absent: the registry's)."""
    if isinstance(layer, dict):
        layer = layer.get(arch)
    if layer is None and arch is not None:
        layer = get_spec(arch).gradcam_layer
    return layer


def resolve_layer(model: nn.Module, layer, arch: str | None) -> nn.Module:
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
    module = resolve_layer(model, layer, arch)
    device = next(model.parameters()).device
    with layer_output(module) as held, torch.no_grad():
        channels = next(m.in_channels for m in model.modules() if isinstance(m, nn.Conv2d))  # 1: a grey model
        model.eval()(torch.zeros(1, channels, image_size, image_size, device=device))
    return tuple(int(v) for v in held["out"].shape[-2:])


@contextlib.contextmanager
def layer_output(module: nn.Module):
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


def raw_gcam(model, images, target, *, layer, arch, **_):
    """PAIR's GradCam: ReLU of the activations weighted by their spatially averaged gradients,
    upsampled to the image (PAIR's ``should_resize``; its division by the maximum first and its
    ``three_dims`` copies are scalings the post-processing removes)."""
    with layer_output(resolve_layer(model, layer, arch)) as held:
        out = model(images.detach())
    acts = held["out"]
    (grads,) = torch.autograd.grad(out.gather(1, target.view(-1, 1)).sum(), acts)
    cam = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * acts).sum(dim=1))
    return upsample(cam.detach(), images.shape[-2:]).unsqueeze(1)


def ggcam(model: nn.Module, images: torch.Tensor, target: torch.Tensor, *, layer, arch, **_):
    """Guided Grad-CAM as the paper's scripts compute it: `guided_gradcam` of the post-processed
    GBP and GCAM maps. (`salaudit.saliency.maps.compute_all` reuses the batch's GBP and GCAM maps.)"""
    gbp = postprocess(raw_gbp(model, images, target))
    gcam = postprocess(raw_gcam(model, images, target, layer=layer, arch=arch))
    return guided_gradcam(gbp, gcam)
