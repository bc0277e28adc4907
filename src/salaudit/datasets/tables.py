"""The converted dataset's tables and arrays on disk (their contract is in the README):
columns of ``manifest.csv``, ``boxes.csv``, ``excluded.csv``; readers that check
``images.npy``, ``masks.npy``, ``manifest.csv``, ``splits.csv`` and ``eval_images.csv`` against
each other and fail with a one-line reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from salaudit import files, layout

MANIFEST_COLUMNS = [
    "image_id", "label", "patient_id", "source", "class", "n_regions", "mask_pixels",
    "rows", "columns", "bits_stored", "photometric", "transfer_syntax",
]

BOX_COLUMNS = ["image_id", "x0", "y0", "x1", "y1"]
EXCLUDED_COLUMNS = ["image_id", "reason"]


def converted_files(folder: str | Path) -> list[Path]:
    """The files of a converted dataset that `load_converted` reads (images, masks, manifest)."""
    return [Path(folder) / layout.file_name(t) for t in (layout.IMAGES, layout.MASKS, layout.MANIFEST)]


def load_converted(folder: str | Path, splits_path: str | Path):
    """The converted arrays (memory-mapped), manifest and splits of one dataset, checked
    against each other. Raises ValueError with a one-line reason.

    Returns ``(images, masks, manifest, splits)``.
    """
    folder = Path(folder)
    images_path, masks_path, manifest_path = converted_files(folder)
    for path in (images_path, masks_path, manifest_path, Path(splits_path)):
        if not path.is_file():
            raise ValueError(f"{path} does not exist")
    images = files.load_npy(images_path)
    masks = files.load_npy(masks_path)
    if images.ndim != 3 or images.shape[1] != images.shape[2] or images.dtype != np.uint8:
        raise ValueError(f"{folder}/images.npy must be uint8 [N, S, S], got {images.dtype} {images.shape}")
    if masks.shape != images.shape:
        raise ValueError(f"{folder}/masks.npy has shape {masks.shape}, images.npy {images.shape}")
    manifest = read_manifest(manifest_path)
    if len(manifest) != len(images):
        raise ValueError(f"{folder}/manifest.csv has {len(manifest)} rows for {len(images)} images")
    splits = pd.read_csv(splits_path, dtype={"image_id": str}, keep_default_na=False)
    if not {"image_id", "split", "fold"} <= set(splits.columns):
        raise ValueError(f"{splits_path}: expected columns image_id,split,fold, got {','.join(splits.columns)}")
    if splits["image_id"].tolist() != manifest["image_id"].tolist():
        raise ValueError(f"{splits_path} rows do not match {folder}/manifest.csv")
    return images, masks, manifest, splits


def read_manifest(path: str | Path) -> pd.DataFrame:
    """manifest.csv with ids kept as strings (SIIM ids look like numbers to pandas)."""
    return pd.read_csv(path, dtype={"image_id": str, "patient_id": str, "class": str}, keep_default_na=False)


def read_eval_images(path: str | Path, image_ids) -> np.ndarray:
    """Array indices of ``eval_images.csv`` (``index,image_id``), checked against the manifest ids."""
    table = pd.read_csv(path, dtype={"image_id": str}, keep_default_na=False)
    if not {"index", "image_id"} <= set(table.columns):
        raise ValueError(f"{path}: expected columns index,image_id, got {','.join(table.columns)}")
    index = table["index"].to_numpy(dtype=np.int64)
    ids = np.asarray(image_ids, dtype=object)
    if len(index) and (index.min() < 0 or index.max() >= len(ids)):
        raise ValueError(f"{path}: index out of range 0..{len(ids) - 1}")
    wrong = np.flatnonzero(ids[index] != table["image_id"].to_numpy(dtype=object))
    if len(wrong):
        row = int(wrong[0])
        raise ValueError(f"{path}: line {row + 2} has image_id {table['image_id'].iloc[row]} "
                         f"but manifest row {index[row]} is {ids[index[row]]}")
    return index
