import numpy as np

from salaudit.metrics import auprc, average_precision


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
