"""Post-processing (salaudit.saliency.postprocess): PAIR's VisualizeImageGrayscale then min-max."""

import numpy as np
import pytest
import torch
from helpers.reference import vig
from salaudit.saliency import postprocess as P


def test_postprocess_is_pairs_visualize_grayscale_then_minmax():
    m = np.arange(100, dtype=np.float64).reshape(1, 10, 10)
    m[0, 0, 0] = -1000.0  # abs → the largest value: an outlier clipped at the 99th percentile
    maps, flags = P.postprocess(m)
    a = np.abs(m[0])
    p99, lo = np.percentile(a, 99), a.min()
    assert lo == 1.0 and p99 < 1000
    assert maps[0, 0, 0] == 1.0  # clipped
    np.testing.assert_allclose(maps[0], np.clip((a - lo) / (p99 - lo), 0, 1), rtol=1e-6)
    assert (maps[0] == 1).sum() == 1  # p99 (linear interpolation) lies between 99 and the outlier
    np.testing.assert_allclose(maps[0], vig(m[0]), rtol=1e-6)  # PAIR's own function
    # channels: |.| summed
    four = np.stack([m, -m, m, np.zeros_like(m)], axis=1)
    np.testing.assert_allclose(P.postprocess(four)[0], maps, rtol=1e-6)
    assert not flags.any()


def test_postprocess_constant_and_nonfinite():
    a = np.zeros((3, 1, 4, 4))
    a[1] = 5.0
    a[2, 0, 0, 0] = 1.0
    maps, flags = P.postprocess(a)
    assert flags.tolist() == [True, True, False]
    assert (maps[:2] == 0).all() and np.isfinite(maps).all()
    # very sparse: p99 == min (PAIR divides by zero), the max is used instead
    assert maps[2, 0, 0] == 1 and maps[2].sum() == 1
    bad = np.ones((1, 1, 4, 4))
    bad[0, 0, 1, 1] = np.nan
    with pytest.warns(RuntimeWarning, match="non-finite"):
        maps, flags = P.postprocess(bad)
    assert flags.all() and (maps == 0).all()


def test_signed_postprocess_keeps_negative_regions_least_salient():
    """XRAI's region gains can be negative: min-max of the signed map ranks a strongly negative
    region lowest; |.| first would make it the most salient."""
    gains = np.zeros((1, 4, 4))
    gains[0, :2] = -5.0  # a region whose attribution is strongly negative
    gains[0, 2:, :2] = 1.0
    gains[0, 2:, 2:] = 2.0
    maps, flags = P.postprocess(gains, signed=True)
    np.testing.assert_allclose(maps[0], np.array([[0] * 4] * 2 + [[6 / 7] * 2 + [1] * 2] * 2), rtol=1e-6)
    assert not flags.any()
    absolute, _ = P.postprocess(gains)
    assert absolute[0, 0, 0] == 1.0  # the negative region would be the most salient
    with pytest.raises(ValueError, match=r"a signed map is \[B, S, S\]"):
        P.postprocess(gains[:, None], signed=True)


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
        want, want_flags = P.postprocess(a, signed=signed)
    with pytest.warns(RuntimeWarning):
        got, got_flags = P._postprocess_on_device(a, signed)
    np.testing.assert_array_equal(got_flags, want_flags)
    np.testing.assert_array_equal(got_flags, [False, True, False, True, False])
    np.testing.assert_allclose(got, want, atol=1e-5)  # float32 vs float64; float16 rounding is 5e-4
    assert got[2].max() == 1.0 and got.dtype == np.float32
