import numpy as np

from salaudit.evaluation.metrics import auprc, average_precision


def test_perfect_and_inverted_maps():
    mask = np.array([[1, 1], [0, 0]])
    assert auprc(np.array([[0.9, 0.8], [0.1, 0.2]]), mask) == 1.0
    # inverted: PR points (recall, precision) (1, 1/2), (1/2, 1/3), (0, 0), then sklearn's (0, 1):
    # trapezoids 0.5 * (1/2 + 1/3) / 2 + 0.5 * (1/3 + 0) / 2
    assert np.isclose(auprc(np.array([[0.1, 0.2], [0.9, 0.8]]), mask), 0.5 * (1 / 2 + 1 / 3) / 2 + 0.5 * (1 / 3) / 2)


def test_hand_computed_value():
    # scores 0.9 (pos), 0.8 (neg), 0.7 (pos), 0.1 (neg)
    mask = np.array([1, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    # PR points (recall, precision): thresholds 0.9 -> (0.5, 1), 0.8 -> (0.5, 0.5), 0.7 -> (1, 2/3),
    # 0.1 -> (1, 0.5); sklearn appends (0, 1). Trapezoids over recall: 0->0.5 at precision 1
    # (area 0.5), 0.5->1 between 0.5 and 2/3 (area 0.5 * (0.5 + 2/3) / 2 = 0.29167)
    assert np.isclose(auprc(scores, mask), 0.5 + 0.5 * (0.5 + 2 / 3) / 2)
    # average precision: 0.5 * 1 + 0.5 * 2/3
    assert np.isclose(average_precision(scores, mask), 0.5 + 0.5 * 2 / 3)


def test_constant_map_and_empty_mask():
    mask = np.zeros((10, 10), int)
    mask[:2] = 1
    # one PR point (recall 1, precision = prevalence 0.2) joined to sklearn's (0, 1) by a trapezoid:
    # (1 + 0.2) / 2 = 0.6 - the optimistic bias of the paper's trapezoidal AUPRC, kept on purpose
    assert np.isclose(auprc(np.full((10, 10), 0.3), mask), 0.6)
    assert np.isclose(average_precision(np.full((10, 10), 0.3), mask), 0.2)
    assert np.isnan(auprc(np.ones((3, 3)), np.zeros((3, 3))))
    assert np.isnan(average_precision(np.ones((3, 3)), np.zeros((3, 3))))


# --------------------------------------------------------------------------- evaluation additions

import pytest  # noqa: E402
from skimage.metrics import structural_similarity  # noqa: E402

from salaudit.evaluation.metrics import (  # noqa: E402
    constant_maps, local_moments, precision_recall_areas, random_partners, ssim, ssim_batch,
)


def test_precision_recall_areas_match_the_separate_functions():
    rng = np.random.default_rng(3)
    mask = rng.random((16, 16)) > 0.7
    scores = rng.random((16, 16))
    area, ap = precision_recall_areas(scores, mask)
    assert area == pytest.approx(auprc(scores, mask)) and ap == pytest.approx(average_precision(scores, mask))
    assert np.isnan(precision_recall_areas(scores, np.zeros((16, 16)))).all()


def test_ssim_of_identical_maps_is_one():
    rng = np.random.default_rng(0)
    a = rng.random((20, 20))
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(np.zeros((9, 9)), np.zeros((9, 9))) == pytest.approx(1.0)  # two all-zero (degenerate) maps
    np.testing.assert_allclose(ssim_batch(a[None], a[None]), [1.0])


def test_ssim_hand_computed_7x7_window_data_range_2():
    # A 7x7 map with a 7x7 window: after the 3-pixel border crop only the centre is left, whose
    # window is the whole map. x = 0 everywhere; y = 1 at one pixel. Means 0 and 1/49; sample
    # variances (49/48 normalisation) 0 and 49/48 * (1/49 - 1/49**2) = 1/49; covariance 0.
    x, y = np.zeros((7, 7)), np.zeros((7, 7))
    y[2, 5] = 1.0
    c1, c2 = (0.01 * 2.0) ** 2, (0.03 * 2.0) ** 2
    expected = (c1 * c2) / (((1 / 49) ** 2 + c1) * (1 / 49 + c2))
    assert expected == pytest.approx(0.07346, abs=1e-5)
    assert ssim(x, y) == pytest.approx(expected)
    assert ssim_batch(x[None], y[None])[0] == pytest.approx(expected)
    # data_range 1 (the maps' real range) shrinks the constants: a different, lower value
    d1 = (0.01 ** 2 * 0.03 ** 2) / (((1 / 49) ** 2 + 0.01 ** 2) * (1 / 49 + 0.03 ** 2))
    assert ssim(x, y, data_range=1.0) == pytest.approx(d1) and d1 < expected / 5


@pytest.mark.parametrize("win_size, data_range", [(7, 2.0), (11, 1.0)])
def test_ssim_batch_equals_scikit_image_pair_by_pair(win_size, data_range):
    rng = np.random.default_rng(1)
    a = rng.random((6, 24, 20))
    b = 0.5 * a + 0.5 * rng.random((6, 24, 20))
    b[2] = 0.0  # a degenerate map
    expected = [structural_similarity(x, y, win_size=win_size, data_range=data_range) for x, y in zip(a, b)]
    np.testing.assert_allclose(ssim_batch(a, b, win_size, data_range), expected, rtol=1e-10, atol=1e-12)
    # precomputed moments give the same numbers
    np.testing.assert_allclose(ssim_batch(a, b, win_size, data_range, moments_a=local_moments(a, win_size)), expected,
                               rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="odd"):
        ssim_batch(a, b, win_size=4)


def test_random_partners_never_pair_an_image_with_itself_and_follow_the_seed():
    partners = random_partners(30, 50, seed=7)
    assert partners.shape == (30, 50)
    assert not (partners == np.arange(30)[:, None]).any()
    assert partners.min() >= 0 and partners.max() <= 29
    np.testing.assert_array_equal(partners, random_partners(30, 50, seed=7))
    assert not np.array_equal(partners, random_partners(30, 50, seed=8))
    # every other image is reachable: over 50 draws x 30 rows all 29 partners of row 0 appear
    assert set(random_partners(30, 2000, seed=0)[0]) == set(range(1, 30))
    np.testing.assert_array_equal(random_partners(2, 5, seed=0), [[1] * 5, [0] * 5])  # two images: the other
    with pytest.raises(ValueError):
        random_partners(1, 5, seed=0)


def test_constant_maps():
    maps = np.zeros((3, 4, 4))
    maps[1, 0, 0] = 0.5
    maps[2] = 0.7
    np.testing.assert_array_equal(constant_maps(maps), [True, False, True])


# --------------------------------------------------------------------------- the follow-up studies' metrics

from salaudit.evaluation.metrics import (  # noqa: E402
    discrete_entropy, iou_otsu, pointing_game, ranks, pearson_of_ranks, spearman, spearman_batch,
)


def test_pointing_game_hits_misses_and_counts_ties_fractionally():
    mask = np.zeros((4, 4), int)
    mask[:2, :2] = 1
    hit = np.zeros((4, 4))
    hit[1, 1] = 1.0
    miss = np.zeros((4, 4))
    miss[3, 3] = 1.0
    assert pointing_game(hit, mask) == 1.0 and pointing_game(miss, mask) == 0.0
    tie = np.zeros((4, 4))
    tie[0, 0] = tie[3, 3] = tie[3, 2] = tie[2, 3] = 1.0  # 1 of 4 maxima inside
    assert pointing_game(tie, mask) == 0.25
    assert pointing_game(np.full((4, 4), 0.3), mask) == 0.25  # constant: the mask's area fraction
    assert np.isnan(pointing_game(hit, np.zeros((4, 4))))


def test_iou_otsu_thresholds_a_two_level_map_between_its_levels():
    mask = np.zeros((8, 8), int)
    mask[:4, :4] = 1  # 16 pixels
    heat = np.full((8, 8), 0.1)
    heat[:4, :6] = 0.9  # 24 pixels above Otsu's threshold, 16 of them in the mask
    assert iou_otsu(heat, mask) == pytest.approx(16 / 24)
    assert iou_otsu(np.full((8, 8), 0.5), mask) == pytest.approx(16 / 64)  # constant: the whole image
    assert np.isnan(iou_otsu(heat, np.zeros((8, 8))))


def test_spearman_equals_scipys_ties_included():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(5)
    a, b = rng.random((3, 10, 10)), rng.random((3, 10, 10))
    a[0, :5] = 0.5  # ties
    b[1] = a[1] ** 3  # a monotone transform: rho 1
    expected = [spearmanr(x.ravel(), y.ravel())[0] for x, y in zip(a, b)]
    np.testing.assert_allclose(spearman_batch(a, b), expected, rtol=1e-12)
    assert spearman(a[1], b[1]) == pytest.approx(1.0)
    assert np.isnan(spearman(np.ones((4, 4)), a[0, :4, :4]))
    np.testing.assert_allclose(pearson_of_ranks(ranks(a), ranks(b)), expected, rtol=1e-12)


def test_discrete_entropy_known_values():
    assert discrete_entropy(np.ones((5, 5)), 100) == 0.0  # constant: one bin
    two = np.zeros((4, 4))
    two[:2] = 1.0  # half the pixels at each end: ln 2
    assert discrete_entropy(two, 100) == pytest.approx(np.log(2))
    uniform = np.arange(100.0)  # one value per bin
    assert discrete_entropy(uniform, 100) == pytest.approx(np.log(100))


def test_pointing_game_and_entropy_agree_with_quantus():
    """Cross-check with the `quantus` package (0.6.0): its PointingGame on maps with one maximum,
    its discrete_entropy (EfficientMPRT's complexity) on float16 maps as the workflow stores them."""
    quantus = pytest.importorskip("quantus")
    from quantus.functions.complexity_func import discrete_entropy as quantus_entropy

    rng = np.random.default_rng(11)
    maps = rng.random((6, 1, 12, 12)).astype(np.float32)
    masks = np.zeros((6, 1, 12, 12), np.float32)
    for i, (r, c) in enumerate(rng.integers(0, 8, size=(6, 2))):
        masks[i, 0, r:r + 4, c:c + 4] = 1
    maps[0, 0, masks[0, 0] > 0] += 1  # one map whose maximum is surely inside its mask
    metric = quantus.PointingGame(disable_warnings=True, display_progressbar=False, normalise=False)
    scores = metric.evaluate_batch(a_batch=maps, s_batch=masks)
    ours = [pointing_game(m[0], s[0]) for m, s in zip(maps, masks)]
    assert list(map(float, scores)) == ours and ours[0] == 1.0
    for m in maps.astype(np.float16):
        assert discrete_entropy(m, 100) == pytest.approx(quantus_entropy(a=m.astype(np.float32), x=m, n_bins=100),
                                                         rel=1e-9)
