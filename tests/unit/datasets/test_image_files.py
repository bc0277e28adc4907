"""salaudit.datasets.image_files: a table's PNG/JPEG/TIFF/DICOM images and masks, read as known
pixels (through the conversion) or refused with one line naming the file."""

import numpy as np
import pytest
from PIL import Image

from helpers.table_like import by_id, convert_table, write_table_like
from salaudit import config
from salaudit.datasets import image_files


# ----------------------------------------------------------------------------- image kinds
@pytest.mark.parametrize("kind, photometric, file_format, bits", [
    ("png8", "L", "PNG", 8), ("png16", "I;16", "PNG", 16), ("tif16", "I;16", "TIFF", 16),
    ("rgb", "RGB", "PNG", 8), ("dicom", "MONOCHROME2", "1.2.840.10008.1.2.1", 8),
])
def test_each_image_kind_gives_the_same_pixels(tmp_path, kind, photometric, file_format, bits):
    """16-bit files hold the 8-bit values times 257: `scale` maps 0..65535 onto 0..255, exactly back."""
    truth = write_table_like(tmp_path, "mask", kind)
    converted = convert_table(tmp_path, high_bit_depth="scale")
    assert converted.problems == []
    for image_id, i in by_id(converted).items():
        assert (converted.images[i] == truth[image_id][3]).all()
        assert (converted.masks[i] == truth[image_id][1]).all()
    row = converted.manifest.iloc[0]
    assert (row.photometric, row.transfer_syntax, row.bits_stored) == (photometric, file_format, bits)
    if kind == "rgb":
        assert [(w.source, w.reason) for w in converted.warnings] == [
            (f"{i}.png", "RGB image converted to grey (ITU-R 601-2 luma)") for i in sorted(truth)]
    else:
        assert converted.warnings == []


def test_patient_id_falls_back_to_the_dicom_then_the_image_id(tmp_path):
    write_table_like(tmp_path / "dicom", "mask", "dicom", patients=False)
    write_table_like(tmp_path / "png", "mask", "png8", patients=False)
    assert convert_table(tmp_path / "dicom").manifest["patient_id"].iloc[0].startswith("dicom-patient-")
    manifest = convert_table(tmp_path / "png").manifest
    assert (manifest["patient_id"] == manifest["image_id"]).all()


def test_sixteen_bit_percentile_windows_each_image(tmp_path):
    write_table_like(tmp_path, "mask", "png16")
    converted = convert_table(tmp_path, high_bit_depth="percentile")
    source = np.asarray(Image.open(tmp_path / "images" / "n1.png")).astype(np.float32)
    lo, hi = np.percentile(source, config.defaults()["window_percentiles"])
    expected = np.clip(np.rint((source - lo) * np.float32(255 / (hi - lo))), 0, 255)
    assert np.abs(converted.images[by_id(converted)["images/n1"]] - expected).max() <= 1


def test_jpeg_images_are_read(tmp_path):
    truth = write_table_like(tmp_path, "mask", "jpeg")
    converted = convert_table(tmp_path)
    assert converted.problems == [] and converted.manifest["transfer_syntax"].eq("JPEG").all()
    for image_id, i in by_id(converted).items():  # lossy: the decoded file, not the pixels written
        assert (converted.images[i] == np.asarray(Image.open(tmp_path / f"{image_id}.jpg"))).all()
        assert np.abs(converted.images[i].astype(int) - truth[image_id][3]).mean() < 5


def test_unusable_files_are_refused_naming_them(tmp_path):
    Image.fromarray(np.ones((4, 4), np.float32)).save(tmp_path / "float.tif")
    frames = [Image.fromarray(np.zeros((4, 4), np.uint8)) for _ in range(2)]
    frames[0].save(tmp_path / "stack.tif", save_all=True, append_images=frames[1:])
    Image.fromarray(np.full((4, 4), 70000, np.int32)).save(tmp_path / "wide.tif")
    whole = write_png(tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[:len(whole) // 2])
    for name, message in [("float.tif", "image mode F (float or signed) is not supported"),
                          ("stack.tif", "multi-frame images (2 frames) are not supported"),
                          ("wide.tif", "values 70000..70000 beyond 16 bits are not supported"),
                          ("cut.png", "not a readable image (OSError: image file is truncated)"),
                          ("absent.png", "no such file")]:
        with pytest.raises(image_files.ImageError) as caught:
            image_files.read_image(tmp_path / name)
        assert str(caught.value).startswith(f"{tmp_path / name}: ") and message in str(caught.value)
        assert str(caught.value).count(str(tmp_path)) == 1  # named once


def write_png(path):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64)).astype(np.uint8)).save(path)
    return path


def test_a_mask_is_non_zero_in_any_channel_at_its_images_size(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[1, 2, 2] = 1  # blue only
    Image.fromarray(rgb).save(tmp_path / "m.png")
    mask = image_files.read_mask(tmp_path / "m.png", 4, 6)
    assert mask.dtype == np.uint8 and mask.sum() == 1 and mask[1, 2] == 1
    with pytest.raises(image_files.ImageError, match=r"mask is 4x6 \(rows x columns\) but its image is 6x4"):
        image_files.read_mask(tmp_path / "m.png", 6, 4)
