"""Reading the images and masks a table lists (``format: table``, `salaudit.datasets.table`):
PNG, JPEG and TIFF through Pillow, DICOM through `salaudit.datasets.dicom`, each returned as the
``DicomImage`` the conversion already handles (`salaudit.datasets.convert`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from salaudit.datasets import dicom
from salaudit.datasets.formats import TABLE_DICOM_SUFFIXES as DICOM_SUFFIXES

GREY_MODES = ("L", "I;16", "I;16B", "I;16L", "I;16N", "I")


class ImageError(ValueError):
    """An image or mask file that cannot be used; the message starts with its path."""


def read_image(path: str | Path) -> tuple[dicom.DicomImage, str | None]:
    """An image of the table as `dicom.read_dicom_image` gives it (a ``DicomImage``), and a
    warning (or None).

    DICOM files are read by `salaudit.datasets.dicom`. Other files by Pillow: 8-bit grey (value
    range 0..255, kept exactly), 16-bit grey (PNG/TIFF; value range 0..65535, mapped to 8 bits by
    ``high_bit_depth`` as a high-bit-depth DICOM); an RGB, palette, grey+alpha, CMYK or bilevel
    image is converted to grey (Pillow's ITU-R 601-2 luma) with a warning. Refused with an
    `ImageError` naming the file: unreadable files, multi-frame files, float images, integer
    images beyond 16 bits. The manifest's ``photometric`` is then Pillow's mode (``L``,
    ``I;16``, ``RGB``, ...) and ``transfer_syntax`` the file format (``PNG``, ``TIFF``, ``JPEG``).
    """
    path = Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        try:
            return dicom.read_dicom_image(path), None
        except dicom.DicomError as err:
            raise ImageError(str(err)) from None
    image, mode, file_format = _open(path)
    warning = None
    if mode not in GREY_MODES:
        warning = f"{mode} image converted to grey (ITU-R 601-2 luma)"
        image = image.convert("L")
    pixels = np.asarray(image)
    if image.mode == "L":
        bits, value_range = 8, (0.0, 255.0)
    else:
        if pixels.size and (pixels.min() < 0 or pixels.max() > 65535):
            raise ImageError(f"{path}: {pixels.dtype} values {pixels.min()}..{pixels.max()} beyond 16 bits are not "
                             f"supported")
        bits, value_range = 16, (0.0, 65535.0)
    rows, columns = pixels.shape
    grey = dicom.DicomImage(pixels=pixels.astype(np.float32), patient_id="", rows=rows, columns=columns,
                            bits_stored=bits, photometric=mode, transfer_syntax=file_format, value_range=value_range)
    return grey, warning


def _open(path: Path):
    """``(image, mode, format)`` of a single-frame, non-float Pillow image, loaded."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with Image.open(path) as image:
            frames = getattr(image, "n_frames", 1)
            if frames != 1:
                raise ImageError(f"{path}: multi-frame images ({frames} frames) are not supported")
            image.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image Pillow can read") from None
    except (OSError, ValueError, SyntaxError) as err:  # truncated or corrupt data
        raise ImageError(f"{path}: not a readable image ({type(err).__name__}: {err})") from None
    if image.mode == "F" or image.mode.startswith("I;32") or image.mode == "I;16S":
        raise ImageError(f"{path}: image mode {image.mode} (float or signed) is not supported")
    return image, image.mode, image.format or path.suffix.lstrip(".").upper()


def read_mask(path: str | Path, rows: int, columns: int) -> np.ndarray:
    """A mask file as uint8 0/1 (non-zero in any channel = inside); it must have its image's size
    ``rows x columns`` (`ImageError` otherwise)."""
    image, _, _ = _open(Path(path))
    pixels = np.asarray(image)
    if pixels.ndim == 3:
        pixels = pixels.any(axis=2)
    if pixels.shape != (rows, columns):
        raise ImageError(f"{path}: mask is {pixels.shape[0]}x{pixels.shape[1]} (rows x columns) but its image is "
                         f"{rows}x{columns}")
    return (pixels != 0).astype(np.uint8)
