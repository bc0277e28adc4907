"""The controls (salaudit.saliency.controls): each map is what its definition says, computed
independently here; the model plays the part it must (none for edge and prior)."""

import numpy as np
import pytest
import torch
from skimage.filters import sobel

from helpers.reference import B, PRIOR, S
from salaudit.models import build_model
from salaudit.saliency import methods as M
from salaudit.saliency.cam import gradcam_extent, upsample
from salaudit.saliency.postprocess import postprocess


def other_model():
    torch.manual_seed(7)
    return build_model("tiny_cnn").eval()


def test_edge_is_the_sobel_magnitude_of_the_image_whatever_the_model(tiny, images):
    maps, flags = M.compute_maps("edge", tiny, images)
    expected, _ = postprocess(np.stack([sobel(image) for image in images[:, 0].double().numpy()]))
    np.testing.assert_array_equal(maps, expected)
    again, _ = M.compute_maps("edge", other_model(), images)
    np.testing.assert_array_equal(again, maps)
    assert not flags.any() and not np.array_equal(maps[0], maps[1])


def test_prior_is_the_min_max_of_the_average_mask_for_every_image_and_model(tiny, images):
    maps, flags = M.compute_maps("prior", tiny, images, {"prior": PRIOR})
    expected = (PRIOR - PRIOR.min()) / (PRIOR.max() - PRIOR.min())  # no percentile clip: still the baseline
    for m in maps:
        np.testing.assert_allclose(m, expected, atol=1e-6)
    again, _ = M.compute_maps("prior", other_model(), images, {"prior": PRIOR})
    np.testing.assert_array_equal(again, maps)
    assert not flags.any()
    _, constant = M.compute_maps("prior", tiny, images, {"prior": np.full((S, S), 0.3)})
    assert constant.all()  # a constant average mask (no lesion in training) is flagged
    with pytest.raises(ValueError, match="needs the average training mask"):
        M.compute_maps("prior", tiny, images)
    with pytest.raises(ValueError, match=r"average mask of shape \(8, 8\) for images of \(16, 16\)"):
        M.compute_maps("prior", tiny, images, {"prior": np.ones((8, 8))})


def test_smooth_random_is_a_random_field_at_grad_cams_resolution_upsampled_like_grad_cam(tiny, images):
    maps, flags = M.compute_maps("smooth_random", tiny, images, {"seed": 3}, arch="tiny_cnn")
    rows, cols = gradcam_extent(tiny, "tiny_cnn", S)
    assert 1 < rows < S and 1 < cols < S
    g = torch.Generator().manual_seed(3)
    field = torch.rand((B, rows, cols), generator=g, dtype=torch.float64)
    expected, _ = postprocess(upsample(field, (S, S)).unsqueeze(1))
    np.testing.assert_array_equal(maps, expected)
    assert not flags.any() and not np.array_equal(maps[0], maps[1])
    # another model of the architecture: the same draw (the seed names the model in a run)
    again, _ = M.compute_maps("smooth_random", other_model(), images, {"seed": 3}, arch="tiny_cnn")
    np.testing.assert_array_equal(again, maps)
    # smooth: neighbouring pixels differ far less than white noise's do
    noise, _ = M.compute_maps("random", tiny, images, {"seed": 3})
    assert np.abs(np.diff(maps, axis=-1)).mean() < 0.5 * np.abs(np.diff(noise, axis=-1)).mean()


def test_smooth_random_follows_the_configured_grad_cam_layer(tiny, images):
    coarse, _ = M.compute_maps("smooth_random", tiny, images, {"seed": 1, "layer": "block3"}, arch="tiny_cnn")
    fine, _ = M.compute_maps("smooth_random", tiny, images, {"seed": 1, "layer": "block1"}, arch="tiny_cnn")
    assert gradcam_extent(tiny, "tiny_cnn", S, "block1")[0] > gradcam_extent(tiny, "tiny_cnn", S, "block3")[0]
    assert np.abs(np.diff(fine, axis=-1)).mean() > np.abs(np.diff(coarse, axis=-1)).mean()
