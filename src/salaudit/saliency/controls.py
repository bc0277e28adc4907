"""The controls: maps whose verdicts are known before any data is seen, computed and scored like
every method (README, "Controls"). A criterion that a control passes, where the registry's
``CONTROL_MUST_FAIL`` says it must fail, is a broken criterion.

* ``random``: white noise, drawn per model and image: no location, no agreement, no model.
* ``smooth_random``: a uniform random field at the resolution of the architecture's Grad-CAM layer,
  upsampled as Grad-CAM is (`salaudit.saliency.cam.upsample`), drawn per model and image: as
  smooth as a CAM, as uninformative as noise.
* ``edge``: the Sobel edge magnitude of the input image (Adebayo et al. 2018's edge detector): no
  model is involved, so it cannot change when the weights or the labels do.
* ``prior``: the average training mask (``results/{dataset}/baselines/average_mask.npy``), the same
  map for every image and model, min-max scaled only (no percentile clip: it stays the baseline
  the utility criteria compare with).

Same call shape as every method: ``(model, images [B,3,S,S], target, **settings) -> (maps, flags)``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from salaudit.saliency.cam import gradcam_extent, upsample
from salaudit.saliency.gradients import generator
from salaudit.saliency.postprocess import postprocess


def random_maps(model: nn.Module, images: torch.Tensor, target, *, seed, **_):
    """White noise from a seeded generator (independent of model and image)."""
    b, _, h, w = images.shape
    return postprocess(torch.rand((b, h, w), generator=generator(seed, "cpu"), dtype=torch.float64))


def smooth_random_maps(model: nn.Module, images: torch.Tensor, target, *, seed, layer, arch, **_):
    """A uniform random field of the Grad-CAM layer's extent (``layer``/``arch`` as Grad-CAM's),
    one per image, upsampled to the image as Grad-CAM's map is. At a 1 x 1 layer it is constant
    (flagged), as Grad-CAM is."""
    b, _, h, w = images.shape
    rows, cols = gradcam_extent(model, arch, h, layer)
    field = torch.rand((b, rows, cols), generator=generator(seed, "cpu"), dtype=torch.float64)
    return postprocess(upsample(field, (h, w)).unsqueeze(1))


def edge_maps(model: nn.Module, images: torch.Tensor, target, **_):
    """Sobel edge magnitude of each (grey) image; the model is not used."""
    from skimage.filters import sobel

    grey = images[:, 0].detach().cpu().double().numpy()  # the three input channels are one image
    return postprocess(np.stack([sobel(image) for image in grey]))


def prior_maps(model: nn.Module, images: torch.Tensor, target, *, prior, **_):
    """The average training mask for every image, min-max scaled (flagged when it is constant)."""
    if prior is None:
        raise ValueError("the prior control needs the average training mask (saliency_maps.py --average-mask)")
    prior = np.asarray(prior, dtype=np.float64)
    if prior.shape != tuple(images.shape[-2:]):
        raise ValueError(f"average mask of shape {prior.shape} for images of {tuple(images.shape[-2:])}")
    return postprocess(np.repeat(prior[None], images.shape[0], axis=0), signed=True)


CONTROL_METHODS = {"random": random_maps, "smooth_random": smooth_random_maps, "edge": edge_maps,
                   "prior": prior_maps}
