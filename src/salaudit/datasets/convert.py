"""Ingestion: a Kaggle download (DICOM + label CSV) → the converted-array contract.

Contract written by `write_converted` (documented in the README):

* ``images.npy``  uint8 ``[N, S, S]``: the images, resized to ``S = image_size``;
* ``masks.npy``   uint8 ``[N, S, S]``: 1 inside the abnormality (RLE mask or box union);
* ``manifest.csv``: one row per array index, columns `MANIFEST_COLUMNS`;
* ``boxes.csv``: ``image_id,x0,y0,x1,y1`` in output pixels (half-open), one row per box:
  RSNA boxes as labelled, SIIM the bounding boxes of the mask's connected regions;
* ``rejected.csv``: ``source,reason`` for every input left out (header only when none);
* ``excluded.csv``: ``image_id,reason`` for every image left out of the study on purpose (a
  class not in ``classes``, an image the split file does not list; header only when none).
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
from salaudit.datasets import dicom, labels
from salaudit.datasets.formats import (
    FORMATS, RSNA_CLASS_FILE, SIIM_CLASSES, DatasetError, check_classes, describe_expected, missing_inputs,
)
from salaudit.datasets.splits import SplitError, read_paper_split_file
from salaudit.datasets.tables import BOX_COLUMNS, EXCLUDED_COLUMNS, MANIFEST_COLUMNS
from salaudit.progress import Progress

ON_BAD_INPUT = ("fail", "skip")
NOT_IN_SPLIT_FILE = "not in split file"


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
        image = dicom.read_dicom_image(job.path)
    except dicom.DicomError as err:
        return Problem(job.source, str(err).removeprefix(f"{job.path}: "))
    try:
        if job.siim is not None:
            mask = resize_mask(labels.siim_mask(job.siim, image.rows, image.columns), size)
            boxes = labels.mask_boxes(mask)
        else:
            mask = labels.boxes_to_mask(job.boxes, image.rows, image.columns, size)
            boxes = [labels.box_pixels(b, image.rows, image.columns, size) for b in job.boxes]
    except labels.LabelError as err:
        return Problem(job.source, str(err))
    pixels = resize_image(dicom.to_uint8(image, high_bit_depth, percentiles), size)
    row = {
        "image_id": job.image_id, "label": job.label, "patient_id": image.patient_id or job.image_id,
        "source": job.source, "class": job.klass, "n_regions": job.n_regions,
        "rows": image.rows, "columns": image.columns, "bits_stored": image.bits_stored,
        "photometric": image.photometric, "transfer_syntax": image.transfer_syntax,
    }
    row["mask_pixels"] = int(mask.sum())
    return pixels, mask, row, boxes


def _plan(fmt: str, root: Path, classes=None, split_ids=None) -> tuple[list[Job], list[Problem], list[tuple[str, str]]]:
    """Match DICOM files with label rows; unmatched ones on either side are problems.

    Images of a class not in ``classes`` (None: every class) and, with ``split_ids`` (the ids a
    split file lists), images it does not list are left out of the study: the third value
    lists them as ``(image_id, reason)``. Ids the split file lists that the download lacks
    (neither a DICOM nor a label row) are problems.
    """
    spec = FORMATS[fmt]
    missing = missing_inputs(fmt, root)
    if missing:
        raise DatasetError(f"missing {', '.join(missing)}; " + describe_expected(fmt, root))
    check_classes(fmt, root, classes)
    files, problems = find_dicoms(root / spec["images"])
    label_file = root / spec["labels"]
    try:
        table = labels.read_siim_labels(label_file) if fmt == "siim" else labels.read_rsna_labels(label_file)
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
        entry = table.get(image_id)
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
    for image_id, entry in table.items():
        if image_id in files:
            continue
        reason = exclusion(image_id, entry)
        if reason:
            excluded.append((image_id, reason))
        else:
            problems.append(Problem(f"{spec['labels']}:{image_id}",
                                    f"label row but no DICOM file {image_id}.dcm under {spec['images']}/"))
    for image_id in sorted(set(split_ids or ()) - set(files) - set(table)):
        problems.append(Problem(f"splits:{image_id}", f"listed in the split file but neither a DICOM file nor a "
                                                      f"label row of {image_id} is in the download"))
    return jobs, problems, sorted(excluded)


@dataclass
class Converted:
    images: np.ndarray
    masks: np.ndarray
    manifest: pd.DataFrame
    boxes: pd.DataFrame
    problems: list[Problem]
    excluded: list[tuple[str, str]] = ()  # (image_id, reason): left out of the study on purpose


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
) -> Converted:
    """Read a whole dataset; every unusable input becomes a `Problem`, none is dropped silently.

    ``classes`` (class names, None: all) and ``split_file`` (the paper's format: only the images
    it lists are studied) choose the study's images; the others are listed in
    ``Converted.excluded`` with their reason. Images are ordered by image id, so the arrays do
    not depend on file-system order.
    """
    split_ids = None
    if split_file is not None:
        try:
            split_ids = set(read_paper_split_file(split_file).index)
        except SplitError as err:
            raise DatasetError(str(err)) from None
    jobs, problems, excluded = _plan(fmt, Path(root), classes, split_ids)
    jobs.sort(key=lambda job: job.image_id)
    log(f"{fmt} {root}: {len(jobs)} images matched with labels, {len(problems)} problems so far, "
        f"{len(excluded)} left out of the study on purpose")
    for reason, count in pd.Series([r for _, r in excluded], dtype=str).value_counts().sort_index().items():
        log(f"  excluded {count}: {reason}")
    images = np.zeros((len(jobs), image_size, image_size), dtype=np.uint8)
    masks = np.zeros_like(images)
    rows, boxes = [], []
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
        images[len(rows)], masks[len(rows)] = pixels, mask
        rows.append(row)
        boxes.extend((row["image_id"], *box) for box in image_boxes)
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    box_table = pd.DataFrame(boxes, columns=BOX_COLUMNS)
    return Converted(images[: len(rows)], masks[: len(rows)], manifest, box_table, problems, excluded)


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
