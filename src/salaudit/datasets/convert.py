"""Ingestion: a Kaggle download (DICOM + label CSV) or a table (`salaudit.datasets.table`) → the
converted-array contract.

Contract written by `write_converted` (documented in the README):

* ``images.npy``  uint8 ``[N, S, S]``: the images, resized to ``S = image_size``;
* ``masks.npy``   uint8 ``[N, S, S]``: 1 inside the abnormality (RLE mask or box union);
* ``manifest.csv``: one row per array index, columns `MANIFEST_COLUMNS`;
* ``boxes.csv``: ``image_id,x0,y0,x1,y1`` in output pixels (half-open), one row per box:
  RSNA boxes as labelled, SIIM the bounding boxes of the mask's connected regions (a table: as
  RSNA for boxes, as SIIM for masks and RLE);
* ``rejected.csv``: ``source,reason`` for every input left out (header only when none);
* ``excluded.csv``: ``image_id,reason`` for every image left out of the study on purpose (a
  class not in ``classes``, an image the split file does not list, a table's image without a
  split where the table has a split column; header only when none).
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from salaudit import layout
from salaudit.datasets import dicom, image_files, labels, table
from salaudit.datasets.formats import (
    FORMATS, RSNA_CLASS_FILE, SIIM_CLASSES, DatasetError, check_classes, describe_expected, label_file, missing_inputs,
)
from salaudit.datasets.splits import SplitError, read_paper_split_file
from salaudit.datasets.tables import BOX_COLUMNS, EXCLUDED_COLUMNS, MANIFEST_COLUMNS
from salaudit.progress import Progress

ON_BAD_INPUT = ("fail", "skip")
NOT_IN_SPLIT_FILE = "not in split file"
NO_SPLIT = "no split in the table"


@dataclass(frozen=True)
class Problem:
    """One input left out, and why: a line of the log, a row of rejected.csv."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


def find_dicoms(folder: Path) -> tuple[dict[str, Path], list[Problem]]:
    """Every ``*.dcm`` below ``folder`` keyed by file stem; a repeated stem is a problem."""
    found: dict[str, Path] = {}
    problems = []
    for path in sorted(folder.rglob("*.dcm")):
        if path.stem in found:
            problems.append(Problem(str(path), f"duplicate image id {path.stem} (also {found[path.stem]})"))
            continue
        found[path.stem] = path
    return found, problems


@dataclass
class Job:
    """Everything needed to convert one image, picklable for worker processes."""

    image_id: str
    path: Path
    source: str
    label: int
    klass: str
    n_regions: int
    siim: labels.SiimLabel | None
    boxes: list[tuple[float, float, float, float]]
    masks: tuple[Path, ...] = ()  # a table's mask files (unioned)
    patient_id: str = ""  # a table's patient_id (empty: the DICOM's PatientID, else the image id)


def resize_image(pixels: np.ndarray, size: int) -> np.ndarray:
    """Anti-aliased resize of a uint8 image to ``size × size`` (Pillow's triangle filter)."""
    if pixels.shape == (size, size):
        return pixels.copy()
    image = Image.fromarray(pixels.astype(np.float32), mode="F")
    resized = np.asarray(image.resize((size, size), Image.Resampling.BILINEAR))
    return np.clip(np.rint(resized), 0, 255).astype(np.uint8)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A pixel is inside when at least half of its area was inside the full-size mask."""
    if mask.shape == (size, size):
        return mask.astype(np.uint8)
    image = Image.fromarray(mask.astype(np.float32), mode="F")
    fraction = np.asarray(image.resize((size, size), Image.Resampling.BOX))
    return (fraction >= 0.5).astype(np.uint8)


def _convert_one(job: Job, size: int, high_bit_depth: str, percentiles: tuple[float, float]):
    try:
        image, warning = image_files.read_image(job.path)  # a DICOM (every Kaggle file) or a table's PNG/JPEG/TIFF
        full_mask = _mask_files(job, image.rows, image.columns)
    except image_files.ImageError as err:
        return Problem(job.source, str(err).removeprefix(f"{job.path}: "))
    try:
        if full_mask is not None:
            mask = resize_mask(full_mask, size)
            boxes = labels.mask_boxes(mask)
        elif job.siim is not None:
            mask = resize_mask(labels.siim_mask(job.siim, image.rows, image.columns), size)
            boxes = labels.mask_boxes(mask)
        else:
            mask = labels.boxes_to_mask(job.boxes, image.rows, image.columns, size)
            boxes = [labels.box_pixels(b, image.rows, image.columns, size) for b in job.boxes]
    except labels.LabelError as err:
        return Problem(job.source, str(err))
    pixels = resize_image(dicom.to_uint8(image, high_bit_depth, percentiles), size)
    row = {
        "image_id": job.image_id, "label": job.label, "patient_id": job.patient_id or image.patient_id or job.image_id,
        "source": job.source, "class": job.klass, "n_regions": job.n_regions,
        "rows": image.rows, "columns": image.columns, "bits_stored": image.bits_stored,
        "photometric": image.photometric, "transfer_syntax": image.transfer_syntax,
    }
    row["mask_pixels"] = int(mask.sum())
    row["warning"] = warning
    return pixels, mask, row, boxes


def _mask_files(job: Job, rows: int, columns: int) -> np.ndarray | None:
    """The union of a table image's mask files at full size (None: it has none); a mask that
    contradicts the label (a positive's empty, a negative's not) is an `image_files.ImageError`."""
    if not job.masks:
        return None
    mask = np.zeros((rows, columns), dtype=np.uint8)
    for path in job.masks:
        mask |= image_files.read_mask(path, rows, columns)
    names = ", ".join(str(path) for path in job.masks)
    if job.label and not mask.any():
        raise image_files.ImageError(f"label 1 but its mask {names} is empty")
    if not job.label and mask.any():
        raise image_files.ImageError(f"label 0 but its mask {names} has {int(mask.sum())} pixels inside")
    return mask


def _plan(fmt: str, root: Path, classes=None, split_ids=None,
          table_name: str | None = None) -> tuple[list[Job], list[Problem], list[tuple[str, str]]]:
    """Match DICOM files with label rows; unmatched ones on either side are problems.

    Images of a class not in ``classes`` (None: every class) and, with ``split_ids`` (the ids a
    split file lists), images it does not list are left out of the study: the third value
    lists them as ``(image_id, reason)``. Ids the split file lists that the download lacks
    (neither a DICOM nor a label row) are problems.
    """
    if fmt == "table":
        return _plan_table(root, table_name, classes, split_ids)
    spec = FORMATS[fmt]
    missing = missing_inputs(fmt, root)
    if missing:
        raise DatasetError(f"missing {', '.join(missing)}; " + describe_expected(fmt, root))
    check_classes(fmt, root, classes)
    files, problems = find_dicoms(root / spec["images"])
    label_file = root / spec["labels"]
    try:
        label_table = labels.read_siim_labels(label_file) if fmt == "siim" else labels.read_rsna_labels(label_file)
    except labels.LabelError as err:
        raise DatasetError(str(err)) from None
    rsna_classes = {}
    if fmt == "rsna" and (root / RSNA_CLASS_FILE).exists():
        rsna_classes = labels.read_rsna_classes(root / RSNA_CLASS_FILE)

    def class_of(image_id, entry):
        if fmt == "siim":
            return SIIM_CLASSES[0] if entry.label else SIIM_CLASSES[1]
        return rsna_classes.get(image_id, "Lung Opacity" if entry.label else "")

    def exclusion(image_id, entry):
        """Why an image is out of the study on purpose, or None."""
        if classes is not None and entry is not None and class_of(image_id, entry) not in classes:
            return f"class {class_of(image_id, entry)!r} not in classes"
        if split_ids is not None and image_id not in split_ids:
            return NOT_IN_SPLIT_FILE
        return None

    jobs, excluded = [], []
    for image_id, path in files.items():
        source = path.relative_to(root).as_posix()
        entry = label_table.get(image_id)
        reason = exclusion(image_id, entry)
        if reason:
            excluded.append((image_id, reason))
            continue
        if entry is None:
            problems.append(Problem(source, f"no row for {image_id} in {spec['labels']}"))
            continue
        klass = class_of(image_id, entry)
        if fmt == "siim":
            jobs.append(Job(image_id, path, source, entry.label, klass, len(entry.rows) if entry.label else 0, entry, []))
        else:
            if entry.problems:
                problems.extend(Problem(source, p) for p in entry.problems)
                continue
            jobs.append(Job(image_id, path, source, entry.label, klass, len(entry.boxes), None, entry.boxes))
    for image_id, entry in label_table.items():
        if image_id in files:
            continue
        reason = exclusion(image_id, entry)
        if reason:
            excluded.append((image_id, reason))
        else:
            problems.append(Problem(f"{spec['labels']}:{image_id}",
                                    f"label row but no DICOM file {image_id}.dcm under {spec['images']}/"))
    for image_id in sorted(set(split_ids or ()) - set(files) - set(label_table)):
        problems.append(Problem(f"splits:{image_id}", f"listed in the split file but neither a DICOM file nor a "
                                                      f"label row of {image_id} is in the download"))
    return jobs, problems, sorted(excluded)


def _plan_table(root: Path, table_name: str, classes,
                split_ids) -> tuple[list[Job], list[Problem], list[tuple[str, str]]]:
    """`_plan` of a table: its rows' problems and missing files are problems; with a split
    column, images with an empty split are left out of the study (as a split file would)."""
    missing = missing_inputs("table", root, table_name)
    if missing:
        raise DatasetError(f"missing {', '.join(missing)}; " + describe_expected("table", root, table_name))
    check_classes("table", root, classes)
    path = label_file("table", root, table_name)
    try:
        encoding, entries, row_problems = table.read_table(path)
    except table.TableError as err:
        raise DatasetError(str(err)) from None
    with_split = table.has_split(path)
    if with_split and split_ids is not None:
        raise DatasetError(f"{path} has a split column and a split file is given too; give one of them")
    problems = [Problem(source, reason) for source, reason in row_problems]
    jobs, excluded = [], []
    for image_id, entry in entries.items():
        if with_split and not entry.split and not entry.problems:
            excluded.append((image_id, NO_SPLIT))
            continue
        if split_ids is not None and image_id not in split_ids:
            excluded.append((image_id, NOT_IN_SPLIT_FILE))
            continue
        absent = table.missing_files(root, entry) if not entry.problems else []
        problems.extend(Problem(entry.image, p) for p in entry.problems)
        problems.extend(Problem(entry.image, f"no file {name} under {root} ({table_name} line "
                                             f"{entry.lines[0]})") for name in absent)
        if entry.problems or absent:
            continue
        siim = labels.SiimLabel(image_id, entry.rles, file=table_name) if entry.rles else None
        n_regions = len(entry.rles) + len(entry.boxes) + (len(entry.masks) if entry.label else 0)
        jobs.append(Job(image_id, root / entry.image, entry.image, entry.label,
                        table.CLASSES[0] if entry.label else table.CLASSES[1], n_regions, siim, entry.boxes,
                        masks=tuple(root / name for name in entry.masks), patient_id=entry.patient_id))
    for image_id in sorted(set(split_ids or ()) - set(entries)):
        problems.append(Problem(f"splits:{image_id}", f"listed in the split file but not in {table_name}"))
    return jobs, problems, sorted(excluded)


@dataclass
class Converted:
    images: np.ndarray
    masks: np.ndarray
    manifest: pd.DataFrame
    boxes: pd.DataFrame
    problems: list[Problem]
    excluded: list[tuple[str, str]] = ()  # (image_id, reason): left out of the study on purpose
    warnings: list[Problem] = ()  # inputs used with a warning (a table's RGB image converted to grey)


def convert_dataset(
    fmt: str,
    root: str | Path,
    image_size: int,
    high_bit_depth: str,
    percentiles: tuple[float, float],
    workers: int = 1,
    log=print,
    classes=None,
    split_file: str | Path | None = None,
    table_name: str | None = None,
) -> Converted:
    """Read a whole dataset; every unusable input becomes a `Problem`, none is dropped silently.

    ``classes`` (class names, None: all) and ``split_file`` (the paper's format: only the images
    it lists are studied) choose the study's images; the others are listed in
    ``Converted.excluded`` with their reason. Images are ordered by image id, so the arrays do
    not depend on file-system order. ``table_name``: format table's CSV (relative to ``root``).
    """
    split_ids = None
    if split_file is not None:
        try:
            split_ids = set(read_paper_split_file(split_file).index)
        except SplitError as err:
            raise DatasetError(str(err)) from None
    jobs, problems, excluded = _plan(fmt, Path(root), classes, split_ids, table_name)
    jobs.sort(key=lambda job: job.image_id)
    log(f"{fmt} {root}: {len(jobs)} images matched with labels, {len(problems)} problems so far, "
        f"{len(excluded)} left out of the study on purpose")
    for reason, count in pd.Series([r for _, r in excluded], dtype=str).value_counts().sort_index().items():
        log(f"  excluded {count}: {reason}")
    images = np.zeros((len(jobs), image_size, image_size), dtype=np.uint8)
    masks = np.zeros_like(images)
    rows, boxes, warnings = [], [], []
    args = (image_size, high_bit_depth, tuple(percentiles))
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = pool.map(_convert_one, jobs, *[[a] * len(jobs) for a in args], chunksize=16)
            results = list(_progress(results, len(jobs), log))
    else:
        results = list(_progress((_convert_one(job, *args) for job in jobs), len(jobs), log))
    for result in results:
        if isinstance(result, Problem):
            problems.append(result)
            continue
        pixels, mask, row, image_boxes = result
        warning = row.pop("warning")
        if warning:
            warnings.append(Problem(row["source"], warning))
        images[len(rows)], masks[len(rows)] = pixels, mask
        rows.append(row)
        boxes.extend((row["image_id"], *box) for box in image_boxes)
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    box_table = pd.DataFrame(boxes, columns=BOX_COLUMNS)
    return Converted(images[: len(rows)], masks[: len(rows)], manifest, box_table, problems, excluded, warnings)


def _progress(results, total, log):
    """The results as they come, a progress line in the log every 30 s and at the end."""
    progress = Progress(total, "  converted", unit="images", log=log)
    for result in results:
        progress.update()
        yield result


def write_converted(converted: Converted, out_dir: str | Path) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / layout.file_name(layout.IMAGES), converted.images)
    np.save(out / layout.file_name(layout.MASKS), converted.masks)
    converted.manifest.to_csv(out / layout.file_name(layout.MANIFEST), index=False)
    converted.boxes.to_csv(out / layout.file_name(layout.BOXES), index=False)
    rejected = pd.DataFrame([(p.source, p.reason) for p in converted.problems], columns=["source", "reason"])
    rejected.to_csv(out / layout.file_name(layout.REJECTED), index=False)
    excluded = pd.DataFrame(list(converted.excluded), columns=EXCLUDED_COLUMNS)
    excluded.to_csv(out / layout.file_name(layout.EXCLUDED), index=False)


def default_workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0))))
