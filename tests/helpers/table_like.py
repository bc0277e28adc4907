"""Small datasets of format table (`salaudit.datasets.table`), written by the tests themselves:
a few grey images with elliptic lesions, their masks, boxes or RLE, and the table."""

from pathlib import Path

import numpy as np
from PIL import Image

from helpers.kaggle_like import background, ellipse, naive_rle

# (image stem, patient, lesions as (cy, cx, ry, rx) at 64 px, split)
# (enough for 2 folds: with the split column, or seeded).
CASES = [
    ("p1", "patient-a", [(20, 20, 8, 6)], "train"),
    ("p2", "patient-a", [(40, 40, 10, 8), (15, 45, 5, 5)], "train"),
    ("p3", "patient-b", [(30, 16, 9, 7)], "val"),
    ("p4", "patient-e", [(44, 30, 6, 12)], "test"),
    ("n1", "patient-c", [], "train"),
    ("n2", "patient-d", [], "test"),
    ("n3", "patient-f", [], "val"),
    ("n4", "patient-b", [], "train"),
]


def write_image(path, pixels, kind):
    """``kind``: png8, png16, tif16, jpeg, rgb (an RGB PNG whose three channels are the grey value)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind in ("png16", "tif16"):
        Image.fromarray(pixels.astype(np.uint16) * 257).save(path)  # 0..255 spread over 0..65535
    elif kind == "rgb":
        Image.fromarray(np.stack([pixels] * 3, axis=2).astype(np.uint8), mode="RGB").save(path)
    else:
        Image.fromarray(pixels.astype(np.uint8), mode="L").save(path)


SUFFIX = {"png8": ".png", "png16": ".png", "tif16": ".tif", "jpeg": ".jpg", "rgb": ".png", "dicom": ".dcm"}


def write_table_like(root, encoding="mask", kind="png8", size=64, split=False, patients=True, name="table.csv"):
    """Eight images (four positive, one with two lesions) as ``kind`` files under ``root/images``
    and a table with the abnormality as ``encoding`` (mask, boxes, rle). Returns
    ``{image_id: (label, full-size mask, boxes (x, y, w, h), pixels)}``."""
    root = Path(root)
    columns = ["image", "label", {"mask": "mask", "boxes": "x,y,width,height", "rle": "rle"}[encoding]]
    columns += ["patient_id"] * patients + ["split"] * split
    lines, truth = [",".join(columns)], {}
    for n, (stem, patient, lesions, split_value) in enumerate(CASES):
        scale = size / 64
        parts = [ellipse(size, cy * scale, cx * scale, ry * scale, rx * scale) for cy, cx, ry, rx in lesions]
        mask = np.zeros((size, size), np.uint8)
        for part in parts:
            mask |= part
        pixels = background(size, n)
        pixels[mask > 0] += 60
        pixels = np.clip(pixels, 0, 255).astype(np.uint8)
        image = f"images/{stem}{SUFFIX[kind]}"
        if kind == "dicom":
            from helpers.kaggle_like import write_dicom

            write_dicom(root / image, pixels, f"dicom-{patient}", f"1.2.3.{n}", jpeg=False)
        else:
            write_image(root / image, pixels, kind)
        boxes = []
        rows = []
        for j, part in enumerate(parts):
            r, c = np.nonzero(part)
            boxes.append((float(c.min()), float(r.min()), float(c.max() - c.min() + 1), float(r.max() - r.min() + 1)))
            if encoding == "mask":
                (root / "masks").mkdir(parents=True, exist_ok=True)
                Image.fromarray(part * 255).save(root / "masks" / f"{stem}_{j}.png")
                rows.append(f"masks/{stem}_{j}.png")
            elif encoding == "rle":
                rows.append(naive_rle(part))
            else:
                rows.append(",".join(f"{v:g}" for v in boxes[-1]))
        empty = {"mask": "", "rle": "-1", "boxes": ",,,"}[encoding]
        for value in rows or [empty]:
            row = [image, str(int(bool(parts))), value] + [patient] * patients + [split_value] * split
            lines.append(",".join(row))
        truth[f"images/{stem}"] = (int(bool(parts)), mask, boxes, pixels)
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text("\n".join(lines) + "\n")
    return truth


def convert_table(root, size=64, high_bit_depth=None, **options):
    """`convert.convert_dataset` of ``root/table.csv`` with the schema's defaults for the settings
    a test does not vary."""
    from salaudit import config
    from salaudit.datasets import convert

    defaults = config.defaults()
    return convert.convert_dataset("table", root, size, high_bit_depth or defaults["high_bit_depth"],
                                   tuple(defaults["window_percentiles"]), table_name="table.csv", **options)


def by_id(converted):
    """image_id -> array index of a conversion."""
    return {row.image_id: i for i, row in converted.manifest.iterrows()}
