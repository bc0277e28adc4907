"""Grad-CAM++ (GCAMPP) and Eigen-CAM (EIGENCAM) computed by pytorch-grad-cam (``grad-cam``), on
Grad-CAM's layer (`salaudit.saliency.cam.resolve_layer`: the registry's ``gradcam_layer`` or
``saliency.gcam.layer``) and upsampled as the project's Grad-CAM is (`salaudit.saliency.cam.upsample`).

The library computes the low-resolution CAM (``get_cam_image``: Grad-CAM++'s weights, or Eigen-CAM's
projection on the first principal component of the activations) from the activations and
gradients captured here; its own ReLU (``np.maximum(cam, 0)``) follows, then this project's
upsampling and post-processing instead of the library's OpenCV resize and min-max
(`BaseCAM.compute_cam_per_layer` otherwise).
"""

from __future__ import annotations

import numpy as np
import torch

from salaudit.saliency.cam import layer_output, resolve_layer, upsample


def _library_cam(cam_class, model, images, target, layer, arch, *, needs_gradients: bool) -> torch.Tensor:
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    module = resolve_layer(model, layer, arch)
    with torch.set_grad_enabled(needs_gradients), layer_output(module) as held:
        out = model(images.detach())
    acts = held["out"]
    grads = None
    if needs_gradients:
        (grads,) = torch.autograd.grad(out.gather(1, target.view(-1, 1)).sum(), acts)
        grads = grads.detach().cpu().float().numpy()
    targets = [ClassifierOutputTarget(int(t)) for t in target]
    with cam_class(model=model, target_layers=[module]) as cam:  # its hooks released on exit
        low = cam.get_cam_image(images, module, targets, acts.detach().cpu().float().numpy(), grads, False)
    low = torch.as_tensor(np.maximum(low, 0), dtype=torch.float64, device=images.device)
    return upsample(low, images.shape[-2:]).unsqueeze(1)


def raw_gcampp(model, images, target, *, layer, arch, **_):
    """Grad-CAM++ (``GradCAMPlusPlus``): activations weighted by Σ_ij α_ij ReLU(∂y/∂A_ij), with
    α from the second and third powers of the gradients; ReLU, upsampled. One pass."""
    from pytorch_grad_cam import GradCAMPlusPlus

    return _library_cam(GradCAMPlusPlus, model, images, target, layer, arch, needs_gradients=True)


def raw_eigencam(model, images, target, *, layer, arch, **_):
    """Eigen-CAM (``EigenCAM``): the activations projected on their first principal component
    (centred SVD per image); ReLU, upsampled. Class-agnostic (no gradient): one forward pass.
    The component's sign is the SVD's (the library's 1.5.7 behaviour; post-processing takes |·|
    only after the ReLU, so a flipped sign shows the complement)."""
    from pytorch_grad_cam import EigenCAM

    return _library_cam(EigenCAM, model, images, target, layer, arch, needs_gradients=False)
