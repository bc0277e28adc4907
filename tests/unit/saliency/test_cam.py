"""Grad-CAM and Guided Grad-CAM (salaudit.saliency.cam): upsampling, a known CAM, PAIR's GradCam,
the layer per architecture."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.transform import resize
from torch import nn
from helpers.reference import S, B, vig, ref_post, minmax, predicted, hwc
from salaudit.saliency import cam as C, guided as G, methods as M, postprocess as P
from salaudit.models import build_model


@pytest.mark.parametrize("n_in, n_out", [(1, 16), (2, 16), (3, 96), (8, 320), (5, 7), (10, 320)])
def test_upsampling_equals_skimage_resize(n_in, n_out):
    """PAIR's GradCam upsamples with skimage.transform.resize (bilinear, mirrored edges)."""
    cam = torch.rand((2, n_in, n_in), generator=torch.Generator().manual_seed(n_in), dtype=torch.float64)
    got = C.upsample(cam, n_out).numpy()
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
    combined, combined_flags = P.guided_gradcam((gbp, gbp_flags), (gcam, gcam_flags))
    np.testing.assert_array_equal(combined, maps)
    # raw GBP x raw Grad-CAM (the previous definition) is another map (layer None: the registry's)
    raw = ref_post(G.raw_gbp(tiny, images, t) * C.raw_gcam(tiny, images, t, layer=None, arch="tiny_cnn"))
    assert np.abs(raw - maps).max() > 0.05
    # a flagged GCAM map flags GGCAM
    gcam_flags = np.array([False, True, False])
    gcam[1] = 0
    _, flags = P.guided_gradcam((gbp, gbp_flags), (gcam, gcam_flags))
    assert flags.tolist() == [False, True, False]


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
    assert P.postprocess(noisy)[1].all()
    assert not P.postprocess(base + np.float32(1e-3) * np.eye(8, dtype=np.float32)[None])[1].any()


def test_gradcam_layer_per_architecture_gives_spatial_extent_at_96_px():
    """The demo's choice: InceptionV3's Mixed_7c is 1x1 at 96 px, Mixed_6e (the last block
    before the final reduction) 4x4; a mapping names the layer per architecture."""
    torch.manual_seed(0)
    model = build_model("inception_v3").eval()
    assert C.gradcam_extent(model, "inception_v3", 96) == (1, 1)
    assert C.gradcam_extent(model, "inception_v3", 107) == (2, 2)
    per_arch = {"inception_v3": "Mixed_6e"}
    assert C.gradcam_layer_name(per_arch, "inception_v3") == "Mixed_6e"
    assert C.gradcam_layer_name(per_arch, "densenet121") == "relu"  # not in the mapping: the registry's
    assert C.gradcam_layer_name(None, "inception_v3") == "Mixed_7c"
    assert C.gradcam_extent(model, "inception_v3", 96, per_arch) == (4, 4)
    x = torch.randn(3, 3, 96, 96)
    maps, flags = M.compute_maps("gcam", model, x, {"layer": per_arch}, arch="inception_v3")
    # untrained weights: an image's CAM can be all negative (zero after the ReLU), not all three
    assert (~flags).sum() >= 2 and all(np.ptp(m) > 0.5 for m in maps[~flags])
    constant, _ = M.compute_maps("gcam", model, x, arch="inception_v3")
    assert not constant.any()
