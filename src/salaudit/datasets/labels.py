"""Label files of the two Kaggle competitions: SIIM-ACR run-length masks, RSNA boxes.

SIIM-ACR (`train-rle.csv`, header ``ImageId, EncodedPixels``) encodes each mask as
*relative* run lengths over the image flattened **column-major** (flat index =
``col * height + row``): the text is pairs ``start length`` where each ``start`` counts
the pixels skipped since the end of the previous run (the first from pixel 0). A
negative image is ``-1``. One image may have several rows (one per connected region);
their masks are unioned.

RSNA Pneumonia (`stage_2_train_labels.csv`, columns ``patientId,x,y,width,height,Target``)
has one row per box in original-pixel coordinates, and one row with empty coordinates and
``Target=0`` for a negative image.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class LabelError(ValueError):
    """A label value that cannot be decoded; the message says which and why."""


# --------------------------------------------------------------------------- SIIM RLE
def decode_siim_rle(rle: str, height: int, width: int) -> np.ndarray:
    """Decode one SIIM relative column-major RLE string into a ``uint8 [height, width]`` mask.

    ``"-1"`` (or an empty string) decodes to an all-zero mask. Raises `LabelError` for a
    malformed string or a run that leaves the image.
    """
    text = str(rle).strip()
    mask = np.zeros(height * width, dtype=np.uint8)
    if text in ("", "-1"):
        return mask.reshape(width, height).T.copy()
    tokens = text.split()
    if len(tokens) % 2:
        raise LabelError(f"odd number of values ({len(tokens)}): RLE needs 'start length' pairs")
    try:
        values = np.array([int(t) for t in tokens], dtype=np.int64)
    except ValueError:
        bad = next(t for t in tokens if not t.lstrip("-").isdigit())
        raise LabelError(f"non-integer value {bad!r}") from None
    starts, lengths = values[0::2], values[1::2]
    if (starts < 0).any():
        raise LabelError(f"negative offset {int(starts[starts < 0][0])}")
    if (lengths <= 0).any():
        raise LabelError(f"run length {int(lengths[lengths <= 0][0])} is not positive")
    # Absolute start of run i = sum of all offsets and lengths before it, plus its offset.
    ends = np.cumsum(starts + lengths)
    begins = ends - lengths
    if ends[-1] > mask.size:
        i = int(np.argmax(ends > mask.size))
        raise LabelError(
            f"run {i + 1} covers pixels {int(begins[i])}..{int(ends[i]) - 1}, "
            f"outside the {height}x{width} image ({mask.size} pixels)"
        )
    # Runs are disjoint and ordered by construction; paint them with a difference array.
    delta = np.zeros(mask.size + 1, dtype=np.int32)
    np.add.at(delta, begins, 1)
    np.add.at(delta, ends, -1)
    mask[:] = np.cumsum(delta[:-1]) > 0
    return mask.reshape(width, height).T.copy()


def encode_siim_rle(mask: np.ndarray) -> str:
    """Encode a 2-D 0/1 mask (image orientation) as SIIM relative column-major RLE.

    The inverse of `decode_siim_rle`; an empty mask gives ``"-1"``.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise LabelError(f"mask must be 2-D, got shape {mask.shape}")
    flat = (mask.T.reshape(-1) > 0).astype(np.int8)
    if not flat.any():
        return "-1"
    edges = np.diff(np.concatenate([[0], flat, [0]]))
    begins = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    lengths = ends - begins
    previous_end = np.concatenate([[0], ends[:-1]])
    offsets = begins - previous_end
    return " ".join(f"{o} {n}" for o, n in zip(offsets.tolist(), lengths.tolist()))


@dataclass
class SiimLabel:
    """All rows of one ImageId in train-rle.csv."""

    image_id: str
    rows: list[tuple[int, str]] = field(default_factory=list)  # (line number, RLE text)
    file: str = ""  # the label file's name, named in errors (train-rle.csv, or a table)

    @property
    def label(self) -> int:
        return int(any(rle not in ("", "-1") for _, rle in self.rows))


def read_siim_labels(path: str | Path) -> dict[str, SiimLabel]:
    """Read ``train-rle.csv``; keys are ImageIds in file order.

    Accepts the header with or without the space before ``EncodedPixels``. Line numbers
    (1 = header) are kept so errors can point at the row.
    """
    labels: dict[str, SiimLabel] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:  # a spreadsheet export may start with a BOM
        reader = csv.reader(f, skipinitialspace=True)
        header = [h.strip() for h in next(reader, [])]
        if header[:2] != ["ImageId", "EncodedPixels"]:
            raise LabelError(f"{path}: expected header 'ImageId, EncodedPixels', got {header}")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 2:
                raise LabelError(f"{path}:{line}: expected 2 columns, got {len(row)}")
            image_id, rle = row[0].strip(), row[1].strip()
            labels.setdefault(image_id, SiimLabel(image_id, file=Path(path).name)).rows.append((line, rle))
    return labels


def siim_mask(label: SiimLabel, height: int, width: int) -> np.ndarray:
    """Union of the masks of all rows of one image. Raises `LabelError` naming the row."""
    if label.label and any(rle in ("", "-1") for _, rle in label.rows):
        lines = ", ".join(str(n) for n, _ in label.rows)
        raise LabelError(f"ImageId {label.image_id}: rows {lines} mix '-1' with masks")
    mask = np.zeros((height, width), dtype=np.uint8)
    for line, rle in label.rows:
        try:
            mask |= decode_siim_rle(rle, height, width)
        except LabelError as err:
            where = f"{label.file} line {line}" if label.file else f"line {line}"
            raise LabelError(f"ImageId {label.image_id} ({where}): {err}") from None
    return mask


# --------------------------------------------------------------------------- RSNA boxes
@dataclass
class RsnaLabel:
    """All rows of one patientId in stage_2_train_labels.csv."""

    patient_id: str
    target: int = 0
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)  # x, y, w, h
    problems: list[str] = field(default_factory=list)
    targets_seen: set[int] = field(default_factory=set)

    @property
    def label(self) -> int:
        return self.target


def _parse_float(text: str) -> float | None:
    text = text.strip()
    if text == "":
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def read_rsna_labels(path: str | Path) -> dict[str, RsnaLabel]:
    """Read ``stage_2_train_labels.csv``; keys are patientIds in file order.

    Problems of one patient (mixed targets, a positive row without a box, a box with a
    non-positive size) are collected in ``RsnaLabel.problems`` rather than raised, so the
    caller can report every problem at once.
    """
    labels: dict[str, RsnaLabel] = {}
    expected = ["patientId", "x", "y", "width", "height", "Target"]
    with open(path, newline="", encoding="utf-8-sig") as f:  # a spreadsheet export may start with a BOM
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if header != expected:
            raise LabelError(f"{path}: expected header {','.join(expected)}, got {header}")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 6:
                raise LabelError(f"{path}:{line}: expected 6 columns, got {len(row)}")
            pid = row[0].strip()
            entry = labels.setdefault(pid, RsnaLabel(pid))
            where = f"patientId {pid} (stage_2_train_labels.csv line {line})"
            try:
                target = int(row[5])
                x, y, w, h = (_parse_float(v) for v in row[1:5])
            except ValueError:
                entry.problems.append(f"{where}: unreadable values {row[1:]}")
                continue
            if target not in (0, 1):
                entry.problems.append(f"{where}: Target {target} is not 0 or 1")
                continue
            entry.targets_seen.add(target)
            if target == 1:
                if None in (x, y, w, h):
                    entry.problems.append(f"{where}: Target=1 without a complete box")
                    continue
                if w <= 0 or h <= 0:
                    entry.problems.append(f"{where}: box width/height must be positive, got {w}x{h}")
                    continue
                entry.boxes.append((x, y, w, h))
            elif any(v is not None for v in (x, y, w, h)):
                entry.problems.append(f"{where}: Target=0 with box coordinates")
                continue
            entry.target = max(entry.target, target)
    for entry in labels.values():
        if entry.targets_seen == {0, 1}:
            entry.problems.append(f"patientId {entry.patient_id}: rows with both Target=0 and Target=1")
        elif entry.target == 1 and len(entry.boxes) == 0 and not entry.problems:
            entry.problems.append(f"patientId {entry.patient_id}: Target=1 without boxes")
    return labels


def read_rsna_classes(path: str | Path) -> dict[str, str]:
    """``stage_2_detailed_class_info.csv``: patientId → class (first row wins; rows repeat per box)."""
    classes: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:  # a spreadsheet export may start with a BOM
        reader = csv.DictReader(f)
        for row in reader:
            classes.setdefault(row["patientId"].strip(), row["class"].strip())
    return classes


def box_pixels(box: tuple[float, float, float, float], rows: int, columns: int, size: int) -> tuple[int, int, int, int]:
    """Output-pixel extent ``(x0, y0, x1, y1)`` (half-open) of one box (x, y, w, h in original pixels).

    Coordinates scale by ``size / columns`` (x, w) and ``size / rows`` (y, h). A box covers
    the continuous interval ``[x, x + w)``; every output pixel that interval touches is
    included (inclusive fill), so a box never vanishes however small the output.
    """
    x, y, w, h = box
    sx, sy = size / columns, size / rows
    x0, x1 = x * sx, (x + w) * sx
    y0, y1 = y * sy, (y + h) * sy
    c0, c1 = max(0, math.floor(x0)), min(size, max(math.ceil(x1), math.floor(x0) + 1))
    r0, r1 = max(0, math.floor(y0)), min(size, max(math.ceil(y1), math.floor(y0) + 1))
    return c0, r0, c1, r1


def boxes_to_mask(
    boxes: list[tuple[float, float, float, float]], rows: int, columns: int, size: int
) -> np.ndarray:
    """Union of boxes (x, y, w, h in original pixels) painted into a ``uint8 [size, size]`` mask
    with the extents of `box_pixels`."""
    mask = np.zeros((size, size), dtype=np.uint8)
    for box in boxes:
        c0, r0, c1, r1 = box_pixels(box, rows, columns, size)
        if c0 < c1 and r0 < r1:
            mask[r0:r1, c0:c1] = 1
    return mask


def mask_boxes(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Bounding boxes ``(x0, y0, x1, y1)`` (half-open) of the 8-connected regions of a mask."""
    from scipy import ndimage

    regions, _ = ndimage.label(mask > 0, structure=np.ones((3, 3)))
    return [(sl[1].start, sl[0].start, sl[1].stop, sl[0].stop) for sl in ndimage.find_objects(regions)]
