"""Any torchvision CNN (issue 18): the registry entry derived from a model's structure, the
generated table, the refusals, and every method and randomization step on derived entries."""

import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from salaudit import models, registry
from salaudit.models.architectures import torchvision_model
from salaudit.models.structure import NotDerivable, derive
from salaudit.saliency import methods, randomize

SAMPLE = ["resnet18", "densenet169", "efficientnet_b0", "convnext_tiny", "vgg11_bn", "googlenet",
          "mobilenet_v3_small", "regnet_x_400mf"]


def meta_model(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.device("meta"):
                return torchvision_model(name, 2)
        except NotImplementedError:
            return torchvision_model(name, 2).to("meta")


@pytest.mark.parametrize("name", SAMPLE)
def test_the_table_is_what_the_structure_gives(name):
    table = json.loads(registry.TORCHVISION_TABLE.read_text())
    assert json.loads(json.dumps(derive(meta_model(name)))) == table["archs"][name]


def test_the_table_is_for_the_pinned_torchvision():
    import torchvision

    assert json.loads(registry.TORCHVISION_TABLE.read_text())["torchvision"] == torchvision.__version__.split("+")[0]


def test_known_entries():
    resnet = registry.get_spec("resnet18")
    assert (resnet.head, resnet.gradcam_layer, resnet.guided) == ("fc", "layer4", True)
    assert [name for name, _ in resnet.cascade] == ["fc", "layer4", "layer3", "layer2", "layer1", "conv1"]
    assert dict(resnet.cascade)["conv1"] == ("conv1", "bn1")  # a norm joins the convolution before it
    dense = registry.get_spec("densenet169")
    assert dense.gradcam_layer == "relu" and dict(dense.cascade)["denseblock4"] == ("features.denseblock4",
                                                                                    "features.norm5")
    efficient = registry.get_spec("efficientnet_b0")
    assert (efficient.head, efficient.gradcam_layer, efficient.guided) == ("classifier.1", "features", False)
    assert efficient.activations == ("SiLU", "Sigmoid")
    assert registry.step_labels("efficientnet_b0")[:2] == ["01_classifier", "02_features_8"]


def test_transformers_and_convolutional_heads_are_refused_with_the_reason():
    with pytest.raises(registry.ModelError, match="vit_b_16 cannot be audited: not a CNN: attention layers"):
        registry.get_spec("vit_b_16")
    with pytest.raises(registry.ModelError, match="squeezenet1_0 cannot be audited: no linear classification"):
        registry.get_spec("squeezenet1_0")
    with pytest.raises(registry.ModelError, match="unknown architecture 'resnet19'"):
        registry.check_image_size("resnet19", 64)
    with pytest.raises(NotDerivable, match="no convolutional trunk"):
        derive(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)))


def test_guided_methods_are_refused_on_other_activations_in_one_line():
    registry.check_guided("resnet18", ["gbp", "ggcam"])
    registry.check_guided("efficientnet_b0", ["grad", "gcam"])
    with pytest.raises(registry.ModelError) as err:
        registry.check_guided("efficientnet_b0", ["grad", "gbp", "ggcam"])
    assert str(err.value) == ("gbp, ggcam need(s) ReLU activations; efficientnet_b0 has SiLU, Sigmoid (remove gbp, "
                              "ggcam from saliency.methods or efficientnet_b0 from classifiers.archs)")


def test_a_densenet_with_its_relu_as_a_module_computes_what_torchvision_does():
    from torchvision.models import densenet169

    torch.manual_seed(0)
    ours = torchvision_model("densenet169", 2).eval()
    theirs = densenet169(weights=None, num_classes=2).eval()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", SAMPLE)
def test_every_cascade_step_reinitialises_every_parameter_it_holds(name):
    """No block keeps a trained weight: every parameter of the model lies in a step and changes."""
    torch.manual_seed(0)
    model = models.build_model(name)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.123)  # "trained": off every initial value, constants included
    before = {n: p.clone() for n, p in model.named_parameters()}
    changed = set()
    for step in randomize.steps(name):
        randomize.reinitialise(model, step, seed=0)
        changed |= {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == set(before)


def test_every_method_and_randomization_step_runs_on_resnet18():
    torch.manual_seed(0)
    model = models.build_model("resnet18").eval()
    images = models.preprocess(np.random.default_rng(0).integers(0, 255, (2, 32, 32), dtype=np.uint8))
    for method in methods.METHODS:
        settings = {"prior": np.ones((32, 32), np.float32)} if method == "prior" else {}
        if method in ("sg", "sig"):
            settings["samples"] = 2
        if method in ("ig", "sig", "xrai"):
            settings["steps"] = 3
        maps, flags = methods.compute_maps(method, model, images, settings, arch="resnet18")
        assert maps.shape == (2, 32, 32) and maps.dtype == np.float32 and 0 <= maps.min() <= maps.max() <= 1, method
    labels = [step.label for step, _ in randomize.randomized_models(model, "resnet18", 0, "cascade")]
    assert labels == registry.step_labels("resnet18")



def test_the_config_overrides_an_architectures_randomization_steps(monkeypatch):
    """saliency.randomization.blocks: a script's --settings applies it (as the workflow does at
    parse time); the steps, their file names and what they re-initialise follow; a module the
    model lacks is one line at the step."""
    import argparse

    from salaudit import config

    monkeypatch.setitem(registry.ARCH_SPECS, "resnet18", registry.ARCH_SPECS["resnet18"])
    parser = argparse.ArgumentParser()
    config.settings_argument(parser)
    blocks = {"resnet18": [{"name": "top", "modules": ["fc", "layer4"]},
                           {"name": "rest", "modules": ["layer3", "layer2", "layer1", "conv1", "bn1"]}]}
    parser.parse_args(["--settings", json.dumps({"saliency": {"randomization": {"blocks": blocks}}})])
    assert registry.step_labels("resnet18") == ["01_top", "02_rest"]
    assert [s.modules for s in randomize.steps("resnet18")] == [("fc", "layer4"),
                                                                ("layer3", "layer2", "layer1", "conv1", "bn1")]
    model = models.build_model("resnet18")
    before = model.layer4[0].conv1.weight.clone()
    randomize.reinitialise(model, randomize.steps("resnet18")[0], seed=0)
    assert not torch.equal(model.layer4[0].conv1.weight, before)
    with pytest.raises(registry.ModelError, match="step names repeat"):
        registry.override_cascades({"resnet18": [{"name": "a", "modules": ["fc"]}, {"name": "a", "modules": ["layer4"]}]})
    with pytest.raises(registry.ModelError, match=r"^saliency.randomization.blocks.resnet19: unknown architecture"):
        registry.override_cascades({"resnet19": [{"name": "a", "modules": ["fc"]}]})
    registry.override_cascades({"resnet18": [{"name": "typo", "modules": ["layer5"]}]})
    with pytest.raises(registry.ModelError, match="^randomization step typo: the model has no module 'layer5'$"):
        randomize.reinitialise(model, randomize.steps("resnet18")[0], seed=0)
