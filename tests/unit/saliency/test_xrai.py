"""XRAI (salaudit.saliency.xrai): PAIR's full algorithm bit for bit, its IG, segments and caching."""

import numpy as np
import pytest
from helpers.reference import S, minmax, predicted, pair_cmf, hwc
from salaudit.saliency import methods as M
from salaudit.saliency import xrai as X
from salaudit.models import build_model


def test_xrai_equals_pair_and_caches_segments(tiny, images, monkeypatch):
    from saliency.core import XRAI, XRAIParameters

    x = images[:2]
    t = predicted(tiny, x)
    cache = {}
    calls = []
    real = X.xrai_segments
    monkeypatch.setattr(X, "xrai_segments", lambda im: calls.append(1) or real(im))
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
    segs = X.xrai_segments(image)
    assert len(segs) > 20  # overlapping segments of 6 scales: the greedy order matters
    for _ in range(3):
        attr = gaussian_filter(g.standard_normal((48, 48)), 2) + 0.1 * g.standard_normal((48, 48))
        want, _ = XRAI._xrai(attr, segs, area_perc_th=area_threshold, min_pixel_diff=50)
        got = X.xrai_regions(attr, segs, area_threshold=area_threshold)
        assert np.array_equal(got, want)
    covered = X.xrai_regions(attr, segs, area_threshold=area_threshold)
    assert np.isfinite(covered).all() and len(np.unique(covered)) > 3


def test_xrai_regions_tie_and_leftover_pixels():
    """Two identical segments: the first wins (PAIR's scan order), the second adds nothing and is
    dropped; pixels no segment covers get the mean attribution of those pixels."""
    attr = np.arange(100.0).reshape(10, 10)
    left = np.zeros((10, 10), bool)
    left[:, :6] = True
    right = np.zeros((10, 10), bool)
    right[:6, 6:] = True  # 24 pixels: under min_pixel_diff 50, never added
    out = X.xrai_regions(attr, [left, left.copy(), right], area_threshold=1.0)
    assert np.all(out[left] == attr[left].mean())
    assert np.all(out[~left] == attr[~left].mean())
    with pytest.raises(ValueError, match="segments of 64 pixels"):
        X.xrai_regions(attr, [np.ones((8, 8), bool)], area_threshold=1.0)


def test_xrai_attribution_equals_pairs_ig(tiny, images):
    """PAIR's IntegratedGradients from the image's min and max, averaged, max over channels;
    chunks of max_batch path points (2 here: steps 5 → 2 + 2 + 1)."""
    from saliency.core import IntegratedGradients

    x = images[:3]
    t = predicted(tiny, x)
    got = X.xrai_attribution(tiny, x, t, steps=5, max_batch=2)
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
    # the max_batch compute_maps uses: the schema's
    attr = X.xrai_attribution(tiny, x, t, steps=3, max_batch=M.default_settings("xrai")["max_batch"])[0]
    want, _ = XRAI._xrai_fast(attr, X.xrai_segments(x[0]))
    np.testing.assert_allclose(maps[0], minmax(want), atol=1e-6)
    with pytest.raises(ValueError, match="unknown XRAI algorithm 'slow'"):
        M.compute_maps("xrai", tiny, x, {"algorithm": "slow"})


def test_xrai_segments_depend_only_on_image():
    from salaudit.models import preprocess

    g = np.random.default_rng(0)
    u8 = g.integers(0, 256, (1, S, S), dtype=np.uint8)
    a = X.xrai_segments(u8[0])
    b = X.xrai_segments(preprocess(u8)[0])
    assert len(a) == len(b) and all(np.array_equal(p, q) for p, q in zip(a, b))
    assert M.passes_per_image("xrai", {"steps": 7}) == 14
