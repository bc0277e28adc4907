"""Post-processing of raw attributions into maps, as the paper's scripts do it (PAIR's
``VisualizeImageGrayscale``, then the min-max of ``saliency_ttest``), and Guided Grad-CAM's
combination of two post-processed maps. Every method's ``(maps, flags)`` comes from here.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

# A map whose range is within float32 rounding of its magnitude is constant: e.g. Grad-CAM
# on a 1x1 feature map (InceptionV3's Mixed_7c below ~120 px), whose upsampling varies only in
# the last bits; scaling that to [0, 1] would make a map of rounding noise.
CONSTANT_RTOL = 1e-5

# Methods whose raw map is signed and only min-max scaled (no |·|, no percentile clip).
SIGNED_METHODS = frozenset({"xrai"})


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
