"""format table (salaudit.datasets.table, and its path through convert, splits, formats):
known tables in, known arrays out, for every encoding and image kind; every bad input one line."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers.repo import tool_env
from helpers.table_like import CASES, by_id, convert_table, write_table_like
from salaudit import config
from salaudit.datasets import convert, formats, splits, table
from salaudit.datasets.labels import box_pixels, boxes_to_mask
from salaudit.study import study

N = len(CASES)


# ----------------------------------------------------------------------------- the header
@pytest.mark.parametrize("header, encoding", [
    ("image,label,mask", "mask"), ("label,x,y,width,height,image,patient_id", "boxes"),
    ("image,label,rle,split", "rle"), ("\ufeffimage, label ,mask", "mask"),
])
def test_encoding_comes_from_the_header(tmp_path, header, encoding):
    (tmp_path / "t.csv").write_text(header + "\n")
    assert table.encoding_of(tmp_path / "t.csv") == encoding


@pytest.mark.parametrize("header, message", [
    ("image,label,mask,comment", r"unknown columns \['comment'\]"),
    ("image,mask", r"missing columns \['label'\]"),
    ("image,label,x,y,width", r"box columns need all of x,y,width,height; missing \['height'\]"),
    ("image,label,mask,rle", r"exactly one abnormality encoding.*found \['mask', 'rle'\]"),
    ("image,label", "exactly one abnormality encoding.*found none"),
])
def test_a_bad_header_is_one_line_naming_the_columns(tmp_path, header, message):
    (tmp_path / "table.csv").write_text(header + "\n")
    with pytest.raises(table.TableError, match=message):
        table.encoding_of(tmp_path / "table.csv")
    with pytest.raises(formats.DatasetError, match=message):  # what the workflow reports at parse time
        formats.check_table(tmp_path, "table.csv")
    with pytest.raises(formats.DatasetError, match=message):
        convert_table(tmp_path)


def test_missing_root_or_table_is_named_with_the_expected_layout(tmp_path):
    assert formats.missing_inputs("table", tmp_path / "absent", "table.csv") == [str(tmp_path / "absent")]
    assert formats.missing_inputs("table", tmp_path, "t.csv") == [str(tmp_path / "t.csv")]
    with pytest.raises(formats.DatasetError) as caught:
        convert_table(tmp_path)
    assert str(caught.value).startswith(f"missing {tmp_path / 'table.csv'}; expected a table dataset laid out as:")
    assert "image,label, then mask | x,y,width,height | rle" in str(caught.value)


@pytest.mark.parametrize("encoding, localizer", [("mask", "unet"), ("rle", "unet"), ("boxes", "retinanet")])
def test_the_localizer_follows_the_encoding(tmp_path, encoding, localizer):
    write_table_like(tmp_path, encoding)
    spec = {"format": "table", "root": str(tmp_path), "table": "table.csv"}
    assert formats.localizer(spec, tmp_path) == localizer
    resolved = config.resolve({"datasets": {"mine": {"format": "table", "root": str(tmp_path)}}}, complete=True)
    assert resolved["datasets"]["mine"]["table"] == "table.csv"  # the schema's default, for format table only
    assert study(resolved).localizer("mine") == localizer
    demo = config.resolve({"datasets": {"d": {"format": "table", "demo": {}}, "s": {"format": "siim", "demo": {}}}})
    assert study(demo).localizer("d") == "unet" and "table" not in demo["datasets"]["s"]


def test_classes_are_refused(tmp_path):
    write_table_like(tmp_path)
    assert formats.dataset_classes("table", tmp_path) == ["positive", "negative"]
    with pytest.raises(formats.DatasetError, match="format table has no classes"):
        formats.check_classes("table", tmp_path, ["positive"])
    formats.check_classes("table", tmp_path, None)


# ----------------------------------------------------------------------------- encodings
@pytest.mark.parametrize("encoding", ["mask", "rle", "boxes"])
def test_each_encoding_converts_exactly(tmp_path, encoding):
    truth = write_table_like(tmp_path, encoding)
    converted = convert_table(tmp_path)
    assert converted.problems == [] and converted.warnings == []
    manifest = converted.manifest
    assert manifest["image_id"].tolist() == sorted(truth)  # ids: the image paths without suffix
    assert manifest["source"].tolist() == [f"{i}.png" for i in sorted(truth)]
    assert converted.images.shape == converted.masks.shape == (N, 64, 64)
    for i, row in manifest.iterrows():
        label, mask, boxes, pixels = truth[row.image_id]
        assert row.label == label and row["class"] == ("positive" if label else "negative")
        assert (converted.images[i] == pixels).all()
        expected = boxes_to_mask(boxes, 64, 64, 64) if encoding == "boxes" else mask
        assert (converted.masks[i] == expected).all()
        assert row.n_regions == len(boxes) and row.mask_pixels == expected.sum()
    two = converted.boxes[converted.boxes.image_id == "images/p2"]
    if encoding == "boxes":  # the labelled boxes
        _, _, boxes, _ = truth["images/p2"]
        assert sorted(map(tuple, two[["x0", "y0", "x1", "y1"]].values)) == sorted(box_pixels(b, 64, 64, 64) for b in boxes)
    else:  # the mask's connected regions
        assert len(two) == 2
    assert manifest.set_index("image_id").loc["images/p2", "patient_id"] == "patient-a"


def test_boxes_scale_to_the_output_size(tmp_path):
    truth = write_table_like(tmp_path, "boxes", size=128)
    converted = convert_table(tmp_path, size=32)
    for image_id, i in by_id(converted).items():
        assert (converted.masks[i] == boxes_to_mask(truth[image_id][2], 128, 128, 32)).all()


# ----------------------------------------------------------------------------- bad input
def append_rows(root, *rows):
    with open(root / "table.csv", "a") as handle:
        handle.write("".join(row + "\n" for row in rows))


@pytest.fixture
def broken_masks(tmp_path):
    """A mask table with one of each kind of bad input (11 problems)."""
    root = tmp_path / "data"
    write_table_like(root, "mask")
    spare = np.asarray(Image.open(root / "images" / "n1.png"))
    for stem in ("b1", "b2", "b3", "b4", "b5"):
        Image.fromarray(spare).save(root / "images" / f"{stem}.png")
    (root / "images" / "n2.png").write_bytes(b"not a png")  # 1. unreadable image
    (root / "images" / "n3.png").unlink()  # 2. missing image file
    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(root / "masks" / "p1_0.png")  # 3. mask of another size
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(root / "masks" / "empty.png")
    Image.fromarray(np.full((64, 64), 255, np.uint8)).save(root / "masks" / "full.png")
    append_rows(
        root,
        "images/b1.png,2,,x",  # 4. a label that is not 0/1
        "images/b2.png,1,masks/absent.png,x",  # 5. a missing mask file
        "images/b3.png,1,,x",  # 6. a positive without its mask
        "images/b4.png,1,masks/empty.png,x",  # 7. a positive whose mask is empty
        "images/b5.png,0,masks/full.png,x",  # 8. a negative whose mask is not
        "images/n4.png,1,masks/full.png,patient-b",  # 9. rows of one image with different labels
        "images/scan.bmp,0,,x",  # 10. an unsupported image type
        ",0,,x",  # 11. a row without an image
    )
    return root


def test_every_bad_input_is_one_line_naming_the_file_and_row(broken_masks):
    converted = convert_table(broken_masks)
    reasons = {p.source: p.reason for p in converted.problems}
    assert len(converted.problems) == 11, converted.problems
    assert "not an image Pillow can read" in reasons["images/n2.png"]
    assert reasons["images/n3.png"] == f"no file images/n3.png under {broken_masks} (table.csv line 9)"
    assert "mask is 32x32 (rows x columns) but its image is 64x64" in reasons["images/p1.png"]
    assert reasons["images/b1.png"] == "table.csv line 11: label '2' is not 0 or 1"
    assert reasons["images/b2.png"] == f"no file masks/absent.png under {broken_masks} (table.csv line 12)"
    assert reasons["images/b3.png"] == "table.csv line 13: label 1 without a mask"
    assert "label 1 but its mask" in reasons["images/b4.png"] and reasons["images/b4.png"].endswith("is empty")
    assert "label 0 but its mask" in reasons["images/b5.png"] and "has 4096 pixels inside" in reasons["images/b5.png"]
    assert reasons["images/n4.png"] == "table.csv lines 10,16: rows of images/n4.png with different label values [0, 1]"
    assert "unsupported image type '.bmp'" in reasons["images/scan.bmp"]
    assert reasons["table.csv:18"] == "empty image path"
    assert sorted(converted.manifest["image_id"]) == ["images/n1", "images/p2", "images/p3", "images/p4"]


@pytest.mark.parametrize("encoding, rows, expected", [
    ("boxes", ["images/n1.png,0,1,1,4,4,x"], "label 0 with box coordinates"),
    ("boxes", ["images/n1.png,1,1,1,,4,x"], "label 1 without a complete box"),
    ("boxes", ["images/n1.png,1,1,1,0,4,x"], "box width/height must be positive, got 0.0x4.0"),
    ("boxes", ["images/n1.png,1,a,1,4,4,x"], "unreadable box values ['a', '1', '4', '4']"),
    ("rle", ["images/n1.png,1,-1,x"], "label 1 without an rle mask"),
    ("rle", ["images/n1.png,0,3 4,x"], "label 0 with an rle mask"),
    ("mask", ["images/n1.png,1,masks/p1_0.jpg,x"], "mask masks/p1_0.jpg: expected a .png, .tif, .tiff file (lossless)"),
])
def test_bad_rows_of_each_encoding(tmp_path, encoding, rows, expected):
    write_table_like(tmp_path, encoding)
    text = (tmp_path / "table.csv").read_text().splitlines()
    kept = [line for line in text if not line.startswith("images/n1.png")]
    (tmp_path / "table.csv").write_text("\n".join(kept + rows) + "\n")
    converted = convert_table(tmp_path)
    assert [(p.source, p.reason) for p in converted.problems] == [("images/n1.png", f"table.csv line {N + 2}: {expected}")]


def test_an_rle_run_outside_the_image_names_the_table_line(tmp_path):
    write_table_like(tmp_path, "rle")
    text = (tmp_path / "table.csv").read_text().replace("images/p3.png,1,", "images/p3.png,1,4090 100 ")
    (tmp_path / "table.csv").write_text(text)
    problems = convert_table(tmp_path).problems
    assert len(problems) == 1 and problems[0].source == "images/p3.png"
    assert "ImageId images/p3 (table.csv line 5)" in problems[0].reason and "outside the 64x64 image" in problems[0].reason


def run_convert(repo, root, out, mode):
    return subprocess.run(
        [sys.executable, str(repo / "scripts" / "convert.py"), "--format", "table", "--table", "table.csv",
         "--root", str(root), "--out", str(out), "--workers", "2",
         "--settings", json.dumps({"image_size": 32, "on_bad_input": mode})],
        capture_output=True, text=True, env=tool_env(),
    )


def test_cli_fails_or_skips_as_on_bad_input_says(broken_masks, tmp_path, repo):
    failed = run_convert(repo, broken_masks, tmp_path / "fail", "fail")
    assert failed.returncode == 1
    assert len([line for line in failed.stderr.splitlines() if line.startswith("BAD INPUT ")]) == 11
    assert not (tmp_path / "fail").exists()
    skipped = run_convert(repo, broken_masks, tmp_path / "skip", "skip")
    assert skipped.returncode == 0, skipped.stderr
    rejected = pd.read_csv(tmp_path / "skip" / "rejected.csv", keep_default_na=False)
    assert len(rejected) == 11 and "images/b3.png" in set(rejected["source"])
    manifest = pd.read_csv(tmp_path / "skip" / "manifest.csv")
    assert len(manifest) == len(np.load(tmp_path / "skip" / "images.npy")) == 4


def test_cli_warns_once_per_rgb_image(tmp_path, repo):
    write_table_like(tmp_path / "data", "mask", "rgb")
    result = run_convert(repo, tmp_path / "data", tmp_path / "out", "fail")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING ")]
    assert len(warnings) == N and warnings[0] == "WARNING images/n1.png: RGB image converted to grey (ITU-R 601-2 luma)"


# ----------------------------------------------------------------------------- splits and patients
def test_the_split_column_is_a_split_file(tmp_path):
    write_table_like(tmp_path, "boxes", split=True)
    text = (tmp_path / "table.csv").read_text().replace("patient-e,test", "patient-e,")
    (tmp_path / "table.csv").write_text(text)
    converted = convert_table(tmp_path)
    assert converted.excluded == [("images/p4", convert.NO_SPLIT)]
    made, notes = splits.splits_from_table(converted.manifest, tmp_path / "table.csv", k=2, seed=0)
    assert notes == []
    assert made.loc[made.split == "test", "image_id"].tolist() == ["images/n2"]  # the table's test rows
    folds = made.set_index("image_id")["fold"]
    assert folds["images/p1"] == folds["images/p2"]  # patient-a in one fold
    assert folds["images/p3"] == folds["images/n4"]  # patient-b: val and train rows, one fold of the pool
    assert set(folds[made.set_index("image_id").split == "train"]) == {0, 1}


def test_a_bad_split_value_is_bad_input_and_a_split_file_as_well_is_an_error(tmp_path):
    write_table_like(tmp_path, "mask", split=True)
    text = (tmp_path / "table.csv").read_text().replace("patient-d,test", "patient-d,holdout")
    (tmp_path / "table.csv").write_text(text)
    problems = convert_table(tmp_path).problems
    assert [(p.source, p.reason) for p in problems] == [
        ("images/n2.png", "table.csv line 8: split 'holdout' is not one of train|val|test")]
    (tmp_path / "splits.csv").write_text(",Image_ID,Split\n0,images/n1.png,test\n")
    with pytest.raises(formats.DatasetError, match="has a split column and a split file is given too"):
        convert_table(tmp_path, split_file=tmp_path / "splits.csv")


def test_a_paper_split_file_chooses_a_tables_images(tmp_path):
    write_table_like(tmp_path, "mask")
    (tmp_path / "splits.csv").write_text(",Image_ID,Split\n0,images/n1.png,test\n1,images/p1,train\n2,images/x9,val\n")
    converted = convert_table(tmp_path, split_file=tmp_path / "splits.csv")
    assert converted.manifest["image_id"].tolist() == ["images/n1", "images/p1"]
    assert len(converted.excluded) == N - 2 and {r for _, r in converted.excluded} == {convert.NOT_IN_SPLIT_FILE}
    assert [(p.source, p.reason) for p in converted.problems] == [
        ("splits:images/x9", "listed in the split file but not in table.csv")]


def test_seeded_splits_keep_a_patient_together(tmp_path):
    write_table_like(tmp_path, "rle")
    manifest = convert_table(tmp_path).manifest
    for seed in range(5):
        made = splits.make_splits(manifest, 0.2, 2, seed).set_index("image_id")
        assert made.loc["images/p1", ["split", "fold"]].tolist() == made.loc["images/p2", ["split", "fold"]].tolist()
        assert made.loc["images/p3", ["split", "fold"]].tolist() == made.loc["images/n4", ["split", "fold"]].tolist()


# ----------------------------------------------------------------------------- inventory
def test_inventory_covers_the_table_and_every_file_it_lists(tmp_path):
    write_table_like(tmp_path, "mask")
    before = formats.inventory("table", tmp_path, "table.csv")
    assert before.startswith(f"{1 + N + 5} files")  # the table, the images, the five mask files
    (tmp_path / "notes.txt").write_text("not listed")
    assert formats.inventory("table", tmp_path, "table.csv") == before
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "images" / "n1.png")
    changed = formats.inventory("table", tmp_path, "table.csv")
    assert changed != before
    (tmp_path / "masks" / "p1_0.png").unlink()  # a missing file counts: adding it back reruns
    assert formats.inventory("table", tmp_path, "table.csv") not in (before, changed)
