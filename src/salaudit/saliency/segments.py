"""XRAI's segments of the evaluation images, computed once per dataset (rule ``xrai_segments``)
and read by every saliency job: they depend only on the image. A module of its own so that the
rule's code version (`salaudit.codehash`) follows the segmentation code only, not every saliency
method's.

``results/{dataset}/maps/xrai_segments.npz``: ``index`` (array rows), ``counts`` (segments per
image), ``shape`` (``[S, S]``), ``bits`` (each segment's bool mask, ``np.packbits``-ed).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from salaudit import files, models
from salaudit.saliency.xrai import image_key, xrai_segments


def compute_segments(images_uint8: np.ndarray, workers: int) -> list[list[np.ndarray]]:
    """XRAI's segments of each image (`xrai_segments` of the preprocessed image)."""
    x = models.preprocess(np.asarray(images_uint8))
    if workers > 1 and len(x) > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(min(workers, len(x))) as pool:
            return pool.map(xrai_segments, list(x.numpy()))
    return [xrai_segments(xi) for xi in x]


def save_segments(path: str | Path, index: Sequence[int], segments: Sequence[Sequence[np.ndarray]]) -> None:
    """Segments of each image packed as bits: ``index`` (array rows), ``counts``, ``shape``,
    ``bits`` (uint8 ``[sum(counts), ceil(S*S/8)]``)."""
    if len(index) != len(segments):
        raise ValueError(f"{len(index)} indices but segments of {len(segments)} images")
    shape = np.asarray(segments[0][0].shape, np.int64)
    flat = [np.asarray(s, bool).reshape(-1) for segs in segments for s in segs]
    bits = np.packbits(np.stack(flat), axis=1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, index=np.asarray(index, np.int64),
                            counts=np.asarray([len(s) for s in segments], np.int64), shape=shape, bits=bits)


def load_segments(path: str | Path) -> tuple[np.ndarray, list[list[np.ndarray]]]:
    """(index, per-image list of bool ``[S, S]`` segments) from `save_segments`' file."""
    files.check_zip(path)
    with np.load(path) as z:
        index, counts, shape, bits = z["index"], z["counts"], tuple(z["shape"]), z["bits"]
    masks = np.unpackbits(bits, axis=1, count=int(np.prod(shape))).astype(bool).reshape((-1, *shape))
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return index, [list(masks[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def segment_cache(images_uint8: np.ndarray, segments: Sequence[Sequence[np.ndarray]]) -> dict:
    """The ``segment_cache`` dict XRAI reads: preprocessed-image key → segments."""
    x = models.preprocess(np.asarray(images_uint8))
    if len(x) != len(segments):
        raise ValueError(f"{len(x)} images but segments of {len(segments)}")
    return {image_key(xi): list(segs) for xi, segs in zip(x, segments)}
