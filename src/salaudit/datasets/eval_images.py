"""The evaluation images: the test positives whose mask is non-empty at the converted size, the
first ``n_eval`` in a seeded order (the rows of every map file)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from salaudit import seeds


def eval_candidates(manifest: pd.DataFrame, splits: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Rows that can be evaluation images, and positive test rows that cannot.

    A candidate is a positive test image whose mask is non-empty *at the converted size*
    (``mask_pixels > 0``): a tiny lesion can vanish when its mask is resized, and a map cannot
    be scored against an empty mask. Returns ``(candidates, positives_with_empty_mask)``.
    """
    positive_test = (splits["split"] == "test").to_numpy() & (manifest["label"].to_numpy() == 1)
    has_mask = manifest["mask_pixels"].to_numpy() > 0
    return np.flatnonzero(positive_test & has_mask), np.flatnonzero(positive_test & ~has_mask)


def select_eval_images(manifest: pd.DataFrame, splits: pd.DataFrame, n_eval: int, seed: int) -> pd.DataFrame:
    """The first ``n_eval`` `eval_candidates` in a seeded order (stream ``(seed, "eval_images")``):
    ``index,image_id``.

    ``index`` is the row in the converted arrays. Every map of every model, method and
    randomization step is computed on this list, in this order.
    """
    candidates, _ = eval_candidates(manifest, splits)
    order = seeds.rng(seed, "eval_images").permutation(len(candidates))
    chosen = candidates[order[:n_eval]]
    return pd.DataFrame({"index": chosen, "image_id": manifest["image_id"].to_numpy()[chosen]})
