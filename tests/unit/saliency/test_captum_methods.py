"""IXG, occlusion and DeepLift (salaudit.saliency.captum_methods): known answers on models whose
attributions are known, DeepLift's completeness with functional ReLUs, Captum's window count."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from helpers.reference import S, B
from salaudit.saliency import captum_methods as C
from salaudit.saliency import methods as M


class Linear(nn.Module):
    """Logits linear in the input: logit_c = Σ w_c ⊙ x + b_c."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * S * S, 2)

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_ixg_of_a_linear_model_is_weight_times_input(images):
    torch.manual_seed(0)
    model = Linear().eval()
    target = torch.tensor([0, 1, 1])
    raw = C.raw_ixg(model, images, target)
    expected = model.fc.weight.detach()[target].view(B, 3, S, S) * images
    torch.testing.assert_close(raw, expected)
    # and the map is the post-processing of exactly that
    maps, flags = M.compute_maps("ixg", model, images, target=target)
    from salaudit.saliency.postprocess import postprocess

    np.testing.assert_array_equal(maps, postprocess(expected)[0])
    assert not flags.any()


class RegionSum(nn.Module):
    """Logit 0 is the sum of the pixels of rows 4..7, columns 8..11 (channel 0); logit 1 is 0."""

    def forward(self, x):
        region = x[:, 0, 4:8, 8:12].sum(dim=(1, 2))
        return torch.stack([region, torch.zeros_like(region)], dim=1)


def test_occlusion_lights_only_the_region_the_logit_depends_on():
    x = torch.ones(2, 3, S, S)
    raw = C.raw_occlusion(RegionSum(), x, torch.zeros(2, dtype=torch.long), window=2, stride=2, baseline=0.0,
                          max_batch=64)
    region = torch.zeros(S, S, dtype=torch.bool)
    region[4:8, 8:12] = True
    # occluding a 2x2 window inside the region drops the logit by 4 (its 4 pixels of value 1), elsewhere by 0
    assert torch.all(raw[:, :, region] == 4) and torch.all(raw[:, :, ~region] == 0)
    maps, _ = M.compute_maps("occlusion", RegionSum(), x, {"window": 2, "stride": 2, "baseline": 0.0})
    assert (maps[:, region.numpy()] == 1).all() and (maps[:, ~region.numpy()] == 0).all()


def test_occlusion_window_count_is_captums():
    """passes_per_image: Captum's evaluations (one per window position, + the unoccluded image)."""
    calls = []

    class Counting(RegionSum):
        def forward(self, x):
            calls.append(x.shape[0])
            return super().forward(x)

    for window, stride in ((4, 2), (5, 3), (16, 16)):
        calls.clear()
        C.raw_occlusion(Counting(), torch.ones(1, 3, S, S), torch.zeros(1, dtype=torch.long), window=window,
                        stride=stride, baseline=0.0, max_batch=1)
        assert sum(calls) == M.passes_per_image("occlusion", {"window": window, "stride": stride}, image_size=S)
    with pytest.raises(ValueError, match="window 20 px is larger than the 16 px image"):
        C.occlusion_windows(S, 20, 2)
    with pytest.raises(ValueError, match="stride 5 px is larger than its window 4 px"):
        C.occlusion_windows(S, 4, 5)


class FunctionalReLUNet(nn.Module):
    """ReLUs applied as functions (F.relu, torch.relu, Tensor.relu), as InceptionV3's BasicConv2d
    does: Captum's DeepLift hooks only nn.ReLU modules."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.conv3 = nn.Conv2d(6, 6, 3, padding=1)
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        x = F.relu(self.conv1(x), inplace=True)
        x = self.bn(self.conv2(x)).relu()
        x = torch.relu(self.conv3(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def completeness(model, images, target, attributions, baseline=0.0):
    with torch.no_grad():
        delta = model(images) - model(torch.full_like(images, baseline))
    return attributions.sum(dim=(1, 2, 3)), delta[torch.arange(len(images)), target]


@pytest.mark.parametrize("model_name", ["functional", "tiny_cnn"])
def test_deeplift_completeness_every_relu_rescaled(tiny, images, model_name):
    """Σ attributions = f(x) − f(baseline) (a ReLU net, zero baseline), with functional ReLUs too."""
    torch.manual_seed(0)
    model = FunctionalReLUNet().eval() if model_name == "functional" else tiny
    target = torch.tensor([0, 1, 0])
    attr = C.raw_deeplift(model, images, target, baseline=0.0)
    total, delta = completeness(model, images, target, attr)
    torch.testing.assert_close(total, delta, rtol=1e-4, atol=1e-6)
    # from black (-1) as well
    attr = C.raw_deeplift(model, images, target, baseline=-1.0)
    total, delta = completeness(model, images, target, attr, baseline=-1.0)
    torch.testing.assert_close(total, delta, rtol=1e-4, atol=1e-6)


class MaxPoolNet(nn.Module):
    """3x3 stride-2 max poolings (overlapping windows, as InceptionV3's), one a module, one functional."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(3, 2)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = F.max_pool2d(torch.relu(self.conv2(x)), kernel_size=3, stride=2)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def test_deeplift_completeness_with_max_pooling(images):
    """Every max pooling, module or function, under DeepLift's max-pool rule (overlapping windows
    added up): completeness holds."""
    torch.manual_seed(0)
    model = MaxPoolNet().eval()
    target = torch.tensor([0, 1, 0])
    attr = C.raw_deeplift(model, images, target, baseline=-1.0)
    total, delta = completeness(model, images, target, attr, baseline=-1.0)
    torch.testing.assert_close(total, delta, rtol=1e-4, atol=1e-6)
    # Captum's own hook on the nn.MaxPool2d module (max_unpool2d: one value where windows share a
    # maximum) loses part of the difference: why `raw_deeplift` leaves max-pooling modules to its rule
    from captum.attr import DeepLift

    with C.rescale_rules(), pytest.warns(UserWarning, match="Setting forward, backward hooks"):
        hooked = DeepLift(model).attribute(images.clone().requires_grad_(True), baselines=-1.0, target=target)
    total, delta = completeness(model, images, target, hooked.detach(), baseline=-1.0)
    assert not torch.allclose(total, delta, rtol=1e-2)


def test_deeplift_completeness_on_inception_v3(images):
    """InceptionV3: functional ReLUs (BasicConv2d), functional max poolings (Mixed_6a, Mixed_7a),
    max-pooling modules, functional average poolings."""
    from salaudit.models import build_model

    torch.manual_seed(0)
    model = build_model("inception_v3").eval()
    x = F.interpolate(images[:1], size=75, mode="bilinear")
    target = torch.tensor([1])
    attr = C.raw_deeplift(model, x, target, baseline=-1.0)
    total, delta = completeness(model, x, target, attr, baseline=-1.0)
    torch.testing.assert_close(total, delta, rtol=1e-4, atol=1e-3)


@pytest.mark.filterwarnings("ignore:Setting forward, backward hooks")
def test_captums_deeplift_alone_misses_functional_relus(images):
    """The trap `rescale_rules` closes: without it, Captum back-propagates the plain gradient through
    the functional ReLUs and completeness fails; on the model with nn.ReLU modules it holds, and
    the project's DeepLift equals Captum's there."""
    from captum.attr import DeepLift

    torch.manual_seed(0)
    model = FunctionalReLUNet().eval()
    target = torch.tensor([0, 1, 0])
    plain = DeepLift(model).attribute(images.clone().requires_grad_(True), baselines=0.0, target=target).detach()
    total, delta = completeness(model, images, target, plain)
    assert not torch.allclose(total, delta, rtol=1e-3)

    class ModuleReLUNet(FunctionalReLUNet):
        def __init__(self):
            super().__init__()
            self.relu1, self.relu2, self.relu3 = nn.ReLU(), nn.ReLU(), nn.ReLU()

        def forward(self, x):
            x = self.relu1(self.conv1(x))
            x = self.relu2(self.bn(self.conv2(x)))
            x = self.relu3(self.conv3(x))
            return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

    modular = ModuleReLUNet().eval()
    modular.load_state_dict(model.state_dict())
    captum = DeepLift(modular).attribute(images.clone().requires_grad_(True), baselines=0.0, target=target).detach()
    torch.testing.assert_close(C.raw_deeplift(model, images, target, baseline=0.0), captum, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(C.raw_deeplift(modular, images, target, baseline=0.0), captum, rtol=1e-4, atol=1e-7)


def test_the_relus_and_poolings_are_restored(images):
    relu, tensor_relu, max_pool = F.relu, torch.Tensor.relu, F.max_pool2d
    model = MaxPoolNet().eval()
    C.raw_deeplift(model, images, torch.zeros(B, dtype=torch.long), baseline=0.0)
    assert F.relu is relu and torch.Tensor.relu is tensor_relu and F.max_pool2d is max_pool
    assert not any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in model.modules())
    x = torch.linspace(-1, 1, 5, requires_grad=True)
    (g,) = torch.autograd.grad(F.relu(x).sum(), x)
    assert g.tolist() == [0, 0, 0, 1, 1]
