"""Boxes on disk and through augmentation: ``boxes.csv`` read per image, and boxes carried
through a shift as one mask channel each (the box pixel convention: `salaudit.models.localizers`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from salaudit.models.localizers.networks import paint_boxes


def read_boxes(path: str | Path, image_ids) -> list[np.ndarray]:
    """``boxes.csv`` as one float32 ``[K, 4]`` array (x0, y0, x1, y1) per image, in ``image_ids`` order."""
    table = pd.read_csv(path, dtype={"image_id": str}, keep_default_na=False)
    missing = {"image_id", "x0", "y0", "x1", "y1"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {', '.join(sorted(missing))}")
    position = {image_id: i for i, image_id in enumerate(image_ids)}
    unknown = sorted(set(table["image_id"]) - set(position))
    if unknown:
        raise ValueError(f"{path}: {len(unknown)} image ids not in the manifest, e.g. {unknown[0]}")
    coords = table[["x0", "y0", "x1", "y1"]].to_numpy(dtype=np.float32)
    bad = (coords[:, 2] <= coords[:, 0]) | (coords[:, 3] <= coords[:, 1])
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{path}: empty box on line {row + 2} ({table['image_id'].iloc[row]})")
    boxes = [[] for _ in position]
    for image_id, box in zip(table["image_id"], coords):
        boxes[position[image_id]].append(box)
    return [np.asarray(b, dtype=np.float32).reshape(-1, 4) for b in boxes]


def boxes_from_masks(shifted: torch.Tensor, counts: list[int]) -> list[torch.Tensor]:
    """Boxes back from per-box masks ``[B, Kmax, S, S]`` (after a shift); boxes shifted out are dropped."""
    out = []
    for i, count in enumerate(counts):
        found = []
        for k in range(count):
            inside = shifted[i, k] > 0.5
            rows, cols = torch.nonzero(inside.any(1)).flatten(), torch.nonzero(inside.any(0)).flatten()
            if len(rows) and len(cols):
                found.append([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1])
        out.append(torch.tensor(found, dtype=torch.float32).reshape(-1, 4))
    return out


def box_masks(boxes: list[np.ndarray], size: int) -> torch.Tensor:
    """One 0/1 channel per box (`paint_boxes` convention), ``[B, max K, S, S]``."""
    kmax = max(1, max(len(b) for b in boxes))
    out = torch.zeros(len(boxes), kmax, size, size)
    for i, image_boxes in enumerate(boxes):
        for k, box in enumerate(image_boxes):
            out[i, k] = torch.from_numpy(paint_boxes(box[None], [1.0], size))
    return out
