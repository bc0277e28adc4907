"""Per-image metrics of maps against ground truth."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import auc, average_precision_score, precision_recall_curve


def auprc(saliency: np.ndarray, mask: np.ndarray) -> float:
    """Area under the precision-recall curve of a map against a mask, as the paper computed it.

    Pixels inside the mask are the positives, the map's values the scores:
    ``precision_recall_curve`` then the trapezoidal area under precision over recall.
    NaN when the mask is empty (no positives: the curve is undefined).
    """
    truth = (np.asarray(mask) > 0).ravel()
    if not truth.any():
        return float("nan")
    precision, recall, _ = precision_recall_curve(truth, np.asarray(saliency, dtype=np.float64).ravel())
    return float(auc(recall, precision))


def average_precision(saliency: np.ndarray, mask: np.ndarray) -> float:
    """Average precision (step-wise area), reported beside `auprc`; NaN for an empty mask."""
    truth = (np.asarray(mask) > 0).ravel()
    if not truth.any():
        return float("nan")
    return float(average_precision_score(truth, np.asarray(saliency, dtype=np.float64).ravel()))
