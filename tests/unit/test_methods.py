"""Saliency methods (salaudit.methods): each against an independent reference, on tiny models."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from salaudit import methods as M
from salaudit.models import build_model

S = 16
B = 3
GRADIENT_METHODS = ["grad", "sg", "ig", "sig", "gcam", "gbp", "ggcam"]
FAST = {"sg": {"samples": 4}, "sig": {"samples": 2, "steps": 3}, "ig": {"steps": 4}, "xrai": {"steps": 3}}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = build_model("tiny_cnn").eval()
    # non-trivial BatchNorm statistics, so eval mode is not the identity
    with torch.no_grad():
        for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
    return model


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(1)
    x = torch.rand((B, 3, S, S), generator=g) * 2 - 1
    x[1] *= 0.5  # a different (max - min) per image: per-image SmoothGrad sigma
    return x


def ref_post(attr, minmax=False):
    """Independent post-processing reference (PAIR's VisualizeImageGrayscale)."""
    a = np.abs(np.asarray(attr, np.float64))
    if a.ndim == 4:
        a = a.sum(1)
    out = []
    for m in a:
        vmax = m.max() if minmax else np.percentile(m, 99)
        vmin = m.min()
        out.append(np.clip((m - vmin) / (vmax - vmin), 0, 1))
    return np.stack(out).astype(np.float32)


def grad_of_logit(model, x, target):
    """d logit[target] / d x for a batch, with plain autograd."""
    x = x.detach().clone().requires_grad_(True)
    out = model(x)
    (g,) = torch.autograd.grad(out[torch.arange(len(x)), target].sum(), x)
    return g


def predicted(model, x):
    with torch.no_grad():
        return model(x).argmax(1)


# --------------------------------------------------------------------------- registry

def test_registry_names_and_settings():
    assert set(M.METHODS) == set(M.DISPLAY_NAMES) == set(M.DEFAULT_SETTINGS)
    assert M.DISPLAY_NAMES["ggcam"] == "GGCAM" and M.DISPLAY_NAMES["random"] == "RANDOM"
    assert M.DEFAULT_SETTINGS["sg"]["samples"] == 25 and M.DEFAULT_SETTINGS["sg"]["noise"] == 0.15
    assert M.DEFAULT_SETTINGS["ig"]["steps"] == 10 and M.DEFAULT_SETTINGS["ig"]["baseline"] == -1.0
    assert M.passes_per_image("grad") == 1
    assert M.passes_per_image("sg") == 25
    assert M.passes_per_image("ig") == 10
    assert M.passes_per_image("sig", {"samples": 5}) == 50
    assert M.passes_per_image("ggcam") == 2


def test_unknown_method_and_setting(tiny, images):
    with pytest.raises(ValueError, match="unknown saliency method 'lime'.*grad.*sg.*random"):
        M.compute_maps("lime", tiny, images)
    with pytest.raises(ValueError, match="unknown setting"):
        M.compute_maps("sg", tiny, images, {"nsamples": 3})
    with pytest.raises(ValueError, match="arch"):
        M.compute_maps("gcam", tiny, images)


@pytest.mark.parametrize("method", list(M.METHODS))
def test_maps_dtype_shape_range(tiny, images, method):
    was = tiny.training
    maps, flags = M.compute_maps(method, tiny, images, FAST.get(method), arch="tiny_cnn")
    assert maps.dtype == np.float32 and maps.shape == (B, S, S)
    assert flags.dtype == bool and flags.shape == (B,)
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    assert not flags.any() and np.allclose(maps.max(axis=(1, 2)), 1)
    assert tiny.training == was


def test_eval_mode_restored(images):
    model = build_model("tiny_cnn").train()
    M.compute_maps("grad", model, images)
    assert model.training


# --------------------------------------------------------------------------- post-processing

def test_postprocess_percentile_clip_and_scale():
    m = np.arange(100, dtype=np.float64).reshape(1, 10, 10)
    m[0, 0, 0] = -1000.0  # abs → the largest value: an outlier clipped at the 99th percentile
    maps, flags = M.postprocess(m)
    a = np.abs(m[0])
    p99, lo = np.percentile(a, 99), a.min()
    assert lo == 1.0 and p99 < 1000
    assert maps[0, 0, 0] == 1.0  # clipped
    np.testing.assert_allclose(maps[0], np.clip((a - lo) / (p99 - lo), 0, 1), rtol=1e-6)
    assert (maps[0] == 1).sum() == 1  # p99 (linear interpolation) lies between 99 and the outlier
    # channels: |.| summed
    four = np.stack([m, -m, m, np.zeros_like(m)], axis=1)
    np.testing.assert_allclose(M.postprocess(four)[0], maps, rtol=1e-6)
    # min-max
    mm, _ = M.postprocess(m, minmax=True)
    np.testing.assert_allclose(mm[0], (a - lo) / (a.max() - lo), rtol=1e-6)
    assert not flags.any()


def test_postprocess_constant_and_nonfinite():
    a = np.zeros((3, 1, 4, 4))
    a[1] = 5.0
    a[2, 0, 0, 0] = 1.0
    maps, flags = M.postprocess(a)
    assert flags.tolist() == [True, True, False]
    assert (maps[:2] == 0).all() and np.isfinite(maps).all()
    # very sparse: p99 == min, the max is used instead of dividing by zero
    assert maps[2, 0, 0] == 1 and maps[2].sum() == 1
    bad = np.ones((1, 1, 4, 4))
    bad[0, 0, 1, 1] = np.nan
    with pytest.warns(RuntimeWarning, match="non-finite"):
        maps, flags = M.postprocess(bad)
    assert flags.all() and (maps == 0).all()


class ZeroGrad(nn.Module):
    """Logits that do not depend on the input: every gradient map is constant."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.bias = nn.Parameter(torch.tensor([0.0, 1.0]))

    def forward(self, x):
        return self.conv(x).mean((2, 3)) * 0 + self.bias


@pytest.mark.parametrize("method", ["grad", "sg", "ig", "gcam", "gbp"])
def test_constant_map_zeros_and_flagged(images, method):
    maps, flags = M.compute_maps(method, ZeroGrad(), images, FAST.get(method) or ({"layer": "conv"} if "cam" in method else None))
    assert flags.all() and (maps == 0).all() and np.isfinite(maps).all()


# --------------------------------------------------------------------------- target

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


# --------------------------------------------------------------------------- each method vs reference

def test_grad_matches_autograd(tiny, images):
    maps, _ = M.compute_maps("grad", tiny, images)
    ref = ref_post(grad_of_logit(tiny, images, predicted(tiny, images)))
    np.testing.assert_allclose(maps, ref, atol=1e-5)


def sg_reference(model, x, samples, seed, noise=0.15, inner=None):
    """Hand loop: noise[i, k] = randn([B, samples, 3, S, S], seeded)[i, k]; mean of squares."""
    target = predicted(model, x)
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn((x.shape[0], samples) + tuple(x.shape[1:]), generator=g)
    out = []
    for i in range(x.shape[0]):
        sigma = noise * (x[i].max() - x[i].min())
        acc = torch.zeros_like(x[i])
        for k in range(samples):
            xi = (x[i] + sigma * eps[i, k]).unsqueeze(0)
            a = inner(model, xi, target[i:i + 1]) if inner else grad_of_logit(model, xi, target[i:i + 1])
            acc += a[0] ** 2
        out.append(acc / samples)
    return torch.stack(out)


def test_sg_matches_hand_loop(tiny, images):
    settings = {"samples": 5, "seed": 7}
    ref = ref_post(sg_reference(tiny, images, 5, 7))
    maps, _ = M.compute_maps("sg", tiny, images, settings)
    np.testing.assert_allclose(maps, ref, atol=1e-4)
    # chunking of the samples (max_batch) does not change the noise
    chunked, _ = M.compute_maps("sg", tiny, images, {**settings, "max_batch": 2 * B})
    np.testing.assert_allclose(chunked, maps, atol=1e-5)


def ig_reference(model, x, target, steps=10, baseline=-1.0):
    """Hand loop, Captum's riemann_trapezoid: alphas linspace(0, 1, n), weights 1/n, ends halved."""
    base = torch.full_like(x, baseline)
    total = torch.zeros_like(x)
    for j, alpha in enumerate(torch.linspace(0, 1, steps).tolist()):
        w = 1 / steps / (2 if j in (0, steps - 1) else 1)
        total += w * grad_of_logit(model, base + alpha * (x - base), target)
    return (x - base) * total


def test_ig_matches_hand_loop(tiny, images):
    ref = ref_post(ig_reference(tiny, images, predicted(tiny, images), steps=6))
    maps, _ = M.compute_maps("ig", tiny, images, {"steps": 6})
    np.testing.assert_allclose(maps, ref, atol=1e-4)
    small, _ = M.compute_maps("ig", tiny, images, {"steps": 6, "max_batch": 4})
    np.testing.assert_allclose(small, maps, atol=1e-5)


def test_sig_matches_hand_loop(tiny, images):
    def ig(model, xi, t):
        return ig_reference(model, xi, t, steps=3)

    ref = ref_post(sg_reference(tiny, images, 3, 11, inner=ig))
    maps, _ = M.compute_maps("sig", tiny, images, {"samples": 3, "steps": 3, "seed": 11, "max_batch": 10})
    np.testing.assert_allclose(maps, ref, atol=1e-4)


def gcam_reference(model, layer, x, target):
    acts = {}
    h = layer.register_forward_hook(lambda mod, i, o: acts.__setitem__("a", o))
    try:
        out = model(x)
    finally:
        h.remove()
    a = acts["a"]
    (g,) = torch.autograd.grad(out[torch.arange(len(x)), target].sum(), a)
    cam = torch.relu((g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True))
    return F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False).detach()


def test_gcam_matches_manual_hooks(tiny, images):
    ref = gcam_reference(tiny, tiny.block3, images, predicted(tiny, images))
    maps, _ = M.compute_maps("gcam", tiny, images, arch="tiny_cnn")
    np.testing.assert_allclose(maps, ref_post(ref, minmax=True), atol=1e-5)
    by_name, _ = M.compute_maps("gcam", tiny, images, {"layer": "block3"})
    np.testing.assert_array_equal(by_name, maps)


def test_ggcam_is_gbp_times_gcam(tiny, images):
    t = predicted(tiny, images)
    gbp = M._raw_gbp(tiny, images, t)
    cam = gcam_reference(tiny, tiny.block3, images, t)
    maps, _ = M.compute_maps("ggcam", tiny, images, arch="tiny_cnn")
    np.testing.assert_allclose(maps, ref_post(gbp * cam), atol=1e-5)


# --------------------------------------------------------------------------- GBP

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
    ours = M._raw_gbp(model, x, t)
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
    torch.testing.assert_close(M._raw_gbp(tiny, images, t), captum)
    assert not torch.allclose(captum, grad_of_logit(tiny, images, t), atol=1e-6)


@pytest.mark.parametrize("arch, size", [("inception_v3", 75), ("densenet121", 32)])
def test_gbp_differs_from_grad_on_torchvision(arch, size):
    torch.manual_seed(0)
    model = build_model(arch).eval()
    x = torch.rand(1, 3, size, size) * 2 - 1
    t = predicted(model, x)
    gbp = M._raw_gbp(model, x, t)
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
        with M.guided_relu():
            assert F.relu is not originals[0] and torch.Tensor.relu is not originals[4]
            raise KeyError
    assert (F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_) == originals
    assert ("relu" in torch.Tensor.__dict__, "relu_" in torch.Tensor.__dict__) == had
    # and plain backprop through a ReLU is the ordinary one again
    x = torch.tensor([-1.0, 2.0], requires_grad=True)
    (g,) = torch.autograd.grad((F.relu(x) * torch.tensor([-3.0, -3.0])).sum(), x)
    assert g.tolist() == [0.0, -3.0]


# --------------------------------------------------------------------------- reproducibility

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


# --------------------------------------------------------------------------- XRAI

def test_xrai_matches_pair_with_hand_ig_and_caches_segments(tiny, images, monkeypatch):
    from saliency.core.xrai import XRAI

    x = images[:2]
    t = predicted(tiny, x)
    steps = 4
    cache = {}
    calls = []
    real = M.xrai_segments
    monkeypatch.setattr(M, "xrai_segments", lambda im: calls.append(1) or real(im))
    maps, flags = M.compute_maps("xrai", tiny, x, {"steps": steps, "segment_cache": cache})
    assert maps.shape == (2, S, S) and maps.dtype == np.float32 and not flags.any()
    assert len(calls) == 2 and len(cache) == 2
    other = build_model("tiny_cnn").eval()
    M.compute_maps("xrai", other, x, {"steps": steps, "segment_cache": cache})
    assert len(calls) == 2  # segments reused across models

    refs = []
    for i in range(2):
        xi = x[i:i + 1]
        ig = torch.zeros_like(xi)
        for b in (xi.min().item(), xi.max().item()):  # PAIR's default baselines: image min and max
            base = torch.full_like(xi, b)
            g = sum(grad_of_logit(tiny, base + a * (xi - base), t[i:i + 1]) for a in np.linspace(0, 1, steps))
            ig += (xi - base) * g / steps / 2
        attr = ig[0].permute(1, 2, 0).double().numpy()
        segs = real(x[i])
        refs.append(XRAI().GetMask(x[i].permute(1, 2, 0).double().numpy(), None, segments=segs,
                                   base_attribution=attr))
    np.testing.assert_allclose(maps, ref_post(np.stack(refs), minmax=True), atol=1e-4)


@pytest.mark.parametrize("area_threshold", [1.0, 0.4])
def test_xrai_regions_equal_pairs_full_algorithm_bit_for_bit(area_threshold):
    from scipy.ndimage import gaussian_filter
    from saliency.core.xrai import XRAI

    g = np.random.default_rng(3)
    image = gaussian_filter(g.random((48, 48)), 2)
    segs = M.xrai_segments(image)
    assert len(segs) > 20  # overlapping segments of 6 scales: the greedy order matters
    for _ in range(3):
        attr = gaussian_filter(g.standard_normal((48, 48)), 2) + 0.1 * g.standard_normal((48, 48))
        want, _ = XRAI._xrai(attr, segs, area_perc_th=area_threshold, min_pixel_diff=50)
        got = M.xrai_regions(attr, segs, area_threshold=area_threshold)
        assert np.array_equal(got, want)
    covered = M.xrai_regions(attr, segs, area_threshold=area_threshold)
    assert np.isfinite(covered).all() and len(np.unique(covered)) > 3


def test_xrai_regions_tie_and_leftover_pixels():
    """Two identical segments: the first wins (PAIR's scan order), the second adds nothing and is
    dropped; pixels no segment covers get the mean attribution of those pixels."""
    attr = np.arange(100.0).reshape(10, 10)
    left = np.zeros((10, 10), bool)
    left[:, :6] = True
    right = np.zeros((10, 10), bool)
    right[:6, 6:] = True  # 24 pixels: under min_pixel_diff 50, never added
    out = M.xrai_regions(attr, [left, left.copy(), right])
    assert np.all(out[left] == attr[left].mean())
    assert np.all(out[~left] == attr[~left].mean())
    with pytest.raises(ValueError, match="segments of 64 pixels"):
        M.xrai_regions(attr, [np.ones((8, 8), bool)])


def test_xrai_attribution_equals_pairs_ig(tiny, images):
    """PAIR's IntegratedGradients from the image's min and max, averaged, max over channels;
    chunks of max_batch path points (2 here: steps 5 → 2 + 2 + 1)."""
    from saliency.core import IntegratedGradients
    from saliency.core import base as pair_base

    x = images[:3]
    t = predicted(tiny, x)

    def call_model_function(xb, call_model_args=None, expected_keys=None):
        xt = torch.tensor(np.asarray(xb), dtype=torch.float32).permute(0, 3, 1, 2).contiguous().requires_grad_(True)
        (gr,) = torch.autograd.grad(tiny(xt)[:, call_model_args["target"]].sum(), xt)
        return {pair_base.INPUT_OUTPUT_GRADIENTS: gr.permute(0, 2, 3, 1).numpy()}

    got = M.xrai_attribution(tiny, x, t, steps=5, max_batch=2)
    for i in range(3):
        xi = x[i].permute(1, 2, 0).double().numpy()
        igs = [IntegratedGradients().GetMask(xi, call_model_function, {"target": int(t[i])},
                                             x_baseline=np.full_like(xi, b), x_steps=5, batch_size=2)
               for b in (xi.min(), xi.max())]
        np.testing.assert_allclose(got[i], np.mean(igs, axis=0).max(axis=-1), rtol=1e-6, atol=1e-9)
    assert got.shape == (3, S, S) and got.dtype == np.float64


def test_xrai_fast_algorithm_and_unknown(tiny, images):
    from saliency.core.xrai import XRAI

    x = images[:1]
    t = predicted(tiny, x)
    maps, _ = M.compute_maps("xrai", tiny, x, {"steps": 3, "algorithm": "fast"})
    attr = M.xrai_attribution(tiny, x, t, steps=3)[0]
    want, _ = XRAI._xrai_fast(attr, M.xrai_segments(x[0]))
    np.testing.assert_allclose(maps[0], ref_post(want[None], minmax=True)[0], atol=1e-6)
    with pytest.raises(ValueError, match="unknown XRAI algorithm 'slow'"):
        M.compute_maps("xrai", tiny, x, {"algorithm": "slow"})


def test_xrai_segments_depend_only_on_image():
    from salaudit.models import preprocess

    g = np.random.default_rng(0)
    u8 = g.integers(0, 256, (1, S, S), dtype=np.uint8)
    a = M.xrai_segments(u8[0])
    b = M.xrai_segments(preprocess(u8)[0])
    assert len(a) == len(b) and all(np.array_equal(p, q) for p, q in zip(a, b))
    assert M.passes_per_image("xrai", {"steps": 7}) == 14


@pytest.mark.parametrize("minmax", [False, True])
def test_device_postprocess_equals_the_numpy_path(minmax):
    """The CUDA path (float32, batched) is the same formula; run here on CPU tensors."""
    g = torch.Generator().manual_seed(5)
    a = torch.randn(5, 3, 20, 20, generator=g) ** 3
    a[1] = 2.0  # constant
    a[2] = 0.0
    a[2, 0, 3, 4] = 1.0  # sparse: the 99th percentile equals the minimum
    a[3, 1, 5, 5] = float("nan")  # non-finite
    with pytest.warns(RuntimeWarning):
        want, want_flags = M.postprocess(a, minmax=minmax)
    with pytest.warns(RuntimeWarning):
        got, got_flags = M._postprocess_on_device(a, minmax)
    np.testing.assert_array_equal(got_flags, want_flags)
    np.testing.assert_array_equal(got_flags, [False, True, False, True, False])
    np.testing.assert_allclose(got, want, atol=1e-5)  # float32 vs float64; float16 rounding is 5e-4
    assert got[2].max() == 1.0 and got.dtype == np.float32


def test_gradcam_on_a_one_by_one_feature_map_is_flagged_not_noise():
    """InceptionV3 at 96 px: Mixed_7c is 1x1, its upsampled CAM is constant up to rounding."""
    torch.manual_seed(0)
    model = build_model("inception_v3").eval()
    x = torch.randn(2, 3, 96, 96)
    maps, flags = M.compute_maps("gcam", model, x, arch="inception_v3")
    assert flags.all() and not maps.any()
    # a map varying only in its last bits is constant; one varying by more is not
    base = np.full((1, 8, 8), 2.5, np.float32)
    noisy = base + np.float32(1e-7) * np.random.default_rng(0).standard_normal(base.shape).astype(np.float32)
    assert M.postprocess(noisy)[1].all()
    assert not M.postprocess(base + np.float32(1e-3) * np.eye(8, dtype=np.float32)[None])[1].any()
