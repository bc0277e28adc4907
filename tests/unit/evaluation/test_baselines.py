"""The average-mask baseline (salaudit.evaluation.baselines)."""

import numpy as np
import pandas as pd
import pytest
from salaudit.evaluation import baselines


def test_average_mask_uses_positive_training_masks_only():
    masks = np.zeros((5, 2, 2), np.uint8)
    masks[0] = [[1, 1], [0, 0]]  # train positive
    masks[1] = [[1, 0], [0, 0]]  # train positive
    masks[2] = [[0, 0], [1, 1]]  # test positive: excluded
    masks[3] = [[0, 0], [0, 0]]  # train negative: excluded
    masks[4] = [[1, 1], [1, 1]]  # inconsistent negative with a mask: excluded by label
    labels = np.array([1, 1, 1, 0, 0])
    splits = pd.DataFrame({"split": ["train", "train", "test", "train", "train"]})
    mean = baselines.average_mask(masks, labels, splits)
    assert mean.dtype == np.float32
    np.testing.assert_array_equal(mean, [[1.0, 0.5], [0.0, 0.0]])
    with pytest.raises(ValueError, match="no positive training"):
        baselines.average_mask(masks, np.zeros(5, int), splits)
