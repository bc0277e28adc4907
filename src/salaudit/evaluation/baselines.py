"""The paper's model-free baseline: the average mask of the training pool's positive images."""

from __future__ import annotations

import numpy as np
import pandas as pd


def average_mask(masks: np.ndarray, labels: np.ndarray, splits: pd.DataFrame) -> np.ndarray:
    """Mean mask of the positive images of the training pool (never the test split): float32 [S, S] in [0, 1]."""
    chosen = np.flatnonzero((splits["split"] == "train").to_numpy() & (np.asarray(labels) == 1))
    if len(chosen) == 0:
        raise ValueError("no positive training images to average")
    total = np.zeros(masks.shape[1:], dtype=np.float64)
    for start in range(0, len(chosen), 256):  # masks may be a memory map: read in chunks
        total += masks[chosen[start:start + 256]].sum(axis=0, dtype=np.float64)
    return (total / len(chosen)).astype(np.float32)
