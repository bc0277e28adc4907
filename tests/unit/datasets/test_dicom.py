from pathlib import Path

import numpy as np
import re

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian

from salaudit.datasets import dicom

# pydicom ships these files inside the package; get_testdata_file would try to download
# anything else, so the tests name bundled files only and find them on disk.
TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def bundled(name):
    path = TEST_FILES / name
    assert path.exists(), f"pydicom no longer bundles {name}"
    return path


def pixel_array(path):
    return pydicom.dcmread(path).pixel_array.astype(np.float32)


@pytest.mark.parametrize("name", ["MR_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "MR_small_jp2klossless.dcm"])
def test_matches_pydicom_pixel_array(name):
    path = bundled(name)
    image = dicom.read_dicom_image(path)
    assert image.pixels.dtype == np.float32 and image.pixels.ndim == 2
    np.testing.assert_array_equal(image.pixels, pixel_array(path))


def test_rle_file_equals_uncompressed_original():
    np.testing.assert_array_equal(dicom.read_dicom(bundled("MR_small_RLE.dcm")), dicom.read_dicom(bundled("MR_small.dcm")))


def test_rescale_slope_intercept_applied():
    path = bundled("693_J2KI.dcm")  # JPEG 2000, 14-bit signed, intercept -1024
    np.testing.assert_array_equal(dicom.read_dicom(path), pixel_array(path) - 1024)
    image = dicom.read_dicom_image(bundled("CT_small.dcm"))
    np.testing.assert_array_equal(image.pixels, pixel_array(bundled("CT_small.dcm")) - 1024)
    assert image.value_range == (-32768 - 1024, 32767 - 1024)


def write_uncompressed(path, stored, photometric, bits_stored, slope=None, intercept=None):
    ds = pydicom.dcmread(bundled("MR_small.dcm"))
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits_stored, bits_stored - 1, 0
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.PixelData = stored.astype(np.uint16).tobytes()
    ds.save_as(path)
    return path


def test_monochrome1_is_inverted_over_the_stored_range(tmp_path):
    # A 12-bit MONOCHROME1 CR-like image: display value = 4095 - stored.
    stored = np.array([[0, 100], [2000, 4095]])
    path = write_uncompressed(tmp_path / "cr.dcm", stored, "MONOCHROME1", 12)
    image = dicom.read_dicom_image(path)
    assert image.photometric == "MONOCHROME1"
    np.testing.assert_array_equal(image.pixels, 4095 - stored)
    np.testing.assert_array_equal(pixel_array(path), stored)  # pydicom itself does not invert
    # 12 bits scaled to 8: 4095 -> 255, 0 -> 0.
    np.testing.assert_array_equal(dicom.to_uint8(image, "scale", (0, 100)), np.rint((4095 - stored) * 255 / 4095))


def test_monochrome1_with_rescale(tmp_path):
    stored = np.array([[0, 10], [20, 255]])
    path = write_uncompressed(tmp_path / "m1.dcm", stored, "MONOCHROME1", 8, slope=2, intercept=-10)
    # modality values 2*s - 10 over [-10, 500]; inverted: (-10 + 500) - value
    np.testing.assert_array_equal(dicom.read_dicom(path), 490 - (2 * stored - 10))


def test_high_bit_depth_percentile_window():
    image = dicom.read_dicom_image(bundled("MR_small.dcm"))
    out = dicom.to_uint8(image, "percentile", (0, 100))
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255
    lo, hi = image.pixels.min(), image.pixels.max()
    np.testing.assert_array_equal(out, np.rint((image.pixels - lo) * 255 / (hi - lo)).astype(np.uint8))
    with pytest.raises(ValueError, match="unknown high_bit_depth"):
        dicom.to_uint8(image, "bogus", (0, 100))


def test_jpeg_baseline_8bit_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:256, 0:256]
    pixels = np.clip(128 + 80 * np.sin(xx / 20) * np.cos(yy / 30) + rng.normal(0, 3, (256, 256)), 0, 255).astype(np.uint8)
    path = tmp_path / "x.dcm"
    dicom.write_jpeg_dicom(path, pixels, patient_id="p", study_uid="1.2.3", series_uid="1.2.3.4", sop_uid="1.2.3.4.5")
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.BitsStored == 8
    image = dicom.read_dicom_image(path)
    np.testing.assert_array_equal(image.pixels, ds.pixel_array.astype(np.float32))
    assert image.value_range == (0.0, 255.0)
    np.testing.assert_array_equal(dicom.to_uint8(image, "scale", (0, 100)), ds.pixel_array)  # 8-bit kept exactly
    assert np.abs(image.pixels - pixels).mean() < 2.0  # lossy, but close at quality 95


def test_supported_transfer_syntaxes_cover_the_required_ones():
    supported = dicom.supported_transfer_syntaxes()
    for uid in ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.5"):
        assert uid in supported


def test_truncated_file_gives_clear_error():
    path = bundled("MR_truncated.dcm")  # native pixel data, 62 bytes short
    with pytest.raises(dicom.DicomError) as info:
        dicom.read_dicom(path)
    assert str(info.value) == f"{path}: truncated: 8130 of 8192 bytes of pixel data"


def test_not_a_dicom_file(tmp_path):
    path = tmp_path / "junk.dcm"
    path.write_bytes(b"this is not DICOM at all" * 10)
    with pytest.raises(dicom.DicomError) as info:
        dicom.read_dicom(path)
    assert str(info.value) == f"{path}: not a DICOM file (no 'DICM' after its 128-byte preamble)"


def test_truncated_jpeg_gives_clear_error(tmp_path, capsys):
    path = tmp_path / "ok.dcm"
    dicom.write_jpeg_dicom(path, np.full((64, 64), 100, np.uint8), patient_id="p",
                           study_uid="1.2", series_uid="1.2.3", sop_uid="1.2.3.4")
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(dicom.DicomError, match=rf"^{cut}: truncated: (\d+) of (\d+) bytes of pixel data$") as info:
        dicom.read_dicom(cut)
    have, of = map(int, re.findall(r"(\d+) of (\d+)", str(info.value))[0])
    assert of - have == 200 - 8  # the cut, less the missing sequence delimiter's 8 bytes
    # pydicom's own warning about it goes to stderr (the job's log), not into the one line
    assert "pydicom: " in capsys.readouterr().err


def test_unsupported_transfer_syntax(tmp_path):
    path = tmp_path / "mpeg.dcm"
    dicom.write_jpeg_dicom(path, np.full((64, 64), 100, np.uint8), patient_id="p",
                           study_uid="1.2", series_uid="1.2.3", sop_uid="1.2.3.4")
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: no decoder installed
    ds.save_as(path)
    with pytest.raises(dicom.DicomError, match="no installed decoder"):
        dicom.read_dicom(path)


def test_colour_image_refused():
    with pytest.raises(dicom.DicomError, match="single-channel"):
        dicom.read_dicom(bundled("SC_rgb_jpeg_dcmtk.dcm"))
