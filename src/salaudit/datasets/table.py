"""``format: table``: any dataset described by one CSV under its root folder.

One row per image (per box for boxes), columns (header names exact, any order):

* ``image``: path of the image relative to ``root``: DICOM (``.dcm``), PNG, JPEG or TIFF, 8- or
  16-bit grey; an RGB (or palette, grey+alpha, ...) image is converted to grey with a warning;
* ``label``: ``1`` abnormal, ``0`` not;
* the abnormality, exactly one encoding: ``mask`` (path of a PNG/TIFF mask of the image's size,
  non-zero = inside; empty for negatives), ``x,y,width,height`` (a box in original pixels, one
  row per box, empty for negatives: RSNA's convention) or ``rle`` (SIIM's relative column-major
  run lengths, `salaudit.datasets.labels.decode_siim_rle`; empty or ``-1`` for negatives);
  several rows of one image are unioned;
* optional ``patient_id`` (images of one patient stay in one fold; empty: the DICOM's PatientID,
  else the image id) and ``split`` (``train|val|test``, what a split file says: an image with an
  empty split is left out of the study, ``test`` is the test set, ``train`` + ``val`` the fold pool).

The image id (manifest, splits) is the ``image`` path without its suffix (``images/p1.png`` →
``images/p1``). The encoding decides the localizer (`salaudit.registry.ENCODING_LOCALIZER`);
`encoding_of` reads only the header, so the workflow chooses at parse time. The CSV only: its
images and masks are read by `salaudit.datasets.image_files`. Torch-free, and free of image
libraries (the rules that ask for a dataset's localizer need neither).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from salaudit.datasets.formats import TABLE_IMAGE_SUFFIXES as IMAGE_SUFFIXES
from salaudit.datasets.formats import TABLE_MASK_SUFFIXES as MASK_SUFFIXES

IMAGE, LABEL, MASK, RLE, PATIENT, SPLIT = "image", "label", "mask", "rle", "patient_id", "split"
BOX = ("x", "y", "width", "height")
ENCODINGS = {"mask": (MASK,), "boxes": BOX, "rle": (RLE,)}
COLUMNS = (IMAGE, LABEL, MASK, *BOX, RLE, PATIENT, SPLIT)
SPLIT_VALUES = ("train", "val", "test")
CLASSES = ("positive", "negative")  # the manifest's class of label 1 / 0 (a table has no other classes)


class TableError(ValueError):
    """A table that cannot be read as a whole (its header); the message names the file."""


def read_header(path: str | Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as handle:  # a spreadsheet export may start with a BOM
        return [name.strip() for name in next(csv.reader(handle), [])]


def encoding_of(path: str | Path) -> str:
    """``mask``, ``boxes`` or ``rle``: the table's abnormality encoding, from its header alone.
    A header with an unknown column, without ``image``/``label``, with part of the box columns or
    with no or several encodings is a `TableError` naming the columns."""
    header = read_header(path)
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise TableError(f"{path}: unknown columns {unknown}; allowed: {', '.join(COLUMNS)}")
    missing = [name for name in (IMAGE, LABEL) if name not in header]
    if missing:
        raise TableError(f"{path}: missing columns {missing} (header: {','.join(header) or 'empty'})")
    partial = [name for name in BOX if name not in header]
    if 0 < len(partial) < len(BOX):
        raise TableError(f"{path}: box columns need all of {','.join(BOX)}; missing {partial}")
    found = [name for name, columns in ENCODINGS.items() if columns[0] in header]
    if len(found) != 1:
        raise TableError(f"{path}: needs exactly one abnormality encoding - a column mask, columns "
                         f"{','.join(BOX)} or a column rle - found {found or 'none'}")
    return found[0]


def has_split(path: str | Path) -> bool:
    return SPLIT in read_header(path)


@dataclass
class TableImage:
    """Every row of one image."""

    image: str  # its path relative to root, as the table writes it
    lines: list[int] = field(default_factory=list)
    labels: set[int] = field(default_factory=set)
    patients: set[str] = field(default_factory=set)
    splits: set[str] = field(default_factory=set)
    masks: list[str] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    rles: list[tuple[int, str]] = field(default_factory=list)  # (line, RLE text)
    problems: list[str] = field(default_factory=list)

    @property
    def image_id(self) -> str:
        return image_id(self.image)

    @property
    def label(self) -> int:
        return max(self.labels, default=0)

    @property
    def patient_id(self) -> str:
        return next(iter(self.patients), "")

    @property
    def split(self) -> str:
        return next(iter(self.splits), "")


def image_id(image: str) -> str:
    """The id of an image: its path (relative to root, ``/``-separated) without the suffix."""
    path = PurePosixPath(image.replace("\\", "/"))
    return str(path.with_suffix("")) if path.suffix else str(path)


def _number(text: str) -> float | None:
    text = text.strip()
    if text == "":
        return None
    value = float(text)
    if not np.isfinite(value):
        raise ValueError(text)
    return value


def read_table(path: str | Path) -> tuple[str, dict[str, TableImage], list[tuple[str, str]]]:
    """``(encoding, images, problems)``: images by image id in file order; a row's problem (a
    label that is not 0/1, a positive without its abnormality, a negative with one, conflicting
    values between the rows of one image, an unsupported suffix) is kept in
    ``TableImage.problems`` naming the line; a row without an image is ``(source, reason)`` in
    ``problems``. Raises `TableError` for the header (`encoding_of`)."""
    encoding = encoding_of(path)
    name = Path(path).name
    images: dict[str, TableImage] = {}
    problems = []
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader)]
        for line, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                problems.append((f"{name}:{line}", f"expected {len(header)} columns, got {len(values)}"))
                continue
            row = {key: value.strip() for key, value in zip(header, values)}
            if not row[IMAGE]:
                problems.append((f"{name}:{line}", "empty image path"))
                continue
            entry = images.setdefault(image_id(row[IMAGE]), TableImage(row[IMAGE]))
            entry.lines.append(line)
            where = f"{name} line {line}"
            if row[IMAGE] != entry.image:
                entry.problems.append(f"{where}: image {row[IMAGE]} has the id {entry.image_id} of {entry.image}")
                continue
            problem = _read_row(row, encoding, entry)
            if problem:
                entry.problems.append(f"{where}: {problem}")
    for entry in images.values():
        for column, values in (("label", entry.labels), ("patient_id", entry.patients), ("split", entry.splits)):
            if len(values) > 1:
                entry.problems.append(f"{name} lines {','.join(map(str, entry.lines))}: rows of {entry.image} "
                                      f"with different {column} values {sorted(values)}")
        suffix = PurePosixPath(entry.image).suffix.lower()
        if suffix not in IMAGE_SUFFIXES:
            entry.problems.append(f"{name} line {entry.lines[0]}: unsupported image type {suffix or '(no suffix)'!r}; "
                                  f"expected {', '.join(IMAGE_SUFFIXES)}")
    return encoding, images, problems


def _read_row(row: dict[str, str], encoding: str, entry: TableImage) -> str | None:
    """Add one row to its image; returns the row's problem, or None."""
    try:
        label = int(float(row[LABEL]))
        if float(row[LABEL]) != label or label not in (0, 1):
            raise ValueError
    except ValueError:
        return f"label {row[LABEL]!r} is not 0 or 1"
    split = row.get(SPLIT, "").lower()
    if split and split not in SPLIT_VALUES:
        return f"split {row[SPLIT]!r} is not one of {'|'.join(SPLIT_VALUES)}"
    entry.labels.add(label)
    entry.splits.add(split)
    if row.get(PATIENT):
        entry.patients.add(row[PATIENT])
    if encoding == "mask":
        if row[MASK]:
            if PurePosixPath(row[MASK]).suffix.lower() not in MASK_SUFFIXES:
                return f"mask {row[MASK]}: expected a {', '.join(MASK_SUFFIXES)} file (lossless)"
            entry.masks.append(row[MASK])
        elif label == 1:
            return "label 1 without a mask"
    elif encoding == "rle":
        if row[RLE] not in ("", "-1"):
            if label == 0:
                return "label 0 with an rle mask"
            entry.rles.append((entry.lines[-1], row[RLE]))
        elif label == 1:
            return "label 1 without an rle mask"
    else:
        try:
            box = tuple(_number(row[key]) for key in BOX)
        except ValueError:
            return f"unreadable box values {[row[key] for key in BOX]}"
        if label == 0 and any(v is not None for v in box):
            return "label 0 with box coordinates"
        if label == 1:
            if None in box:
                return "label 1 without a complete box"
            if box[2] <= 0 or box[3] <= 0:
                return f"box width/height must be positive, got {box[2]}x{box[3]}"
            entry.boxes.append(box)
    return None


def read_splits(path: str | Path):
    """The ``split`` column as the paper's split file reads (`splits.read_paper_split_file`): a
    Series image id → ``train|val|test`` of the images with one split (rows with problems and
    empty splits are left out: the convert job left those images out too)."""
    import pandas as pd

    _, images, _ = read_table(path)
    given = {key: entry.split for key, entry in images.items() if entry.split and not entry.problems}
    return pd.Series(given, dtype=object)


def listed_files(path: str | Path) -> list[str]:
    """The image and mask paths (relative to root) a table lists, each once, sorted: what a
    change of the dataset is, besides the table (`salaudit.datasets.formats.inventory`)."""
    header = read_header(path)
    found = set()
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        columns = [header.index(c) for c in (IMAGE, MASK) if c in header]
        for values in reader:
            found.update(values[i].strip() for i in columns if i < len(values) and values[i].strip())
    return sorted(found)


def missing_files(root: Path, entry: TableImage) -> list[str]:
    """The image and mask files of one image that do not exist under ``root``."""
    return [name for name in (entry.image, *entry.masks) if not os.path.isfile(root / name)]
