import numpy as np
import pytest

from helpers.kaggle_like import naive_rle as naive_encode
from salaudit.datasets.labels import (
    LabelError, SiimLabel, box_pixels, boxes_to_mask, mask_boxes, decode_siim_rle, encode_siim_rle,
    read_rsna_labels, read_siim_labels, siim_mask,
)


# ----------------------------------------------------------------- hand-worked examples
def test_hand_example_square():
    # 3x3, column-major flat index = col * 3 + row.
    mask = np.zeros((3, 3), np.uint8)
    mask[0, 0] = mask[1, 0] = 1  # flat 0, 1 -> run "0 2"
    mask[2, 1] = 1  # flat 5: 5 - 2 (end of previous run) = 3 -> "3 1"
    assert encode_siim_rle(mask) == "0 2 3 1"
    np.testing.assert_array_equal(decode_siim_rle("0 2 3 1", 3, 3), mask)


def test_hand_example_not_square():
    # height 2, width 3: flat = col * 2 + row
    mask = np.zeros((2, 3), np.uint8)
    mask[0, 1] = mask[1, 1] = mask[0, 2] = 1  # flat 2, 3, 4
    assert encode_siim_rle(mask) == "2 3"
    mask2 = np.zeros((2, 3), np.uint8)
    mask2[1, 2] = 1  # flat 5
    assert encode_siim_rle(mask2) == "5 1"
    np.testing.assert_array_equal(decode_siim_rle("5 1", 2, 3), mask2)


def test_runs_touching_borders_and_full_column():
    mask = np.zeros((4, 5), np.uint8)
    mask[:, 0] = 1  # whole first column: flat 0..3
    mask[3, 4] = 1  # last pixel: flat 19
    assert encode_siim_rle(mask) == "0 4 15 1"
    np.testing.assert_array_equal(decode_siim_rle("0 4 15 1", 4, 5), mask)


def test_empty_mask():
    assert encode_siim_rle(np.zeros((8, 8), np.uint8)) == "-1"
    assert not decode_siim_rle("-1", 8, 8).any()
    assert not decode_siim_rle(" -1", 8, 8).any()


@pytest.mark.parametrize("seed", range(20))
def test_round_trip_random(seed):
    rng = np.random.default_rng(seed)
    height, width = rng.integers(1, 40, size=2)
    mask = (rng.random((height, width)) < rng.uniform(0.05, 0.95)).astype(np.uint8)
    text = encode_siim_rle(mask)
    assert text == naive_encode(mask)
    decoded = decode_siim_rle(text, int(height), int(width))
    assert decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, mask)


@pytest.mark.parametrize("text, message", [
    ("8 2", "outside"),  # pixels 8..9 of a 3x3 image
    ("0 2 7 1", "run 2"),  # second run starts at 2 + 7 = 9
    ("1 2 3", "odd"),
    ("1 x", "non-integer"),
    ("1 0", "not positive"),
    ("-3 2", "negative"),
])
def test_malformed(text, message):
    with pytest.raises(LabelError, match=message):
        decode_siim_rle(text, 3, 3)


def test_read_siim_labels_union_and_row_numbers(tmp_path):
    a = np.zeros((4, 4), np.uint8); a[0, 0] = 1
    b = np.zeros((4, 4), np.uint8); b[3, 3] = 1; b[0, 0] = 1  # overlaps a
    csv = tmp_path / "train-rle.csv"
    csv.write_text(
        "ImageId, EncodedPixels\n"
        f"img1, {encode_siim_rle(a)}\n"
        "img2, -1\n"
        f"img1, {encode_siim_rle(b)}\n"
        "img3, 0 99\n"
    )
    table = read_siim_labels(csv)
    assert list(table) == ["img1", "img2", "img3"]
    assert table["img1"].label == 1 and table["img2"].label == 0
    np.testing.assert_array_equal(siim_mask(table["img1"], 4, 4), a | b)
    with pytest.raises(LabelError, match=r"img3 \(train-rle.csv line 5\)"):
        siim_mask(table["img3"], 4, 4)


def test_mixed_negative_and_mask_rows_is_an_error():
    entry = SiimLabel("x", [(2, "-1"), (3, "0 1")])
    with pytest.raises(LabelError, match="mix"):
        siim_mask(entry, 2, 2)


def test_read_rsna_labels(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "patientId,x,y,width,height,Target\n"
        "a,,,,,0\n"
        "b,10.0,20.0,30.0,40.0,1\n"
        "b,100.0,120.0,10.0,10.0,1\n"
        "c,,,,,1\n"
        "d,5,5,5,5,0\n"
        "e,,,,,0\n"
        "e,1,1,1,1,1\n"
    )
    table = read_rsna_labels(csv)
    assert table["a"].label == 0 and not table["a"].problems
    assert table["b"].boxes == [(10.0, 20.0, 30.0, 40.0), (100.0, 120.0, 10.0, 10.0)]
    assert "without a complete box" in table["c"].problems[0]
    assert "Target=0 with box" in table["d"].problems[0]
    assert "both Target=0 and Target=1" in table["e"].problems[0]


def test_boxes_to_mask_scaling_and_inclusive_fill():
    # 1024 px original -> 8 px: scale 1/128. Box x 128..384 (w 256), y 0..128.
    mask = boxes_to_mask([(128.0, 0.0, 256.0, 128.0)], 1024, 1024, 8)
    expected = np.zeros((8, 8), np.uint8)
    expected[0:1, 1:3] = 1
    np.testing.assert_array_equal(mask, expected)
    # A box smaller than one output pixel still fills the pixel it touches.
    tiny = boxes_to_mask([(700.0, 300.0, 3.0, 3.0)], 1024, 1024, 8)
    assert tiny.sum() == 1 and tiny[2, 5] == 1
    # Straddling pixel boundaries: 100..300 -> 0.78..2.34 -> pixels 0, 1, 2
    straddle = boxes_to_mask([(100.0, 100.0, 200.0, 200.0)], 1024, 1024, 8)
    assert straddle[0:3, 0:3].all() and straddle.sum() == 9
    # Non-square original scales x by columns, y by rows; two boxes -> union.
    union = boxes_to_mask([(0, 0, 50, 100), (0, 0, 100, 50)], rows=200, columns=100, size=4)
    assert union.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_box_pixels_and_mask_boxes():
    assert box_pixels((128.0, 0.0, 256.0, 128.0), 1024, 1024, 8) == (1, 0, 3, 1)
    mask = np.zeros((10, 10), np.uint8)
    mask[1:3, 2:5] = 1
    mask[6:9, 7] = 1
    mask[3, 5] = 1  # touches the first region diagonally: 8-connected
    assert sorted(mask_boxes(mask)) == [(2, 1, 6, 4), (7, 6, 8, 9)]
    assert mask_boxes(np.zeros((4, 4), np.uint8)) == []


def test_label_files_with_a_byte_order_mark_and_crlf(tmp_path):
    """Spreadsheet exports start with a UTF-8 BOM and end lines with CRLF: both read as plain CSV."""
    from salaudit.datasets.labels import read_rsna_classes
    from salaudit.datasets.splits import read_paper_split_file

    siim = tmp_path / "train-rle.csv"
    siim.write_bytes("\ufeffImageId, EncodedPixels\r\nimg1, 1 2\r\nimg2, -1\r\n".encode())
    table = read_siim_labels(siim)
    assert list(table) == ["img1", "img2"] and table["img1"].label == 1
    rsna = tmp_path / "stage_2_train_labels.csv"
    rsna.write_bytes("\ufeffpatientId,x,y,width,height,Target\r\na,,,,,0\r\nb,1,2,3,4,1\r\n".encode())
    assert read_rsna_labels(rsna)["b"].boxes == [(1.0, 2.0, 3.0, 4.0)]
    classes = tmp_path / "stage_2_detailed_class_info.csv"
    classes.write_bytes("\ufeffpatientId,class\r\na,Normal\r\n".encode())
    assert read_rsna_classes(classes) == {"a": "Normal"}
    split = tmp_path / "split.csv"
    split.write_bytes("\ufeff,Image_ID,Split\r\n0,img1.png,train\r\n1,img2.png,test\r\n".encode())
    assert list(read_paper_split_file(split).items()) == [("img1", "train"), ("img2", "test")]
