"""Reading (and, for the demo, writing) single-frame grayscale DICOM images.

What `read_dicom` handles, explicitly:

* uncompressed transfer syntaxes and every compressed one for which an installed pydicom
  decoder plugin is available (`supported_transfer_syntaxes()` lists them; with the pinned
  requirements that includes JPEG Baseline, JPEG Extended/Lossless, JPEG 2000 and RLE
  Lossless);
* Rescale Slope / Intercept (the modality LUT), applied to the stored values;
* ``MONOCHROME1`` (brighter = lower value) inverted into ``MONOCHROME2`` sense over the
  full stored-value range, so the inversion does not depend on the image content.

What it refuses with a `DicomError` that names the file: unreadable or truncated files,
transfer syntaxes without an installed decoder, colour images, multi-frame images.
"""

from __future__ import annotations

import io
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.errors import InvalidDicomError
from pydicom.uid import JPEGBaseline8Bit, SecondaryCaptureImageStorage, UID

HIGH_BIT_DEPTH_MODES = ("scale", "percentile")


class DicomError(ValueError):
    """A DICOM file this project cannot read; the message starts with the file's path."""


@dataclass
class DicomImage:
    """Pixels in MONOCHROME2 sense (float32, modality values) plus what ingestion records."""

    pixels: np.ndarray
    patient_id: str
    rows: int
    columns: int
    bits_stored: int
    photometric: str
    transfer_syntax: str
    value_range: tuple[float, float]  # modality values of the lowest/highest stored value


def supported_transfer_syntaxes() -> dict[str, str]:
    """UID → name of every transfer syntax pydicom can decode with the installed plugins."""
    from pydicom.uid import AllTransferSyntaxes

    return {str(uid): uid.name for uid in AllTransferSyntaxes if _is_supported(uid)}


def _is_supported(uid: UID) -> bool:
    if not uid.is_compressed:
        return True
    from pydicom.pixels import get_decoder

    try:
        return get_decoder(uid).is_available
    except NotImplementedError:
        return False


PIXEL_DATA = b"\xe0\x7f\x10\x00"  # the tag (7FE0,0010), little endian
ITEM, SEQUENCE_END = b"\xfe\xff\x00\xe0", b"\xfe\xff\xdd\xe0"  # (FFFE,E000), (FFFE,E0DD)


def pixel_data_truncation(path: str | Path) -> str | None:
    """``"truncated: N of M bytes of pixel data"`` when the file ends inside its pixel data (the
    last (7FE0,0010) element: native, its length; encapsulated, its fragments' lengths), else None."""
    data = Path(path).read_bytes()
    at = data.rfind(PIXEL_DATA)
    if at < 0:
        return None
    explicit = data[at + 4:at + 6] in (b"OB", b"OW", b"OF", b"UN")
    length = int.from_bytes(data[at + 8:at + 12] if explicit else data[at + 4:at + 8], "little")
    start = at + (12 if explicit else 8)
    if length != 0xFFFFFFFF:  # native pixel data
        have = len(data) - start
        return f"truncated: {have} of {length} bytes of pixel data" if have < length else None
    position, declared, have = start, 0, 0  # encapsulated: items, then the sequence's end
    while position + 8 <= len(data):
        tag, size = data[position:position + 4], int.from_bytes(data[position + 4:position + 8], "little")
        if tag == SEQUENCE_END:
            return None
        if tag != ITEM:
            break
        declared += size
        have += min(size, len(data) - position - 8)
        position += 8 + size
    if have < declared:
        return f"truncated: {have} of {declared} bytes of pixel data"
    return f"truncated: its {have} bytes of pixel data end without their end marker"


def read_dicom_image(path: str | Path) -> DicomImage:
    """Read one DICOM file; see the module docstring for what is handled and refused. pydicom's
    warnings (about damaged files) go to stderr, the job's log: the error says what is wrong."""
    path = Path(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return _read(path)
        except DicomError:
            for warning in caught:
                print(f"pydicom: {path}: {warning.message}", file=sys.stderr)
            raise


def _read(path: Path) -> DicomImage:
    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError:
        raise DicomError(f"{path}: not a DICOM file (no 'DICM' after its 128-byte preamble)") from None
    except (EOFError, OSError, ValueError, KeyError, TypeError) as err:
        reason = (pixel_data_truncation(path) if path.is_file() else None) or \
            f"not a readable DICOM file ({type(err).__name__}: {err})"
        raise DicomError(f"{path}: {reason}") from None
    if "PixelData" not in ds:
        raise DicomError(f"{path}: {pixel_data_truncation(path) or 'no pixel data'}")
    meta = getattr(ds, "file_meta", None)
    uid = UID(meta.get("TransferSyntaxUID", "1.2.840.10008.1.2") if meta else "1.2.840.10008.1.2")
    if not _is_supported(uid):
        raise DicomError(
            f"{path}: transfer syntax {uid} ({uid.name}) has no installed decoder; "
            f"supported: {', '.join(supported_transfer_syntaxes().values())}"
        )
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if int(ds.get("SamplesPerPixel", 1)) != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise DicomError(
            f"{path}: expected a single-channel MONOCHROME1/2 image, got "
            f"SamplesPerPixel={ds.get('SamplesPerPixel')} PhotometricInterpretation={photometric!r}"
        )
    if int(ds.get("NumberOfFrames", 1) or 1) != 1:
        raise DicomError(f"{path}: multi-frame images ({ds.NumberOfFrames} frames) are not supported")
    try:
        stored = ds.pixel_array
    except Exception as err:  # decoders raise ValueError/RuntimeError/... for corrupt data
        reason = pixel_data_truncation(path) or f"pixel data cannot be decoded ({type(err).__name__}: {err})"
        raise DicomError(f"{path}: {reason}") from None
    if stored.ndim != 2:
        raise DicomError(f"{path}: expected a 2-D image, decoded shape {stored.shape}")

    bits = int(ds.get("BitsStored", stored.dtype.itemsize * 8))
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    pixels = stored.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    value_range = tuple(sorted((low * slope + intercept, high * slope + intercept)))
    if photometric == "MONOCHROME1":
        pixels = np.float32(value_range[0] + value_range[1]) - pixels
    return DicomImage(
        pixels=pixels,
        patient_id=str(ds.get("PatientID", "")),
        rows=int(stored.shape[0]),
        columns=int(stored.shape[1]),
        bits_stored=bits,
        photometric=photometric,
        transfer_syntax=str(uid),
        value_range=value_range,
    )


def read_dicom(path: str | Path) -> np.ndarray:
    """2-D float32 pixels of a DICOM file: modality values, display orientation, MONOCHROME2 sense."""
    return read_dicom_image(path).pixels


def to_uint8(image: DicomImage, mode: str, percentiles: tuple[float, float]) -> np.ndarray:
    """Map an image's modality values to uint8 (``mode``, ``percentiles``: the config's
    ``high_bit_depth`` and ``window_percentiles``).

    8-bit images whose modality range is already 0..255 (the Kaggle files) are kept exactly.
    Otherwise ``mode="scale"`` maps the full stored range linearly onto 0..255 and
    ``mode="percentile"`` windows between the given percentiles of the image itself.
    """
    lo, hi = image.value_range
    if (lo, hi) == (0.0, 255.0):
        return np.clip(np.rint(image.pixels), 0, 255).astype(np.uint8)
    if mode == "scale":
        pass
    elif mode == "percentile":
        lo, hi = (float(v) for v in np.percentile(image.pixels, percentiles))
    else:
        raise ValueError(f"unknown high_bit_depth mode {mode!r}; expected one of {HIGH_BIT_DEPTH_MODES}")
    if hi <= lo:
        return np.zeros(image.pixels.shape, dtype=np.uint8)
    scaled = (image.pixels - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def write_jpeg_dicom(
    path: str | Path,
    pixels: np.ndarray,
    *,
    patient_id: str,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    pixel_spacing: float = 0.14,
    quality: int = 95,
    extra: dict[str, object] | None = None,
) -> None:
    """Write a uint8 image as the Kaggle files are: 8-bit MONOCHROME2, JPEG Baseline, encapsulated.

    Used by the demo generator and tests; ``extra`` sets further top-level keywords.
    """
    from PIL import Image

    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim != 2:
        raise ValueError(f"expected a 2-D uint8 image, got {pixels.dtype} {pixels.shape}")
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="JPEG", quality=quality)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.PatientID = patient_id
    ds.PatientName = patient_id
    ds.Modality = "CR"
    ds.ConversionType = "WSD"
    ds.BodyPartExamined = "CHEST"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PixelSpacing = [f"{pixel_spacing:.3f}", f"{pixel_spacing:.3f}"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    for keyword, value in (extra or {}).items():
        setattr(ds, keyword, value)
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
