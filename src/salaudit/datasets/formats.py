"""The Kaggle downloads each dataset format is read from (and ``table``: one CSV of its own,
`salaudit.datasets.table`), and the checks the workflow runs on them at parse time (a missing
file, an unknown class, a table's columns) before any job starts. Torch-free.
"""

from __future__ import annotations

from pathlib import Path

from salaudit import registry
from salaudit.datasets import labels

# What each format expects under its root folder (the Kaggle download, unpacked).
FORMATS = {
    "siim": {
        "labels": "train-rle.csv",
        "images": "dicom-images-train",
        "layout": "dicom-images-train/<StudyInstanceUID>/<SeriesInstanceUID>/<ImageId>.dcm",
        "optional": (),
    },
    "rsna": {
        "labels": "stage_2_train_labels.csv",
        "images": "stage_2_train_images",
        "layout": "stage_2_train_images/<patientId>.dcm",
        "optional": ("stage_2_detailed_class_info.csv",),
    },
    # Its label file is the dataset's ``table`` key; images and masks are wherever it says.
    "table": {"labels": None, "images": None, "layout": "<the image and mask paths the table lists>", "optional": ()},
}
# Format table (salaudit.datasets.table): the files its rows may name (masks lossless only: a JPEG
# mask's edges are noise), and what its demo writes (salaudit.datasets.demo): masks, listed in
# table.csv (the schema's default table name).
TABLE_DICOM_SUFFIXES = (".dcm", ".dicom")
TABLE_IMAGE_SUFFIXES = (*TABLE_DICOM_SUFFIXES, ".png", ".jpg", ".jpeg", ".tif", ".tiff")
TABLE_MASK_SUFFIXES = (".png", ".tif", ".tiff")
TABLE_DEMO_ENCODING, TABLE_DEMO_NAME = "mask", "table.csv"
TABLE_DEMO_IMAGE, TABLE_DEMO_MASK = "images/{id}.png", "masks/{id}_{part}.png"
# The classes of a SIIM image (from its RLE label); RSNA's come from stage_2_detailed_class_info.csv.
SIIM_CLASSES = ("Pneumothorax", "No pneumothorax")
RSNA_CLASS_FILE = "stage_2_detailed_class_info.csv"


class DatasetError(ValueError):
    """The dataset as a whole cannot be read (missing folder or label file)."""


def label_file(fmt: str, root: str | Path, table_name: str | None = None) -> Path:
    """The file a dataset's labels are read from: the format's label CSV, or for ``table`` the
    dataset's ``table``."""
    if fmt == "table":
        if not table_name:
            raise DatasetError("format table needs the name of its table (datasets.<name>.table)")
        return Path(root) / table_name
    return Path(root) / FORMATS[fmt]["labels"]


def missing_inputs(fmt: str, root: str | Path, table_name: str | None = None) -> list[str]:
    """Required files/folders of a dataset root that are absent (empty list = looks complete).
    A table's images are checked by the convert job (each missing one is bad input)."""
    if fmt not in FORMATS:
        raise DatasetError(f"unknown dataset format {fmt!r}; expected one of {sorted(FORMATS)}")
    spec = FORMATS[fmt]
    root = Path(root)
    if not root.is_dir():
        return [str(root)]
    if fmt == "table":
        path = label_file(fmt, root, table_name)
        return [] if path.is_file() else [str(path)]
    return [str(root / spec[key]) for key in ("labels", "images") if not (root / spec[key]).exists()]


def check_table(root: str | Path, table_name: str) -> str:
    """The encoding of a table (`table.encoding_of`); its header's problem is a `DatasetError`."""
    from salaudit.datasets import table  # (it reads this module's suffixes)

    try:
        return table.encoding_of(label_file("table", root, table_name))
    except (table.TableError, OSError) as err:
        raise DatasetError(str(err)) from None


def localizer(spec: dict, root: str | Path) -> str:
    """The localizer of a dataset (its config entry ``spec``, read from ``root``): masks → U-Net,
    boxes → RetinaNet; a table's from its header (mask or rle → unet, boxes → retinanet), a
    table demo's from what the demo writes."""
    if spec["format"] != "table":
        return registry.FORMAT_LOCALIZER[spec["format"]]
    encoding = TABLE_DEMO_ENCODING if "demo" in spec else check_table(root, spec["table"])
    return registry.ENCODING_LOCALIZER[encoding]


def describe_expected(fmt: str, root: str | Path, table_name: str | None = None) -> str:
    if fmt == "table":
        return (f"expected a table dataset laid out as:\n  {root}/{table_name or '<table>'}   (columns image,label, "
                f"then mask | x,y,width,height | rle; optional patient_id, split)\n  {root}/<the image and mask "
                f"paths it lists>")
    spec = FORMATS[fmt]
    optional = "".join(f"\n  {root}/{name}   (optional)" for name in spec["optional"])
    return f"expected the {fmt} Kaggle download laid out as:\n  {root}/{spec['labels']}\n  {root}/{spec['layout']}{optional}"


def dataset_classes(fmt: str, root: str | Path) -> list[str]:
    """The class names a dataset's images can have (what a ``classes`` selection chooses from):
    SIIM ``Pneumothorax`` / ``No pneumothorax``; RSNA the classes of its
    ``stage_2_detailed_class_info.csv`` (without it: ``Lung Opacity`` and the empty class of
    negatives); a table ``positive`` / ``negative`` (its label: nothing to choose)."""
    if fmt == "siim":
        return list(SIIM_CLASSES)
    if fmt == "table":
        from salaudit.datasets.table import CLASSES

        return list(CLASSES)
    path = Path(root) / RSNA_CLASS_FILE
    if not path.exists():
        return ["Lung Opacity", ""]
    return sorted(set(labels.read_rsna_classes(path).values()))


def check_classes(fmt: str, root: str | Path, classes) -> None:
    """A ``classes`` selection that names a class the dataset does not have is a `DatasetError`
    listing the classes found (``classes`` None: every class, nothing to check)."""
    if classes is None:
        return
    if fmt == "table":
        raise DatasetError("format table has no classes to choose (an image's class is its label); leave the "
                           "images you do not want out of the table instead")
    if fmt == "rsna" and not (Path(root) / RSNA_CLASS_FILE).exists():
        raise DatasetError(f"classes needs {Path(root) / RSNA_CLASS_FILE} (the download's class of every "
                           f"patient), which does not exist")
    found = dataset_classes(fmt, root)
    unknown = [c for c in classes if c not in found]
    if unknown:
        source = f"{Path(root) / RSNA_CLASS_FILE}" if fmt == "rsna" else "the SIIM labels"
        raise DatasetError(f"classes {unknown} not found in {source}; classes found: "
                           + ", ".join(repr(c) for c in found))


def inventory(fmt: str, root: str | Path, table_name: str | None = None) -> str:
    """``"<n> files, <bytes> bytes, <16 hex digits>"``: it changes when any file a dataset is
    built from changes - every file under its images folder and its label files, by path
    (relative to ``root``), size and modification time. The workflow gives it to ``convert`` as a
    param, so replacing, repairing, adding or deleting a DICOM reruns the conversion (and what
    depends on it), and nothing else does; Snakemake's reason shows the before and after.
    Metadata only, no file is read: on a local disk 0.11 s for 27,000 files in one folder (RSNA's
    layout), 0.8 s for 27,000 files two folders deep (SIIM's layout holds 12,000). A table: the
    table and every image and mask file it lists (a missing one counts too: adding it reruns)."""
    import hashlib
    import os

    spec = FORMATS[fmt]
    root = Path(root)
    entries, total = [], 0
    if fmt == "table":
        from salaudit.datasets.table import listed_files

        for name in (table_name, *listed_files(root / table_name)):
            try:
                stat = os.stat(root / name)
            except OSError:
                entries.append(f"{name}\0missing")
                continue
            entries.append(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}")
            total += stat.st_size
        digest = hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()[:16]
        return f"{len(entries)} files, {total} bytes, {digest}"
    todo = [spec["images"]]  # folders relative to root (strings: no Path per file)
    while todo:
        folder = todo.pop()
        with os.scandir(root / folder) as found:
            for entry in found:
                name = f"{folder}/{entry.name}"
                if entry.is_dir():
                    todo.append(name)
                else:
                    stat = entry.stat()
                    entries.append(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}")
                    total += stat.st_size
    for name in (spec["labels"], *spec["optional"]):
        if (root / name).is_file():
            stat = (root / name).stat()
            entries.append(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}")
            total += stat.st_size
    digest = hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()[:16]
    return f"{len(entries)} files, {total} bytes, {digest}"
