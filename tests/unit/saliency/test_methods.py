"""The method registry (salaudit.saliency.methods): names, settings, dtype/shape/range of every
method's maps, eval mode, targets, seeds, the RANDOM control."""

import numpy as np
import pytest
import torch
from torch import nn
from helpers.reference import S, B, FAST, ref_post, grad_of_logit, predicted
from salaudit import config, registry
from salaudit.saliency import methods as M
from salaudit.models import build_model


def test_registry_names_and_settings():
    # DEFAULT_SETTINGS is gone: a method's defaults are the schema's saliency block (default_settings)
    defaults = {method: M.default_settings(method) for method in M.METHODS}
    assert list(M.METHODS) == list(M.DISPLAY_NAMES)
    # the follow-up benchmarks' methods are opt-in: every other method is computed by default
    assert config.defaults()["saliency"]["methods"] == [m for m in M.METHODS if m not in registry.FOLLOW_UP_METHODS]
    assert set(registry.FOLLOW_UP_METHODS) <= set(M.METHODS)
    assert config.schema()["properties"]["saliency"]["properties"]["methods"]["items"]["enum"] == list(M.METHODS)
    assert M.DISPLAY_NAMES["ggcam"] == "GGCAM" and M.DISPLAY_NAMES["random"] == "RANDOM"
    assert defaults["sg"]["samples"] == 25 and defaults["sg"]["noise"] == 0.15
    assert defaults["ig"]["steps"] == 10 and defaults["ig"]["baseline"] == -1.0
    assert defaults["ig"]["ig_method"] == defaults["sig"]["ig_method"] == "pair"
    # ... and a config's saliency block and seed replace them
    resolved = config.resolve({"seed": 3, "saliency": {"sg": {"samples": 5}}})
    assert M.default_settings("sg", resolved["saliency"], resolved["seed"]) == {**defaults["sg"], "samples": 5, "seed": 3}
    assert M.passes_per_image("grad") == 1
    assert M.passes_per_image("sg") == 25
    assert M.passes_per_image("ig") == 10
    assert M.passes_per_image("sig", {"samples": 5}) == 50
    assert M.passes_per_image("ggcam") == 2
    assert M.passes_per_image("ixg") == M.passes_per_image("lrp") == M.passes_per_image("gcampp") == 1
    assert M.passes_per_image("deeplift") == 2  # the images and their baselines
    assert M.passes_per_image("occlusion", image_size=64) == 3 ** 2 + 1  # 32 px windows every 16 px, + the image
    with pytest.raises(ValueError, match="image size"):
        M.passes_per_image("occlusion")
    # computed together, GGCAM reuses the GBP and GCAM maps
    assert M.total_passes({"gbp": None, "gcam": None, "ggcam": None}) == 2
    assert M.total_passes({"gbp": None, "ggcam": None}) == 3


def test_unknown_method_and_setting(tiny, images):
    with pytest.raises(ValueError, match="unknown saliency method 'lime'.*grad.*sg.*random"):
        M.compute_maps("lime", tiny, images)
    with pytest.raises(ValueError, match="unknown setting"):
        M.compute_maps("sg", tiny, images, {"nsamples": 3})
    with pytest.raises(ValueError, match="arch"):
        M.compute_maps("gcam", tiny, images)
    with pytest.raises(ValueError, match="unknown ig_method 'simpson'"):
        M.compute_maps("ig", tiny, images, {"ig_method": "simpson"})
    with pytest.raises(ValueError, match="unknown nt_type 'vargrad'"):
        M.compute_maps("sg", tiny, images, {"nt_type": "vargrad", "samples": 1})


@pytest.mark.parametrize("method", list(M.METHODS))
def test_maps_dtype_shape_range(tiny, images, method):
    was = tiny.training
    maps, flags = M.compute_maps(method, tiny, images, FAST.get(method), arch="tiny_cnn")
    assert maps.dtype == np.float32 and maps.shape == (B, S, S)
    assert flags.dtype == bool and flags.shape == (B,)
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    assert not flags.any() and np.allclose(maps.max(axis=(1, 2)), 1) and np.allclose(maps.min(axis=(1, 2)), 0)
    assert tiny.training == was


def test_eval_mode_restored(images):
    model = build_model("tiny_cnn").train()
    M.compute_maps("grad", model, images)
    assert model.training


class ZeroGrad(nn.Module):
    """Logits that do not depend on the input: every gradient map is constant."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.bias = nn.Parameter(torch.tensor([0.0, 1.0]))

    def forward(self, x):
        return self.conv(x).mean((2, 3)) * 0 + self.bias


@pytest.mark.parametrize("method", ["grad", "sg", "ig", "gcam", "gbp", "ggcam", "ixg", "deeplift", "occlusion",
                                    "gcampp"])
def test_constant_map_zeros_and_flagged(images, method):
    settings = FAST.get(method) or ({"layer": "conv"} if "cam" in method else None)
    maps, flags = M.compute_maps(method, ZeroGrad(), images, settings)
    assert flags.all() and (maps == 0).all() and np.isfinite(maps).all()


def test_target_is_predicted_logit(tiny, images):
    model = build_model("tiny_cnn").eval()
    model.load_state_dict(tiny.state_dict())
    g0 = ref_post(grad_of_logit(model, images, torch.zeros(B, dtype=torch.long)))
    g1 = ref_post(grad_of_logit(model, images, torch.ones(B, dtype=torch.long)))
    assert not np.allclose(g0, g1, atol=1e-3)
    for cls, ref in ((0, g0), (1, g1)):
        with torch.no_grad():  # the bias moves the argmax, not the gradients
            model.fc.bias.copy_(torch.tensor([10.0, 0.0]) if cls == 0 else torch.tensor([0.0, 10.0]))
        assert (predicted(model, images) == cls).all()
        maps, _ = M.compute_maps("grad", model, images)
        np.testing.assert_allclose(maps, ref, atol=1e-5)


@pytest.mark.parametrize("method", ["sg", "sig", "random"])
def test_same_seed_bit_identical(tiny, images, method):
    settings = {**(FAST.get(method) or {}), "seed": 5}
    a, _ = M.compute_maps(method, tiny, images, settings)
    torch.manual_seed(123)  # the global RNG plays no part
    b, _ = M.compute_maps(method, tiny, images, settings)
    c, _ = M.compute_maps(method, tiny, images, {**settings, "seed": 6})
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_random_ignores_model(tiny, images):
    a, flags = M.compute_maps("random", tiny, images)
    b, _ = M.compute_maps("random", ZeroGrad(), images)
    assert np.array_equal(a, b) and not flags.any()
    assert not np.array_equal(a[0], a[1])
