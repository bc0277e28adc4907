"""Guided backprop (salaudit.saliency.guided): by hand, against Captum, and the ReLU patch restored."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from helpers.reference import ref_post, grad_of_logit, predicted
from salaudit.saliency import guided as G, methods as M
from salaudit.models import build_model


class FunctionalReLUNet(nn.Module):
    """ReLUs only as functions (as torchvision's InceptionV3 / DenseNet121 partly do)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, padding=1)
        self.c2 = nn.Conv2d(6, 6, 3, padding=1)
        self.c3 = nn.Conv2d(6, 6, 3, padding=1)
        self.c4 = nn.Conv2d(6, 6, 3, padding=1)
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        x = F.relu(self.c1(x))
        x = torch.relu(self.c2(x))
        x = self.c3(x).relu()
        x = F.relu(self.c4(x), inplace=True)
        return self.fc(x.mean((2, 3)))


def manual_guided(model, x, target):
    """Guided backprop by hand: the chain of vector-Jacobian products, ReLUs replaced by
    grad -> clamp(grad, 0) * (pre-activation > 0)."""
    stages = [model.c1, model.c2, model.c3, model.c4]
    xs, pres = [x.detach()], []
    for conv in stages:
        pres.append(conv(xs[-1]).detach())
        xs.append(pres[-1].clamp(min=0))
    a = xs[-1].clone().requires_grad_(True)
    out = model.fc(a.mean((2, 3)))
    (g,) = torch.autograd.grad(out[torch.arange(len(x)), target].sum(), a)
    for conv, pre, inp in zip(reversed(stages), reversed(pres), reversed(xs[:-1])):
        g = g.clamp(min=0) * (pre > 0)
        inp = inp.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(conv(inp), inp, g)
    return g


def test_gbp_functional_relus_vs_captum():
    from captum.attr import GuidedBackprop

    torch.manual_seed(3)
    model = FunctionalReLUNet().eval()
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    t = predicted(model, x)
    plain = grad_of_logit(model, x, t)
    ours = G.raw_gbp(model, x, t)
    manual = manual_guided(model, x, t)
    with pytest.warns(UserWarning):
        captum = GuidedBackprop(model).attribute(x.clone().requires_grad_(True), target=t)
    torch.testing.assert_close(ours, manual, rtol=1e-5, atol=1e-7)
    assert not torch.allclose(ours, plain, atol=1e-6)
    torch.testing.assert_close(captum, plain)  # Captum never sees functional ReLUs
    maps, _ = M.compute_maps("gbp", model, x)
    np.testing.assert_allclose(maps, ref_post(manual), atol=1e-5)


def test_gbp_equals_captum_on_relu_modules(tiny, images):
    from captum.attr import GuidedBackprop

    t = predicted(tiny, images)
    with pytest.warns(UserWarning):
        captum = GuidedBackprop(tiny).attribute(images.clone().requires_grad_(True), target=t)
    torch.testing.assert_close(G.raw_gbp(tiny, images, t), captum)
    assert not torch.allclose(captum, grad_of_logit(tiny, images, t), atol=1e-6)


@pytest.mark.parametrize("arch, size", [("inception_v3", 75), ("densenet121", 32)])
def test_gbp_differs_from_grad_on_torchvision(arch, size):
    torch.manual_seed(0)
    model = build_model(arch).eval()
    x = torch.rand(1, 3, size, size) * 2 - 1
    t = predicted(model, x)
    gbp = G.raw_gbp(model, x, t)
    plain = grad_of_logit(model, x, t)
    assert torch.isfinite(gbp).all()
    assert not torch.allclose(gbp, plain, rtol=1e-3, atol=0)


class Boom(nn.Module):
    def forward(self, x):
        F.relu(x)
        raise RuntimeError("boom")


def test_guided_patch_restored_after_exception(images):
    originals = (F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_)
    had = ("relu" in torch.Tensor.__dict__, "relu_" in torch.Tensor.__dict__)
    with pytest.raises(RuntimeError, match="boom"):
        M.compute_maps("gbp", Boom(), images[:, :, :4, :4])
    with pytest.raises(KeyError):
        with G.guided_relu():
            assert F.relu is not originals[0] and torch.Tensor.relu is not originals[4]
            raise KeyError
    assert (F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_) == originals
    assert ("relu" in torch.Tensor.__dict__, "relu_" in torch.Tensor.__dict__) == had
    # and plain backprop through a ReLU is the ordinary one again
    x = torch.tensor([-1.0, 2.0], requires_grad=True)
    (g,) = torch.autograd.grad((F.relu(x) * torch.tensor([-3.0, -3.0])).sum(), x)
    assert g.tolist() == [0.0, -3.0]
