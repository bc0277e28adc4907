"""LRP (salaudit.saliency.lrp): relevance conservation on tiny_cnn, equality with zennit called
directly, the functional pooling and ReLUs given their rules, the one-line refusal."""

import numpy as np
import pytest
import torch
from torch import nn
from helpers.reference import S, B
from salaudit import registry
from salaudit.models import build_model
from salaudit.saliency import methods as M
from salaudit.saliency.lrp import COMPOSITES, composite_of, raw_lrp

TARGET = torch.tensor([0, 1, 0])


@pytest.fixture(scope="module")
def unbiased(tiny):
    """tiny_cnn without biases (BatchNorm shift included): LRP then conserves relevance exactly."""
    model = build_model("tiny_cnn").eval()
    model.load_state_dict(tiny.state_dict())
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.bias.zero_()
            if isinstance(module, nn.BatchNorm2d):
                module.bias.zero_()
                module.running_mean.zero_()
    return model


@pytest.mark.parametrize("composite", COMPOSITES)
def test_relevance_is_conserved_on_tiny_cnn(unbiased, images, composite):
    relevance = raw_lrp(unbiased, images, TARGET, composite=composite, epsilon=1e-9, arch="tiny_cnn")
    assert relevance.shape == (B, 3, S, S)
    with torch.no_grad():
        logit = unbiased(images)[torch.arange(B), TARGET]
    torch.testing.assert_close(relevance.sum(dim=(1, 2, 3)), logit, rtol=1e-3, atol=1e-7)  # the stabilizers: ~1e-4


@pytest.mark.parametrize("arch", ["resnet18", "vgg11_bn"])
def test_relevance_is_conserved_on_torchvision_cnns(arch):
    """A ResNet (residual additions: zennit's ResNetCanonizer; without it the relevance sums to
    ~300 times the logit) and a VGG, biases and BatchNorm shifts zeroed: relevance = the logit."""
    torch.manual_seed(0)
    model = build_model(arch).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.bias.zero_()
                module.running_mean.zero_()
                module.running_var.uniform_(0.5, 2)
            if isinstance(module, (nn.Conv2d, nn.Linear)) and module.bias is not None:
                module.bias.zero_()
    x = torch.randn(2, 3, 64, 64)
    target = torch.tensor([0, 1])
    relevance = raw_lrp(model, x, target, composite="epsilon_plus", epsilon=1e-9, arch=arch)
    with torch.no_grad():
        logit = model(x)[torch.arange(2), target]
    torch.testing.assert_close(relevance.sum(dim=(1, 2, 3)), logit, rtol=1e-3, atol=1e-6)


class ModulePooling(nn.Module):
    """tiny_cnn with its global average pooling as a module, which zennit gives the Norm rule."""

    def __init__(self, tiny):
        super().__init__()
        self.block1, self.block2, self.block3, self.fc = tiny.block1, tiny.block2, tiny.block3, tiny.fc
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.block3(self.block2(self.block1(x)))), 1))


def zennit_direct(model, images, composite):
    from zennit.attribution import Gradient
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import EpsilonPlusFlat

    with Gradient(model=model, composite=EpsilonPlusFlat(canonizers=[SequentialMergeBatchNorm()])) as attributor:
        _, relevance = attributor(images.clone(), lambda out: out * nn.functional.one_hot(TARGET, 2))
    return relevance


def test_equals_zennit_where_zennit_sees_every_layer(tiny, images):
    """tiny_cnn pools with a function (`F.adaptive_avg_pool2d`), which zennit's module hooks never
    see: it would pass relevance back as a gradient (uniform over the positions). With the pooling
    a module, zennit applies its Norm rule; the project's LRP of the functional model is the same."""
    ours = raw_lrp(tiny, images, TARGET, composite="epsilon_plus_flat", epsilon=1e-6, arch="tiny_cnn")
    reference = zennit_direct(ModulePooling(tiny).eval(), images, "epsilon_plus_flat")
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-9)
    naive = zennit_direct(tiny, images, "epsilon_plus_flat")  # the trap: the functional pooling missed
    assert not torch.allclose(naive, reference, rtol=1e-2, atol=1e-6)


def test_the_functional_operations_are_restored(tiny, images):
    relu, pool = nn.functional.relu, nn.functional.adaptive_avg_pool2d
    raw_lrp(tiny, images, TARGET, composite="epsilon_plus_flat", epsilon=1e-6, arch="tiny_cnn")
    assert nn.functional.relu is relu and nn.functional.adaptive_avg_pool2d is pool
    assert not any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in tiny.modules())
    bn = tiny.block1[1]
    assert not torch.equal(bn.running_var, torch.ones_like(bn.running_var))  # the canonizer's merge undone


def test_refuses_an_unsupported_architecture_in_one_line(tiny, images):
    # refused from the architecture's name, before any relevance pass (DenseNet121 is not built here)
    with pytest.raises(ValueError, match=r"^saliency method lrp does not support architecture densenet121 "
                                         r"\(supported: tiny_cnn, inception_v3, resnet\*, resnext\*, wide_resnet\*, vgg\*, "
                                         r"alexnet\*\)$") as error:
        M.compute_maps("lrp", tiny, images, arch="densenet121")
    assert "\n" not in str(error.value)
    with pytest.raises(registry.ModelError, match="architecture None"):
        M.compute_maps("lrp", build_model("tiny_cnn"), images)
    registry.check_method_arch("lrp", "inception_v3")
    registry.check_method_arch("lrp", "resnet50")
    with pytest.raises(registry.ModelError, match="architecture efficientnet_b0"):
        registry.check_method_arch("lrp", "efficientnet_b0")
    registry.check_method_arch("grad", "densenet121")  # every other method: every architecture


def test_maps_of_each_composite(tiny, images):
    seen = []
    for composite in COMPOSITES:
        maps, flags = M.compute_maps("lrp", tiny, images, {"composite": composite}, arch="tiny_cnn")
        assert maps.dtype == np.float32 and maps.shape == (B, S, S) and not flags.any()
        seen.append(maps)
    assert not np.allclose(seen[0], seen[2])  # the composite is honoured (flat vs z-box first layer)
    with pytest.raises(ValueError, match="unknown LRP composite 'zplus'"):
        composite_of("zplus", images, 1e-6)


def test_inception_v3_runs_and_keeps_its_weights(images):
    model = build_model("inception_v3").eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.nn.functional.interpolate(images[:1], size=75)
    relevance = raw_lrp(model, x, TARGET[:1], composite="epsilon_plus_flat", epsilon=1e-6, arch="inception_v3")
    assert relevance.shape == (1, 3, 75, 75) and torch.isfinite(relevance).all() and relevance.abs().sum() > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
