"""Small datasets in the Kaggle layouts, written by the tests themselves.

Independent of the demo generator: masks are drawn here, encoded with a plain-loop RLE
encoder (the competition's mask2rle logic), and files are written with pydicom directly.
"""

from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, SecondaryCaptureImageStorage


def naive_rle(mask):
    """Relative column-major RLE as the competition's mask2rle, a plain loop."""
    height, width = mask.shape
    runs, position, last_end, run_start = [], 0, 0, None
    for col in range(width):
        for row in range(height):
            inside = mask[row, col] > 0
            if inside and run_start is None:
                run_start = position
            if not inside and run_start is not None:
                runs += [run_start - last_end, position - run_start]
                last_end, run_start = position, None
            position += 1
    if run_start is not None:
        runs += [run_start - last_end, position - run_start]
    return " ".join(map(str, runs)) if runs else "-1"


def write_dicom(path, pixels, patient_id, uid, jpeg=True):
    """An 8-bit MONOCHROME2 image, JPEG Baseline (via Pillow) or uncompressed."""
    import io

    from PIL import Image

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uid + ".1", uid + ".2"
    ds.PatientID = patient_id
    ds.Modality = "CR"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelSpacing = ["0.168", "0.168"]
    if jpeg:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=98)
        ds.PixelData = encapsulate([buffer.getvalue()])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    else:
        ds.PixelData = pixels.tobytes()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def background(size, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    return np.clip(90 + 60 * np.sin(6 * xx) * np.cos(4 * yy) + rng.normal(0, 4, (size, size)), 0, 255)


def ellipse(size, cy, cx, ry, rx):
    yy, xx = np.mgrid[0:size, 0:size]
    return (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1).astype(np.uint8)


def write_siim_like(root, size=256):
    """Six images: 3 positive (one split over two overlapping rows), 3 negative.

    Returns {image_id: (label, full-size mask)}.
    """
    root = Path(root)
    truth = {}
    lines = ["ImageId, EncodedPixels"]
    specs = [
        ("1.2.3.10", [ellipse(size, 60, 60, 30, 20)]),
        ("1.2.3.11", [ellipse(size, 128, 200, 40, 25), ellipse(size, 150, 190, 30, 30)]),  # overlapping rows
        ("1.2.3.12", [ellipse(size, 30, 128, 20, 100)]),  # touches the top border region
        ("1.2.3.13", []), ("1.2.3.14", []), ("1.2.3.15", []),
    ]
    for n, (image_id, parts) in enumerate(specs):
        mask = np.zeros((size, size), np.uint8)
        for part in parts:
            mask |= part
            lines.append(f"{image_id}, {naive_rle(part)}")
        if not parts:
            lines.append(f"{image_id}, -1")
        pixels = background(size, n)
        pixels[mask > 0] += 60
        write_dicom(root / "dicom-images-train" / f"{image_id}.1" / f"{image_id}.2" / f"{image_id}.dcm",
                    np.clip(pixels, 0, 255).astype(np.uint8), f"patient-{n}", image_id, jpeg=n % 2 == 0)
        truth[image_id] = (int(bool(parts)), mask)
    (root / "train-rle.csv").write_text("\n".join(lines) + "\n")
    return truth


def write_rsna_like(root, size=1024, not_normal=()):
    """Four patients: two positive (one with two boxes), two negative (class Normal, or
    "No Lung Opacity / Not Normal" for the ids in ``not_normal``). Returns {id: (label, boxes)}."""
    root = Path(root)
    truth = {
        "aaaa-0001": (1, [(256.0, 256.0, 512.0, 256.0)]),
        "aaaa-0002": (1, [(100.0, 600.0, 200.0, 300.0), (700.0, 650.0, 150.0, 200.0)]),
        "aaaa-0003": (0, []),
        "aaaa-0004": (0, []),
    }
    labels = ["patientId,x,y,width,height,Target"]
    classes = ["patientId,class"]
    for n, (pid, (label, boxes)) in enumerate(truth.items()):
        for x, y, w, h in boxes:
            labels.append(f"{pid},{x},{y},{w},{h},1")
            classes.append(f"{pid},Lung Opacity")
        if not boxes:
            labels.append(f"{pid},,,,,0")
            classes.append(f"{pid},{'No Lung Opacity / Not Normal' if pid in not_normal else 'Normal'}")
        write_dicom(root / "stage_2_train_images" / f"{pid}.dcm", background(size, n).astype(np.uint8), pid, f"1.2.9.{n}")
    (root / "stage_2_train_labels.csv").write_text("\n".join(labels) + "\n")
    (root / "stage_2_detailed_class_info.csv").write_text("\n".join(classes) + "\n")
    return truth
