"""Synthetic demo data in the exact layouts and encodings of the two Kaggle downloads (and of
``format: table``).

The demo must travel the same ingestion path as real data, so the writers produce what
the real downloads contain: 1024x1024 8-bit MONOCHROME2 JPEG-Baseline DICOM files (via
`salaudit.datasets.dicom.write_jpeg_dicom`) and the competitions' label CSVs, byte-for-byte
deterministic for a given seed.

* `write_siim_demo` (SIIM-ACR pneumothorax):
  ``dicom-images-train/<StudyUID>/<SeriesUID>/<SOPUID>.dcm`` and ``train-rle.csv``
  (``ImageId, EncodedPixels``; relative column-major RLE, ``-1`` for negatives, several
  rows per image for ~20% of the positives, rows shuffled). A few patients have two images.
* `write_rsna_demo` (RSNA pneumonia): ``stage_2_train_images/<patientId>.dcm``,
  ``stage_2_train_labels.csv`` (one row per box, ``,,,,,0`` for negatives) and
  ``stage_2_detailed_class_info.csv`` (one row per label row).
* `write_table_demo` (``format: table``, `salaudit.datasets.table`): the SIIM-like images as
  8-bit PNGs ``images/<SOPUID>.png``, their masks as PNGs ``masks/<SOPUID>_<k>.png`` (one per
  RLE row SIIM would write) and ``table.csv`` (``image,label,mask,patient_id``).

How each image looks (anatomy, acquisition, lesions, devices) is `salaudit.datasets.demo_anatomy`.

The writers only overwrite the files they own; they never delete anything in ``root``
(so files of an earlier demo with other arguments stay). For tests, `_plan_siim` /
`_plan_rsna` give each image's `Case` and `demo_anatomy.render(case, draw_lesions=False)` re-renders
an image without its lesions.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from salaudit import seeds
from salaudit.datasets.demo_anatomy import (
    SIZE,
    Case,
    Crescent,
    Exposure,
    Opacity,
    render,
    sample_devices,
    sample_exposure,
    sample_patient,
    upsample,
)
from salaudit.datasets.dicom import write_jpeg_dicom
from salaudit.datasets.formats import FORMATS as DOWNLOADS
from salaudit.datasets.formats import RSNA_CLASS_FILE, TABLE_DEMO_IMAGE, TABLE_DEMO_MASK, TABLE_DEMO_NAME
from salaudit.datasets.labels import encode_siim_rle
from salaudit.datasets.table import image_id as table_image_id

FORMATS = tuple(DOWNLOADS)  # the demo writes every format's download (salaudit.datasets.formats)
SIIM, RSNA = DOWNLOADS["siim"], DOWNLOADS["rsna"]
MULTI_ROW_FRACTION = 0.2  # SIIM positives whose mask is split over several CSV rows
TWO_BOX_FRACTION = 0.3  # RSNA positives with two opacities
_UID_ROOT = "1.2.276.0.7230010.3.1"  # the real files' implementation root
_UID_PARTS = ((2, -1), (3, -2), (4, 0))  # study, series, SOP: UID kind and shift of the last part

Progress = Callable[[int, int], None]  # (images written so far, total)


# ----------------------------------------------------------------------------- datasets
def _check(n_images: int, positive_fraction: float) -> int:
    """Validate the arguments; returns the number of positive images."""
    if isinstance(n_images, bool) or not isinstance(n_images, (int, np.integer)) or n_images < 4:
        raise ValueError(f"n_images must be an integer >= 4, got {n_images!r}")
    if not 0 < positive_fraction < 1:
        raise ValueError(f"positive_fraction must lie strictly between 0 and 1, got {positive_fraction!r}")
    return min(max(round(n_images * positive_fraction), 1), n_images - 1)


def _uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _uids(rng: np.random.Generator, n: int, stamp: str) -> list[tuple[str, str, str]]:
    """(study, series, SOP) UIDs shaped like the Kaggle ones (``...3.1.2/3/4.8323329...``)."""
    numbers = 1000 + rng.choice(max(n, 13000), size=n, replace=False)  # unique per image
    uids = []
    for number in numbers:
        middle = f"8323329.{number}.{stamp}{rng.integers(1000):03d}"
        last = int(rng.integers(100002, 999999))
        # the real files number study, series and instance alike, with neighbouring last parts
        study, series, sop = (f"{_UID_ROOT}.{kind}.{middle}.{last + shift}" for kind, shift in _UID_PARTS)
        uids.append((study, series, sop))
    return uids


def _pick(rng: np.random.Generator, population, k: int) -> set[int]:
    return {int(i) for i in rng.choice(np.asarray(sorted(population)), size=k, replace=False)}


def _balanced_positives(rng: np.random.Generator, exposures: list[Exposure], n_pos: int) -> set[int]:
    """Pick the positive images by systematic sampling along the exposure brightness.

    Both classes then get the same spread of exposures, so that the label cannot be read
    from the global brightness, not even by chance in a small demo.
    """
    reference = np.linspace(0.0, 0.6, 7)  # densities from air to bone
    brightness = [np.mean(np.clip(e.offset + e.contrast * reference, 0, 1) ** e.gamma) for e in exposures]
    order = np.argsort(brightness, kind="stable")
    steps = rng.random() + n_pos * np.arange(len(order) + 1) / len(order)
    return {int(i) for i in order[np.diff(np.floor(steps)) > 0]}  # exactly n_pos of them


def _crescent(rng: np.random.Generator, side: int) -> Crescent:
    return Crescent(
        side, theta=rng.uniform(0.1, 1.3), span=rng.uniform(0.7, 1.1), thickness=rng.uniform(0.16, 0.30)
    )


def _opacity(rng: np.random.Generator, side: int) -> Opacity:
    """Anywhere in the lung, apex to base and hilum to the lateral edge, small to lobar: the
    average of the training boxes is then a fair but beatable baseline (a few typical places
    would make it a strong one)."""
    u, v = rng.uniform(-0.55, 0.6), rng.uniform(-0.75, 0.7)
    size = float(np.exp(rng.uniform(np.log(0.1), np.log(0.24))))
    return Opacity(side, u=u, v=v, size=size, seed=int(rng.integers(2**31)))


def _plan_siim(n_images: int, positive_fraction: float, seed: int) -> list[Case]:
    n_pos = _check(n_images, positive_fraction)
    plan = seeds.rng(seed, "demo_siim_plan")
    rngs = [seeds.rng(seed, "demo_siim_case", i) for i in range(n_images)]
    exposures = [sample_exposure(rng, ap_probability=0.2) for rng in rngs]
    positives = _balanced_positives(plan, exposures, n_pos)
    multi = _pick(plan, positives, max(1, round(MULTI_ROW_FRACTION * n_pos)))
    # a few patients with two images: the second image of a pair shares the first's patient
    pairs = plan.choice(n_images, size=2 * max(1, n_images // 10), replace=False).reshape(-1, 2)
    owner = {int(b): int(a) for a, b in pairs}
    patient_ids = [_uuid(plan) for _ in range(n_images)]
    uids = _uids(plan, n_images, "1517875")
    cases = []
    for i in range(n_images):
        p, rng = owner.get(i, i), rngs[i]
        lesions, split = [], None
        if i in positives:
            side = int(rng.choice([-1, 1]))
            lesions.append(_crescent(rng, side))
            if i in multi and rng.random() < 0.5:
                lesions.append(_crescent(rng, -side))  # bilateral: one row per lung
            elif i in multi:
                split = int(rng.integers(0, 8))  # one crescent in two (overlapping) rows
        patient = sample_patient(seeds.rng(seed, "demo_siim_patient", p))
        case = Case(
            image_id=uids[i][2],
            patient_id=patient_ids[p],
            uids=uids[i],
            patient=patient,
            exposure=exposures[i],
            lesions=tuple(lesions),
            noise_seed=(seed, "demo_siim_noise", i),
            split_overlap=split,
            devices=sample_devices(seeds.rng(seed, "demo_siim_devices", i), patient),
        )
        cases.append(case)
    return cases


def _plan_rsna(n_images: int, positive_fraction: float, seed: int) -> list[Case]:
    n_pos = _check(n_images, positive_fraction)
    plan = seeds.rng(seed, "demo_rsna_plan")
    rngs = [seeds.rng(seed, "demo_rsna_case", i) for i in range(n_images)]
    exposures = [sample_exposure(rng, ap_probability=0.4) for rng in rngs]
    positives = _balanced_positives(plan, exposures, n_pos)
    two_boxes = _pick(plan, positives, round(TWO_BOX_FRACTION * n_pos))
    patient_ids = [_uuid(plan) for _ in range(n_images)]
    uids = _uids(plan, n_images, "1517874")
    cases = []
    for i in range(n_images):
        rng = rngs[i]
        lesions, heart_scale, klass = [], 1.0, "Lung Opacity"
        if i in positives:
            side = int(rng.choice([-1, 1]))
            lesions.append(_opacity(rng, side))
            if i in two_boxes:
                lesions.append(_opacity(rng, -side))  # second opacity in the other lung
        else:
            klass = str(rng.choice(["Normal", "No Lung Opacity / Not Normal"]))
            if klass != "Normal":
                heart_scale = rng.uniform(1.0, 1.25)  # something else abnormal, e.g. cardiomegaly
        patient = sample_patient(seeds.rng(seed, "demo_rsna_patient", i))
        case = Case(
            image_id=patient_ids[i],
            patient_id=patient_ids[i],
            uids=uids[i],
            patient=patient,
            exposure=exposures[i],
            lesions=tuple(lesions),
            noise_seed=(seed, "demo_rsna_noise", i),
            heart_scale=heart_scale,
            rsna_class=klass,
            devices=sample_devices(seeds.rng(seed, "demo_rsna_devices", i), patient),
        )
        cases.append(case)
    return cases


def _write_dicom(path: Path, pixels: np.ndarray, case: Case) -> None:
    study, series, sop = case.uids
    view = case.exposure.view
    write_jpeg_dicom(
        path,
        pixels,
        patient_id=case.patient_id,
        study_uid=study,
        series_uid=series,
        sop_uid=sop,
        extra={
            "ViewPosition": view,
            "SeriesDescription": f"view: {view}",
            "PatientSex": case.patient.sex,
            "PatientAge": f"{case.patient.age:03d}Y",
        },
    )


def _split(mask: np.ndarray, overlap: int) -> list[np.ndarray]:
    """Cut a crescent in two across its long axis; the parts overlap by ``overlap`` px."""
    rows, cols = np.nonzero(mask)
    points = np.stack([rows, cols], axis=1).astype(np.float64)
    points -= points.mean(axis=0)
    along = points @ np.linalg.svd(points, full_matrices=False)[2][0]  # position on the long axis
    cut = np.median(along)
    parts = []
    for keep in (along < cut + overlap / 2, along >= cut - overlap / 2):
        part = np.zeros_like(mask)
        part[rows[keep], cols[keep]] = 1
        parts.append(part)
    return parts


def _box(support: np.ndarray) -> tuple[float, float, float, float]:
    """Tight bounding box (x, y, width, height) of a non-empty pixel mask."""
    rows, cols = np.nonzero(support)
    r0, c0 = int(rows.min()), int(cols.min())
    return float(c0), float(r0), float(cols.max() - c0 + 1), float(rows.max() - r0 + 1)


def _lesion_masks(fields: list[np.ndarray]) -> list[np.ndarray]:
    return [(upsample(field.astype(np.float32)) > 0).astype(np.uint8) for field in fields]


def write_siim_demo(
    root: str | Path,
    n_images: int,
    positive_fraction: float,
    seed: int,
    *,
    progress: Progress | None = None,
) -> list[dict]:
    """Write a SIIM-ACR-like dataset under ``root``; returns the truth per image.

    Dicts ``{image_id, patient_id, label, mask}`` (mask: uint8 SIZE x SIZE, the union of
    the image's CSV rows), in the order of generation. ``progress(done, total)`` is called
    after each image.
    """
    root = Path(root)
    truth, rows = [], []
    for case, pixels, parts in _siim_images(n_images, positive_fraction, seed, progress):
        study, series, sop = case.uids
        _write_dicom(root / SIIM["images"] / study / series / f"{sop}.dcm", pixels, case)
        mask = np.zeros((SIZE, SIZE), np.uint8)
        for part in parts:
            mask |= part
        rows += [(sop, encode_siim_rle(part)) for part in parts] or [(sop, "-1")]
        label = int(bool(parts))
        truth.append({"image_id": sop, "patient_id": case.patient_id, "label": label, "mask": mask})
    order = seeds.rng(seed, "demo_siim_order").permutation(len(rows))  # not grouped by label
    text = "ImageId, EncodedPixels\n" + "".join(f"{rows[j][0]}, {rows[j][1]}\n" for j in order)
    (root / SIIM["labels"]).write_text(text, newline="")
    return truth


def _siim_images(n_images: int, positive_fraction: float, seed: int, progress: Progress | None):
    """Each SIIM-like image in turn: ``(case, pixels, parts)``, parts the mask of each RLE row
    (``progress`` called once the caller has written it)."""
    cases = _plan_siim(n_images, positive_fraction, seed)
    for k, case in enumerate(cases):
        pixels, fields = render(case)
        parts = _lesion_masks(fields)
        if case.split_overlap is not None:
            parts = _split(parts[0], case.split_overlap)
        yield case, pixels, parts
        if progress:
            progress(k + 1, len(cases))


def write_rsna_demo(
    root: str | Path,
    n_images: int,
    positive_fraction: float,
    seed: int,
    *,
    progress: Progress | None = None,
) -> list[dict]:
    """Write an RSNA-pneumonia-like dataset under ``root``; returns the truth per image.

    Dicts ``{image_id, patient_id, label, boxes}`` (boxes: list of (x, y, w, h) floats in
    SIZE px; image_id = patient_id = patientId), in the order of generation.
    ``progress(done, total)`` is called after each image.
    """
    cases = _plan_rsna(n_images, positive_fraction, seed)
    root = Path(root)
    truth, label_rows, class_rows = [], [], []
    for k, case in enumerate(cases):
        pixels, fields = render(case)
        boxes = [_box(mask) for mask in _lesion_masks(fields)]
        pid = case.patient_id
        _write_dicom(root / RSNA["images"] / f"{pid}.dcm", pixels, case)
        rows = [[pid, *(f"{v:.1f}" for v in box), "1"] for box in boxes] or [[pid, "", "", "", "", "0"]]
        label_rows.append(rows)
        class_rows.append([[pid, case.rsna_class]] * len(rows))
        truth.append({"image_id": pid, "patient_id": pid, "label": int(bool(boxes)), "boxes": boxes})
        if progress:
            progress(k + 1, len(cases))
    order = seeds.rng(seed, "demo_rsna_order").permutation(len(cases))  # a patient's rows stay together
    _write_csv(
        root / RSNA["labels"],
        ["patientId", "x", "y", "width", "height", "Target"],
        [row for j in order for row in label_rows[j]],
    )
    _write_csv(
        root / RSNA_CLASS_FILE,
        ["patientId", "class"],
        [row for j in order for row in class_rows[j]],
    )
    return truth


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), newline="")


def write_table_demo(
    root: str | Path,
    n_images: int,
    positive_fraction: float,
    seed: int,
    *,
    progress: Progress | None = None,
) -> list[dict]:
    """Write the SIIM-like images of `write_siim_demo` as a table dataset under ``root`` (PNG
    images and masks, ``table.csv``); returns the truth per image as `write_siim_demo`, whose
    ``image_id`` is the table's (``images/<SOPUID>``)."""
    root = Path(root)
    truth, rows = [], []
    for case, pixels, parts in _siim_images(n_images, positive_fraction, seed, progress):
        sop = case.uids[2]
        image = TABLE_DEMO_IMAGE.format(id=sop)
        _save_png(root / image, pixels)
        mask = np.zeros((SIZE, SIZE), np.uint8)
        for j, part in enumerate(parts):
            mask_file = TABLE_DEMO_MASK.format(id=sop, part=j)
            _save_png(root / mask_file, part * 255)
            rows.append([image, "1", mask_file, case.patient_id])
            mask |= part
        if not parts:
            rows.append([image, "0", "", case.patient_id])
        truth.append({"image_id": table_image_id(image), "patient_id": case.patient_id, "label": int(bool(parts)),
                      "mask": mask})
    _write_csv(root / TABLE_DEMO_NAME, ["image", "label", "mask", "patient_id"], rows)
    return truth


def _save_png(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8), mode="L").save(path, format="PNG")


def write_demo(
    fmt: str, root: str | Path, n_images: int, positive_fraction: float, seed: int, *,
    progress: Progress | None = None,
) -> list[dict]:
    """Write the demo dataset of format ``fmt`` ("siim", "rsna" or "table"); see the writers."""
    writers = {"siim": write_siim_demo, "rsna": write_rsna_demo, "table": write_table_demo}
    if fmt not in writers:
        raise ValueError(f"unknown demo format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return writers[fmt](root, n_images, positive_fraction, seed, progress=progress)
