"""Saliency methods (salaudit.methods): each against PAIR's library or a hand-checkable answer, on
tiny models. (tools/verify_maps.py, tested in test_verify_maps.py, compares whole map files.)"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.transform import resize
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


def vig(mask_3d):
    """PAIR's VisualizeImageGrayscale of an HWC (or HW) map, then saliency_ttest's min-max."""
    from saliency.core import VisualizeImageGrayscale

    m = VisualizeImageGrayscale(mask_3d if mask_3d.ndim == 3 else mask_3d[..., None])
    return (m - m.min()) / (m.max() - m.min())


def ref_post(attr):
    """The paper's post-processing of a batch [B, C, S, S] (PAIR's function, per image)."""
    a = np.asarray(attr, np.float64)
    return np.stack([vig(ai.transpose(1, 2, 0) if ai.ndim == 3 else ai) for ai in a]).astype(np.float32)


def minmax(m):
    m = np.asarray(m, np.float64)
    return (m - m.min()) / (m.max() - m.min())


def grad_of_logit(model, x, target):
    """d logit[target] / d x for a batch, with plain autograd."""
    x = x.detach().clone().requires_grad_(True)
    out = model(x)
    (g,) = torch.autograd.grad(out[torch.arange(len(x)), target].sum(), x)
    return g


def predicted(model, x):
    with torch.no_grad():
        return model(x).argmax(1)


def pair_cmf(model):
    """A PAIR call_model_function around a torch model (HWC float64 batches in, float32 out)."""
    from saliency.core import base as pair_base

    def call_model_function(xb, call_model_args=None, expected_keys=None):
        xt = torch.tensor(np.asarray(xb), dtype=torch.float32).permute(0, 3, 1, 2).contiguous().requires_grad_(True)
        (gr,) = torch.autograd.grad(model(xt)[:, call_model_args["target"]].sum(), xt)
        return {pair_base.INPUT_OUTPUT_GRADIENTS: gr.permute(0, 2, 3, 1).numpy()}

    return call_model_function


def hwc(x):
    return x.permute(1, 2, 0).double().numpy()


# --------------------------------------------------------------------------- registry

def test_registry_names_and_settings():
    assert list(M.METHODS) == list(M.DISPLAY_NAMES) and set(M.METHODS) == set(M.DEFAULT_SETTINGS)
    assert M.DISPLAY_NAMES["ggcam"] == "GGCAM" and M.DISPLAY_NAMES["random"] == "RANDOM"
    assert M.DEFAULT_SETTINGS["sg"]["samples"] == 25 and M.DEFAULT_SETTINGS["sg"]["noise"] == 0.15
    assert M.DEFAULT_SETTINGS["ig"]["steps"] == 10 and M.DEFAULT_SETTINGS["ig"]["baseline"] == -1.0
    assert M.DEFAULT_SETTINGS["ig"]["ig_method"] == M.DEFAULT_SETTINGS["sig"]["ig_method"] == "pair"
    assert M.passes_per_image("grad") == 1
    assert M.passes_per_image("sg") == 25
    assert M.passes_per_image("ig") == 10
    assert M.passes_per_image("sig", {"samples": 5}) == 50
    assert M.passes_per_image("ggcam") == 2
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


# --------------------------------------------------------------------------- post-processing

def test_postprocess_is_pairs_visualize_grayscale_then_minmax():
    m = np.arange(100, dtype=np.float64).reshape(1, 10, 10)
    m[0, 0, 0] = -1000.0  # abs → the largest value: an outlier clipped at the 99th percentile
    maps, flags = M.postprocess(m)
    a = np.abs(m[0])
    p99, lo = np.percentile(a, 99), a.min()
    assert lo == 1.0 and p99 < 1000
    assert maps[0, 0, 0] == 1.0  # clipped
    np.testing.assert_allclose(maps[0], np.clip((a - lo) / (p99 - lo), 0, 1), rtol=1e-6)
    assert (maps[0] == 1).sum() == 1  # p99 (linear interpolation) lies between 99 and the outlier
    np.testing.assert_allclose(maps[0], vig(m[0]), rtol=1e-6)  # PAIR's own function
    # channels: |.| summed
    four = np.stack([m, -m, m, np.zeros_like(m)], axis=1)
    np.testing.assert_allclose(M.postprocess(four)[0], maps, rtol=1e-6)
    assert not flags.any()


def test_signed_postprocess_keeps_negative_regions_least_salient():
    """XRAI's region gains can be negative: min-max of the signed map ranks a strongly negative
    region lowest; |.| first would make it the most salient."""
    gains = np.zeros((1, 4, 4))
    gains[0, :2] = -5.0  # a region whose attribution is strongly negative
    gains[0, 2:, :2] = 1.0
    gains[0, 2:, 2:] = 2.0
    maps, flags = M.postprocess(gains, signed=True)
    np.testing.assert_allclose(maps[0], np.array([[0] * 4] * 2 + [[6 / 7] * 2 + [1] * 2] * 2), rtol=1e-6)
    assert not flags.any()
    absolute, _ = M.postprocess(gains)
    assert absolute[0, 0, 0] == 1.0  # the negative region would be the most salient
    with pytest.raises(ValueError, match=r"a signed map is \[B, S, S\]"):
        M.postprocess(gains[:, None], signed=True)


def test_postprocess_constant_and_nonfinite():
    a = np.zeros((3, 1, 4, 4))
    a[1] = 5.0
    a[2, 0, 0, 0] = 1.0
    maps, flags = M.postprocess(a)
    assert flags.tolist() == [True, True, False]
    assert (maps[:2] == 0).all() and np.isfinite(maps).all()
    # very sparse: p99 == min (PAIR divides by zero), the max is used instead
    assert maps[2, 0, 0] == 1 and maps[2].sum() == 1
    bad = np.ones((1, 1, 4, 4))
    bad[0, 0, 1, 1] = np.nan
    with pytest.warns(RuntimeWarning, match="non-finite"):
        maps, flags = M.postprocess(bad)
    assert flags.all() and (maps == 0).all()


@pytest.mark.parametrize("signed", [False, True])
def test_device_postprocess_equals_the_numpy_path(signed):
    """The CUDA path (float32, batched) is the same formula; run here on CPU tensors."""
    g = torch.Generator().manual_seed(5)
    a = torch.randn(5, 3, 20, 20, generator=g) ** 3
    if signed:
        a = a[:, 0]
    a[1] = 2.0  # constant
    a[2] = 0.0
    a[2, ..., 3, 4] = 1.0  # sparse: the 99th percentile equals the minimum
    a[3, ..., 5, 5] = float("nan")  # non-finite
    with pytest.warns(RuntimeWarning):
        want, want_flags = M.postprocess(a, signed=signed)
    with pytest.warns(RuntimeWarning):
        got, got_flags = M._postprocess_on_device(a, signed)
    np.testing.assert_array_equal(got_flags, want_flags)
    np.testing.assert_array_equal(got_flags, [False, True, False, True, False])
    np.testing.assert_allclose(got, want, atol=1e-5)  # float32 vs float64; float16 rounding is 5e-4
    assert got[2].max() == 1.0 and got.dtype == np.float32


class ZeroGrad(nn.Module):
    """Logits that do not depend on the input: every gradient map is constant."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.bias = nn.Parameter(torch.tensor([0.0, 1.0]))

    def forward(self, x):
        return self.conv(x).mean((2, 3)) * 0 + self.bias


@pytest.mark.parametrize("method", ["grad", "sg", "ig", "gcam", "gbp", "ggcam"])
def test_constant_map_zeros_and_flagged(images, method):
    settings = FAST.get(method) or ({"layer": "conv"} if "cam" in method else None)
    maps, flags = M.compute_maps(method, ZeroGrad(), images, settings)
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

def test_grad_equals_pairs_gradient_saliency(tiny, images):
    from saliency.core import GradientSaliency

    maps, _ = M.compute_maps("grad", tiny, images)
    t = predicted(tiny, images)
    for i in range(B):
        mask = GradientSaliency().GetMask(hwc(images[i]), pair_cmf(tiny), {"target": int(t[i])})
        np.testing.assert_allclose(maps[i], vig(mask), atol=1e-5)


class Cubic(nn.Module):
    """logit_1 = Σ w x³ (logit_0 = 0): IG has a closed form."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        z = (self.w * x ** 3).flatten(1).sum(1)
        return torch.stack([torch.zeros_like(z), z], dim=1)


@pytest.mark.parametrize("steps", [2, 5, 10])
def test_ig_is_pairs_rule_on_a_known_integral(steps):
    """PAIR's rule: (x - b) × mean of ∇f at b + α (x - b), α = linspace(0, 1, n), equal weights,
    both ends included. For f = Σ w x³: 3 w d (b² + b d + d² (2n - 1) / (6 (n - 1))), d = x - b —
    not the true integral w (x³ - b³), whose d² term is 1/3. Captum's riemann_trapezoid halves the
    end weights of 1/n: (n - 1)/n times the trapezoid rule, whose d² term is 1/3 + 1/(6 (n - 1)²)."""
    g = torch.Generator().manual_seed(0)
    w = torch.rand((1, 3, 4, 4), generator=g, dtype=torch.float64) + 0.5
    model = Cubic(w.float())
    x = torch.rand((2, 3, 4, 4), generator=g) * 2 - 1
    target = torch.ones(2, dtype=torch.long)
    b = -1.0
    d = x.double() - b
    want = 3 * w * d * (b ** 2 + b * d + d ** 2 * (2 * steps - 1) / (6 * (steps - 1)))
    got = M.integrated_gradients(model, x, target, b, steps=steps, points_per_image=3)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    exact = w * (x.double() ** 3 - b ** 3)
    assert not torch.allclose(got, exact, rtol=1e-3)
    trap = M.integrated_gradients(model, x, target, b, steps=steps, ig_method="riemann_trapezoid")
    want_trap = 3 * w * d * (steps - 1) / steps * (b ** 2 + b * d + d ** 2 * (1 / 3 + 1 / (6 * (steps - 1) ** 2)))
    torch.testing.assert_close(trap, want_trap, rtol=1e-5, atol=1e-6)


def test_ig_equals_pairs_integrated_gradients(tiny, images):
    """The map of every image equals PAIR's IntegratedGradients.GetMask, whose batch_size is the
    points of one image per pass (max_batch 7 over 3 images: 2 → chunks 2 + 2 + 1 of 5 steps)."""
    from saliency.core import IntegratedGradients

    maps, _ = M.compute_maps("ig", tiny, images, {"steps": 5, "max_batch": 7})
    t = predicted(tiny, images)
    for i in range(B):
        xi = hwc(images[i])
        mask = IntegratedGradients().GetMask(xi, pair_cmf(tiny), {"target": int(t[i])},
                                             x_baseline=np.full_like(xi, -1.0), x_steps=5, batch_size=2)
        np.testing.assert_allclose(maps[i], vig(mask), atol=1e-5)


def noise_draws(images, samples, seed):
    """The project's documented noise: sample k is the k-th randn(images.shape) of a generator
    seeded with the batch's seed."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(images.shape, generator=g) for _ in range(samples)]


def pair_smoothed(images, t, draws, get_smoothed_mask, samples):
    """PAIR's GetSmoothedMask per image, its np.random.normal(0, stdev, shape) fed stdev × the draws."""
    import saliency.core.base as pair_base

    out, original = [], pair_base.np

    class Numpy:
        def __getattr__(self, name):
            return getattr(original, name)

    for i in range(len(images)):
        queue = [d[i].permute(1, 2, 0).double().numpy() for d in draws]
        fake = Numpy()
        fake.random = type("R", (), {"normal": staticmethod(lambda loc, scale, size: scale * queue.pop(0))})
        pair_base.np = fake
        try:
            out.append(get_smoothed_mask(hwc(images[i]), {"target": int(t[i])}))
        finally:
            pair_base.np = original
        assert not queue  # every draw used, in order
    return np.stack(out)


def test_sg_equals_pairs_get_smoothed_mask_with_the_projects_noise(tiny, images):
    from saliency.core import GradientSaliency

    t = predicted(tiny, images)
    draws = noise_draws(images, 5, 7)
    want = pair_smoothed(images, t, draws, lambda x, args: GradientSaliency().GetSmoothedMask(
        x, pair_cmf(tiny), args, stdev_spread=0.15, nsamples=5, magnitude=True), 5)
    maps, _ = M.compute_maps("sg", tiny, images, {"samples": 5, "seed": 7})
    np.testing.assert_allclose(maps, np.stack([vig(m) for m in want]), atol=1e-5)
    mean, _ = M.compute_maps("sg", tiny, images, {"samples": 5, "seed": 7, "nt_type": "smoothgrad"})
    want = pair_smoothed(images, t, draws, lambda x, args: GradientSaliency().GetSmoothedMask(
        x, pair_cmf(tiny), args, stdev_spread=0.15, nsamples=5, magnitude=False), 5)
    np.testing.assert_allclose(mean, np.stack([vig(m) for m in want]), atol=1e-5)


def test_sig_equals_pairs_smoothed_integrated_gradients(tiny, images):
    from saliency.core import IntegratedGradients

    t = predicted(tiny, images)
    draws = noise_draws(images, 3, 11)
    want = pair_smoothed(images, t, draws, lambda x, args: IntegratedGradients().GetSmoothedMask(
        x, pair_cmf(tiny), args, stdev_spread=0.15, nsamples=3, magnitude=True, x_baseline=np.full_like(x, -1.0),
        x_steps=3, batch_size=3), 3)
    maps, _ = M.compute_maps("sig", tiny, images, {"samples": 3, "steps": 3, "seed": 11, "max_batch": 10})
    np.testing.assert_allclose(maps, np.stack([vig(m) for m in want]), atol=1e-5)


@pytest.mark.parametrize("n_in, n_out", [(1, 16), (2, 16), (3, 96), (8, 320), (5, 7), (10, 320)])
def test_upsampling_equals_skimage_resize(n_in, n_out):
    """PAIR's GradCam upsamples with skimage.transform.resize (bilinear, mirrored edges)."""
    cam = torch.rand((2, n_in, n_in), generator=torch.Generator().manual_seed(n_in), dtype=torch.float64)
    got = M.upsample(cam, n_out).numpy()
    for i in range(2):
        np.testing.assert_allclose(got[i], resize(cam[i].numpy(), (n_out, n_out)), rtol=0, atol=1e-12)


class KnownCam(nn.Module):
    """Activations A = relu(conv(x)) of 2 channels at half resolution; head: mean pool + linear.
    ∂logit_1/∂A_k = w_k / (h w) everywhere, so Grad-CAM = relu(Σ_k w_k A_k) / (h w)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 2, stride=2)
        self.act = nn.ReLU()
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).mean((2, 3)))


def test_gcam_post_processing_of_a_known_cam(images):
    torch.manual_seed(2)
    model = KnownCam().eval()
    with torch.no_grad():
        model.fc.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, -0.5]]))
        model.fc.bias.copy_(torch.tensor([-100.0, 0.0]))  # class 1 is predicted
        acts = torch.relu(model.conv(images))
    cam = torch.relu(acts[:, 0] - 0.5 * acts[:, 1]).numpy()  # the 1/(h w) scale cancels in post-processing
    maps, flags = M.compute_maps("gcam", model, images, {"layer": "act"})
    assert not flags.any()
    for i in range(B):
        up = resize(cam[i], (S, S))  # PAIR: resize, 3 channels, VisualizeImageGrayscale, min-max
        np.testing.assert_allclose(maps[i], vig(np.repeat(up[..., None], 3, axis=2)), atol=1e-5)


def test_gcam_equals_pairs_gradcam(tiny, images):
    from saliency.core import GradCam
    from saliency.core import base as pair_base

    held = {}
    tiny.block3.register_forward_hook(lambda m, i, o: held.__setitem__("a", o))

    def cmf(xb, call_model_args=None, expected_keys=None):
        xt = torch.tensor(np.asarray(xb), dtype=torch.float32).permute(0, 3, 1, 2).contiguous()
        out = tiny(xt)
        (g,) = torch.autograd.grad(out[:, call_model_args["target"]].sum(), held["a"])
        return {pair_base.CONVOLUTION_LAYER_VALUES: held["a"].detach().permute(0, 2, 3, 1).numpy(),
                pair_base.CONVOLUTION_OUTPUT_GRADIENTS: g.permute(0, 2, 3, 1).numpy()}

    try:
        maps, _ = M.compute_maps("gcam", tiny, images, arch="tiny_cnn")
        t = predicted(tiny, images)
        for i in range(B):
            mask = GradCam().GetMask(hwc(images[i]), cmf, {"target": int(t[i])}, should_resize=True, three_dims=True)
            np.testing.assert_allclose(maps[i], vig(mask), atol=1e-5)
    finally:
        tiny.block3._forward_hooks.clear()
    by_name, _ = M.compute_maps("gcam", tiny, images, {"layer": "block3"})
    np.testing.assert_array_equal(by_name, maps)


def test_densenet_gradcam_layer_is_what_the_classifier_receives():
    """DenseNet121's `features` ends with norm5 (before torchvision's functional ReLU); Grad-CAM
    uses the ReLU's output, which the pooled classifier receives."""
    torch.manual_seed(0)
    model = build_model("densenet121").eval()
    x = torch.rand(2, 3, 96, 96) * 2 - 1
    t = predicted(model, x)
    feats = model.features(x)
    acts = F.relu(feats)
    logits = model.classifier(torch.flatten(F.adaptive_avg_pool2d(acts, 1), 1))
    torch.testing.assert_close(logits, model(x))
    (g,) = torch.autograd.grad(logits.gather(1, t.view(-1, 1)).sum(), acts)
    cam = torch.relu((g.mean((2, 3), keepdim=True) * acts).sum(1)).detach().numpy()
    maps, _ = M.compute_maps("gcam", model, x, arch="densenet121")
    for i in range(2):
        np.testing.assert_allclose(maps[i], vig(resize(cam[i], (96, 96))), atol=1e-5)
    pre_relu, _ = M.compute_maps("gcam", model, x, {"layer": "features"})
    assert np.abs(pre_relu - maps).max() > 0.05  # the layer matters


def test_ggcam_is_the_product_of_the_post_processed_maps(tiny, images):
    t = predicted(tiny, images)
    gbp, gbp_flags = M.compute_maps("gbp", tiny, images)
    gcam, gcam_flags = M.compute_maps("gcam", tiny, images, arch="tiny_cnn")
    maps, flags = M.compute_maps("ggcam", tiny, images, arch="tiny_cnn", target=t)
    np.testing.assert_allclose(maps, np.stack([minmax(a * b) for a, b in zip(gbp, gcam)]), atol=1e-6)
    combined, combined_flags = M.guided_gradcam((gbp, gbp_flags), (gcam, gcam_flags))
    np.testing.assert_array_equal(combined, maps)
    # raw GBP x raw Grad-CAM (the previous definition) is another map
    raw = ref_post(M._raw_gbp(tiny, images, t) * M._raw_gcam(tiny, images, t, arch="tiny_cnn"))
    assert np.abs(raw - maps).max() > 0.05
    # a flagged GCAM map flags GGCAM
    gcam_flags = np.array([False, True, False])
    gcam[1] = 0
    _, flags = M.guided_gradcam((gbp, gbp_flags), (gcam, gcam_flags))
    assert flags.tolist() == [False, True, False]


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

def test_xrai_equals_pair_and_caches_segments(tiny, images, monkeypatch):
    from saliency.core import XRAI, XRAIParameters

    x = images[:2]
    t = predicted(tiny, x)
    cache = {}
    calls = []
    real = M.xrai_segments
    monkeypatch.setattr(M, "xrai_segments", lambda im: calls.append(1) or real(im))
    maps, flags = M.compute_maps("xrai", tiny, x, {"steps": 4, "segment_cache": cache, "max_batch": 3})
    assert maps.shape == (2, S, S) and maps.dtype == np.float32 and not flags.any()
    assert len(calls) == 2 and len(cache) == 2
    other = build_model("tiny_cnn").eval()
    M.compute_maps("xrai", other, x, {"steps": 4, "segment_cache": cache})
    assert len(calls) == 2  # segments reused across models
    for i in range(2):  # PAIR's own XRAI: its IG loop (batch_size = max_batch), its segments
        mask = XRAI().GetMask(hwc(x[i]), pair_cmf(tiny), {"target": int(t[i])}, batch_size=3,
                              extra_parameters=XRAIParameters(steps=4))
        np.testing.assert_allclose(maps[i], minmax(mask), atol=1e-6)  # signed min-max


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

    x = images[:3]
    t = predicted(tiny, x)
    got = M.xrai_attribution(tiny, x, t, steps=5, max_batch=2)
    for i in range(3):
        xi = hwc(x[i])
        igs = [IntegratedGradients().GetMask(xi, pair_cmf(tiny), {"target": int(t[i])},
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
    np.testing.assert_allclose(maps[0], minmax(want), atol=1e-6)
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


def test_gradcam_layer_per_architecture_gives_spatial_extent_at_96_px():
    """The demo's choice: InceptionV3's Mixed_7c is 1x1 at 96 px, Mixed_6e (the last block
    before the final reduction) 4x4; a mapping names the layer per architecture."""
    torch.manual_seed(0)
    model = build_model("inception_v3").eval()
    assert M.gradcam_extent(model, "inception_v3", 96) == (1, 1)
    assert M.gradcam_extent(model, "inception_v3", 107) == (2, 2)
    per_arch = {"inception_v3": "Mixed_6e"}
    assert M.gradcam_layer_name(per_arch, "inception_v3") == "Mixed_6e"
    assert M.gradcam_layer_name(per_arch, "densenet121") == "relu"  # not in the mapping: the registry's
    assert M.gradcam_layer_name(None, "inception_v3") == "Mixed_7c"
    assert M.gradcam_extent(model, "inception_v3", 96, per_arch) == (4, 4)
    x = torch.randn(3, 3, 96, 96)
    maps, flags = M.compute_maps("gcam", model, x, {"layer": per_arch}, arch="inception_v3")
    # untrained weights: an image's CAM can be all negative (zero after the ReLU), not all three
    assert (~flags).sum() >= 2 and all(np.ptp(m) > 0.5 for m in maps[~flags])
    constant, _ = M.compute_maps("gcam", model, x, arch="inception_v3")
    assert not constant.any()
