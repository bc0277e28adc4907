"""Grad-CAM++ and Eigen-CAM (salaudit.saliency.library_cams): the same numbers as pytorch-grad-cam
called directly, on the Grad-CAM layer, upsampled and post-processed as Grad-CAM."""

import numpy as np
import pytest
import torch
from torch import nn
from helpers.reference import S, B, minmax
from salaudit.saliency import methods as M
from salaudit.saliency.cam import upsample
from salaudit.saliency.library_cams import raw_eigencam, raw_gcampp


class FullResolution(nn.Module):
    """A CAM layer (``relu``) at the input's resolution: pytorch-grad-cam's resize is then the identity."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(5, 2)

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).mean(dim=(2, 3)))


@pytest.mark.parametrize("method", ["gcampp", "eigencam"])
def test_equals_pytorch_grad_cam_called_directly(images, method):
    from pytorch_grad_cam import EigenCAM, GradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(0)
    model = FullResolution().eval()
    target = torch.tensor([0, 1, 1])
    cam_class, raw = {"gcampp": (GradCAMPlusPlus, raw_gcampp), "eigencam": (EigenCAM, raw_eigencam)}[method]
    with cam_class(model=model, target_layers=[model.relu]) as cam:
        library = cam(input_tensor=images, targets=[ClassifierOutputTarget(int(t)) for t in target])  # [B, S, S] in [0, 1]
    ours = raw(model, images, target, layer="relu", arch=None)
    assert ours.shape == (B, 1, S, S)
    for i in range(B):  # the library min-max scales (max + 1e-7): the same map up to that
        np.testing.assert_allclose(minmax(ours[i, 0].numpy()), library[i], atol=1e-5)


def test_gcampp_on_tiny_cnn_is_the_library_cam_upsampled(tiny, images):
    """On tiny_cnn's Grad-CAM layer (block3, 8x8 at 16 px): the library's low-resolution CAM
    (``get_cam_image``, then its ReLU), upsampled by `upsample` as Grad-CAM is."""
    from pytorch_grad_cam import GradCAMPlusPlus

    target = M.predicted_class(tiny, images)
    held = {}
    handle = tiny.block3.register_forward_hook(lambda m, i, o: held.__setitem__("a", o))
    out = tiny(images)
    handle.remove()
    (grads,) = torch.autograd.grad(out.gather(1, target.view(-1, 1)).sum(), held["a"])
    acts, grads = held["a"].detach().numpy(), grads.numpy()
    w = GradCAMPlusPlus.get_cam_weights(None, images, tiny.block3, None, acts, grads)
    low = np.maximum((w[:, :, None, None] * acts).sum(axis=1), 0)
    expected = upsample(torch.as_tensor(low, dtype=torch.float64), (S, S))
    torch.testing.assert_close(raw_gcampp(tiny, images, target, layer=None, arch="tiny_cnn")[:, 0], expected)


@pytest.mark.parametrize("method", ["gcampp", "eigencam"])
def test_maps_shape_range_and_configured_layer(tiny, images, method):
    maps, flags = M.compute_maps(method, tiny, images, arch="tiny_cnn")
    assert maps.dtype == np.float32 and maps.shape == (B, S, S) and not flags.any()
    assert maps.min() == 0 and np.allclose(maps.max(axis=(1, 2)), 1)
    other, _ = M.compute_maps(method, tiny, images, {"layer": {"tiny_cnn": "block2"}}, arch="tiny_cnn")
    assert not np.allclose(maps, other)  # saliency.gcam.layer is honoured
    with pytest.raises(ValueError, match="arch"):
        M.compute_maps(method, tiny, images)


def test_library_hooks_are_released(tiny, images):
    raw_gcampp(tiny, images, torch.zeros(B, dtype=torch.long), layer=None, arch="tiny_cnn")
    raw_eigencam(tiny, images, torch.zeros(B, dtype=torch.long), layer=None, arch="tiny_cnn")
    assert not any(m._forward_hooks or m._backward_hooks for m in tiny.modules())
