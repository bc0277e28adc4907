import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pydicom
import pytest
from skimage.transform import resize

from helpers import kaggle_like
from helpers.repo import tool_env
from salaudit import config
from salaudit.datasets import convert, formats, tables
from salaudit.datasets.labels import boxes_to_mask


def convert_dataset(fmt, root, image_size, **options):
    """`convert.convert_dataset` with the schema's defaults for the settings these tests do not
    vary (high_bit_depth, window_percentiles)."""
    defaults = config.defaults()
    return convert.convert_dataset(fmt, root, image_size, defaults["high_bit_depth"],
                                   tuple(defaults["window_percentiles"]), **options)


def settings_args(image_size, on_bad_input):
    """scripts/convert.py's ``--settings``: the config keys it reads (the rest: schema defaults)."""
    return ["--settings", json.dumps({"image_size": image_size, "on_bad_input": on_bad_input})]


def iou(a, b):
    a, b = a > 0, b > 0
    return (a & b).sum() / max((a | b).sum(), 1)


def test_siim_like_dataset_converts_exactly(tmp_path):
    truth = kaggle_like.write_siim_like(tmp_path / "siim")
    size = 64
    converted = convert_dataset("siim", tmp_path / "siim", size)
    assert converted.problems == []
    manifest = converted.manifest
    assert manifest["image_id"].tolist() == sorted(truth)  # ordered by id
    assert list(manifest.columns) == tables.MANIFEST_COLUMNS
    assert converted.images.shape == converted.masks.shape == (6, size, size)
    assert converted.images.dtype == converted.masks.dtype == np.uint8
    for i, row in manifest.iterrows():
        label, mask = truth[row.image_id]
        assert row.label == label
        expected = resize(mask.astype(float), (size, size), anti_aliasing=True) >= 0.5
        if label:
            assert iou(converted.masks[i], expected) >= 0.95
        else:
            assert not converted.masks[i].any()
    assert manifest.set_index("image_id").loc["1.2.3.11", "n_regions"] == 2
    # SIIM boxes are the bounding boxes of the mask's connected regions
    for image_id, group in converted.boxes.groupby("image_id"):
        mask = converted.masks[manifest.index[manifest.image_id == image_id][0]]
        rows, cols = np.nonzero(mask)
        assert len(group) == 1  # the two rows of 1.2.3.11 overlap: one region
        assert group[["x0", "y0", "x1", "y1"]].values.tolist() == [[cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]]
    assert set(manifest["transfer_syntax"]) == {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.1"}
    assert manifest["patient_id"].str.startswith("patient-").all()
    # the image content survives: the downsampled truth vs the converted pixels
    first = pydicom.dcmread(next((tmp_path / "siim").rglob("1.2.3.10.dcm"))).pixel_array
    expected_pixels = resize(first.astype(float), (size, size), anti_aliasing=True, preserve_range=True)
    assert np.abs(converted.images[0] - expected_pixels).mean() < 3


def test_rsna_like_dataset_boxes_land_where_they_should(tmp_path):
    truth = kaggle_like.write_rsna_like(tmp_path / "rsna")
    converted = convert_dataset("rsna", tmp_path / "rsna", 64)
    assert converted.problems == []
    manifest = converted.manifest.set_index("image_id")
    # patient 1: x 256..768, y 256..512 of 1024 -> columns 16..47, rows 16..31 at 64 px
    mask = converted.masks[manifest.index.get_loc("aaaa-0001")]
    expected = np.zeros((64, 64), np.uint8)
    expected[16:32, 16:48] = 1
    np.testing.assert_array_equal(mask, expected)
    for pid, (label, boxes) in truth.items():
        i = manifest.index.get_loc(pid)
        assert manifest.loc[pid, "label"] == label
        assert manifest.loc[pid, "n_regions"] == len(boxes)
        np.testing.assert_array_equal(converted.masks[i], boxes_to_mask(boxes, 1024, 1024, 64))
    boxes = converted.boxes
    assert list(boxes.columns) == tables.BOX_COLUMNS
    assert boxes[boxes.image_id == "aaaa-0001"][["x0", "y0", "x1", "y1"]].values.tolist() == [[16, 16, 48, 32]]
    assert (boxes.image_id == "aaaa-0002").sum() == 2 and not (boxes.image_id == "aaaa-0003").any()
    assert manifest.loc["aaaa-0001", "class"] == "Lung Opacity"
    assert manifest.loc["aaaa-0003", "class"] == "Normal"


def test_parallel_workers_give_identical_output(tmp_path):
    kaggle_like.write_siim_like(tmp_path / "siim")
    one = convert_dataset("siim", tmp_path / "siim", 48, workers=1)
    two = convert_dataset("siim", tmp_path / "siim", 48, workers=2)
    np.testing.assert_array_equal(one.images, two.images)
    np.testing.assert_array_equal(one.masks, two.masks)
    pd.testing.assert_frame_equal(one.manifest, two.manifest)


@pytest.fixture
def broken_siim(tmp_path):
    """A SIIM-like dataset with one of each kind of bad input."""
    root = tmp_path / "siim"
    kaggle_like.write_siim_like(root)
    images = root / "dicom-images-train"
    # 1. truncated DICOM
    victim = next(images.rglob("1.2.3.13.dcm"))
    victim.write_bytes(victim.read_bytes()[:600])
    # 2. an image with no label row
    kaggle_like.write_dicom(images / "x" / "y" / "1.2.3.20.dcm", np.zeros((256, 256), np.uint8), "p20", "1.2.3.20")
    # 3. unsupported transfer syntax
    kaggle_like.write_dicom(images / "x" / "y" / "1.2.3.21.dcm", np.zeros((256, 256), np.uint8), "p21", "1.2.3.21")
    ds = pydicom.dcmread(images / "x" / "y" / "1.2.3.21.dcm")
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"
    ds.save_as(images / "x" / "y" / "1.2.3.21.dcm")
    with open(root / "train-rle.csv", "a") as f:
        f.write("1.2.3.21, -1\n")
        f.write("1.2.3.30, -1\n")  # 4. a label row whose image is missing
        f.write("1.2.3.10, 65530 100\n")  # 5. malformed RLE: leaves the 256x256 image (2nd row of 1.2.3.10)
    return root


def test_bad_inputs_are_each_reported(broken_siim):
    converted = convert_dataset("siim", broken_siim, 32)
    reasons = {p.source: p.reason for p in converted.problems}
    assert len(converted.problems) == 5
    truncated = next(s for s in reasons if s.endswith("1.2.3.13.dcm"))
    assert reasons[truncated] == "truncated: 70 of 65536 bytes of pixel data"  # what the reader can act on
    assert "no row for 1.2.3.20" in reasons["dicom-images-train/x/y/1.2.3.20.dcm"]
    assert "no installed decoder" in reasons["dicom-images-train/x/y/1.2.3.21.dcm"]
    assert "no DICOM file 1.2.3.30.dcm" in reasons["train-rle.csv:1.2.3.30"]
    malformed = next(r for s, r in reasons.items() if s.endswith("1.2.3.10.dcm"))
    assert "ImageId 1.2.3.10 (train-rle.csv line 11)" in malformed and "outside" in malformed
    assert set(converted.manifest["image_id"]) == {"1.2.3.11", "1.2.3.12", "1.2.3.14", "1.2.3.15"}


def run_convert(repo, root, out, mode):
    return subprocess.run(
        [sys.executable, str(repo / "scripts" / "convert.py"), "--format", "siim", "--root", str(root),
         "--out", str(out), "--workers", "1", *settings_args(32, mode)],
        capture_output=True, text=True, env=tool_env(),
    )


def test_cli_fail_mode_lists_one_line_per_problem(broken_siim, tmp_path, repo):
    result = run_convert(repo, broken_siim, tmp_path / "out", "fail")
    assert result.returncode == 1
    lines = [l for l in result.stderr.splitlines() if l.startswith("BAD INPUT ")]
    assert len(lines) == 5
    assert "Traceback" not in result.stderr
    assert "5 unusable inputs" in result.stderr
    assert not (tmp_path / "out" / "images.npy").exists()


def test_cli_skip_mode_writes_rejected_csv(broken_siim, tmp_path, repo):
    out = tmp_path / "out"
    result = run_convert(repo, broken_siim, out, "skip")
    assert result.returncode == 0, result.stderr
    rejected = pd.read_csv(out / "rejected.csv")
    assert list(rejected.columns) == ["source", "reason"]
    assert len(rejected) == 5
    manifest = tables.read_manifest(out / "manifest.csv")
    images = np.load(out / "images.npy", mmap_mode="r")
    assert len(manifest) == images.shape[0] == 4
    assert manifest["image_id"].tolist() == ["1.2.3.11", "1.2.3.12", "1.2.3.14", "1.2.3.15"]  # kept as text


def test_missing_dataset_folder_is_a_clear_error(tmp_path):
    with pytest.raises(formats.DatasetError, match="train-rle.csv"):
        convert_dataset("siim", tmp_path / "nowhere", 32)
    assert formats.missing_inputs("rsna", tmp_path) == [str(tmp_path / "stage_2_train_labels.csv"),
                                                       str(tmp_path / "stage_2_train_images")]


@pytest.mark.parametrize("fmt", ["siim", "rsna"])
def test_demo_data_converts_to_the_generators_truth(tmp_path, fmt):
    from salaudit.datasets import demo

    truth = {t["image_id"]: t for t in demo.write_demo(fmt, tmp_path / fmt, 8, 0.5, seed=3)}
    size = 96
    converted = convert_dataset(fmt, tmp_path / fmt, size)
    assert converted.problems == []
    manifest = converted.manifest
    assert sorted(manifest["image_id"]) == sorted(truth)
    assert manifest["label"].sum() == sum(t["label"] for t in truth.values()) == 4
    for i, row in manifest.iterrows():
        item = truth[row.image_id]
        assert row.label == item["label"] and row.patient_id == item["patient_id"]
        if fmt == "siim":
            expected = resize(item["mask"].astype(float), (size, size), anti_aliasing=True) >= 0.5
            if item["label"]:
                assert iou(converted.masks[i], expected) >= 0.95
            else:
                assert not converted.masks[i].any()
        else:
            np.testing.assert_array_equal(converted.masks[i], boxes_to_mask(item["boxes"], 1024, 1024, size))


def test_load_converted_checks_the_files_against_each_other(tmp_path):
    kaggle_like.write_siim_like(tmp_path / "siim")
    convert.write_converted(convert_dataset("siim", tmp_path / "siim", 32), tmp_path / "out")
    manifest = tables.read_manifest(tmp_path / "out" / "manifest.csv")
    splits = pd.DataFrame({"image_id": manifest["image_id"], "split": "train", "fold": 0})
    splits.to_csv(tmp_path / "splits.csv", index=False)
    images, masks, loaded, loaded_splits = tables.load_converted(tmp_path / "out", tmp_path / "splits.csv")
    assert isinstance(images, np.memmap) and images.shape == masks.shape == (6, 32, 32)
    assert loaded["image_id"].tolist() == loaded_splits["image_id"].tolist()
    splits.iloc[::-1].to_csv(tmp_path / "reordered.csv", index=False)
    with pytest.raises(ValueError, match="rows do not match"):
        tables.load_converted(tmp_path / "out", tmp_path / "reordered.csv")
    with pytest.raises(ValueError, match="does not exist"):
        tables.load_converted(tmp_path / "out", tmp_path / "missing.csv")


# --------------------------------------------------------------------------- the study's images

NOT_NORMAL = "No Lung Opacity / Not Normal"


def test_rsna_class_filter_lists_the_rest_in_excluded_csv(tmp_path):
    """The paper's cohort (Normal vs Lung Opacity) from a download with all three classes."""
    kaggle_like.write_rsna_like(tmp_path / "rsna", size=256, not_normal=("aaaa-0004",))
    assert formats.dataset_classes("rsna", tmp_path / "rsna") == ["Lung Opacity", NOT_NORMAL, "Normal"]
    lines = []
    converted = convert_dataset("rsna", tmp_path / "rsna", 32, classes=["Normal", "Lung Opacity"],
                                log=lines.append)
    assert converted.problems == []
    assert converted.manifest["image_id"].tolist() == ["aaaa-0001", "aaaa-0002", "aaaa-0003"]
    assert set(converted.manifest["class"]) == {"Normal", "Lung Opacity"}
    assert converted.excluded == [("aaaa-0004", f"class {NOT_NORMAL!r} not in classes")]
    assert f"  excluded 1: class {NOT_NORMAL!r} not in classes" in lines
    convert.write_converted(converted, tmp_path / "out")
    excluded = pd.read_csv(tmp_path / "out" / "excluded.csv")
    assert excluded.columns.tolist() == ["image_id", "reason"]
    assert excluded.values.tolist() == [["aaaa-0004", f"class {NOT_NORMAL!r} not in classes"]]
    # every class: nothing excluded, an empty excluded.csv with its header
    everything = convert_dataset("rsna", tmp_path / "rsna", 32)
    assert len(everything.manifest) == 4 and everything.excluded == []
    convert.write_converted(everything, tmp_path / "all")
    assert (tmp_path / "all" / "excluded.csv").read_text() == "image_id,reason\n"


def test_unknown_class_is_an_error_naming_the_classes_found(tmp_path):
    kaggle_like.write_rsna_like(tmp_path / "rsna", size=256)
    with pytest.raises(formats.DatasetError, match=r"classes \['Lung opacity'\] not found in .*"
                                                   r"stage_2_detailed_class_info.csv; classes found: 'Lung Opacity', 'Normal'"):
        convert_dataset("rsna", tmp_path / "rsna", 32, classes=["Normal", "Lung opacity"])
    with pytest.raises(formats.DatasetError, match="classes found: 'Pneumothorax', 'No pneumothorax'"):
        formats.check_classes("siim", tmp_path, ["Normal"])
    formats.check_classes("siim", tmp_path, ["Pneumothorax"])  # no error


def write_paper_split(path, rows):
    """The paper's published format, literally: an unnamed index column, `.png` ids, train|val|test."""
    lines = [",Image_ID,Split"] + [f"{i},{image_id},{split}" for i, (image_id, split) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_split_file_listing_fewer_images_than_the_download(tmp_path, repo):
    """Images the file does not list are left out (excluded.csv); ids it lists that the download
    lacks are bad input (fail: one line each; skip: rejected.csv)."""
    kaggle_like.write_rsna_like(tmp_path / "rsna", size=256, not_normal=("aaaa-0004",))
    split = write_paper_split(tmp_path / "pneumonia_splits.csv", [
        ("aaaa-0001.png", "train"), ("aaaa-0003.png", "test"), ("aaaa-0004.png", "val")])
    converted = convert_dataset("rsna", tmp_path / "rsna", 32, split_file=split)
    assert converted.problems == []
    assert converted.manifest["image_id"].tolist() == ["aaaa-0001", "aaaa-0003", "aaaa-0004"]
    assert converted.excluded == [("aaaa-0002", convert.NOT_IN_SPLIT_FILE)]
    # with the class filter too: each image left out once, for the first reason
    both = convert_dataset("rsna", tmp_path / "rsna", 32, split_file=split, classes=["Normal", "Lung Opacity"])
    assert both.manifest["image_id"].tolist() == ["aaaa-0001", "aaaa-0003"]
    assert both.excluded == [("aaaa-0002", convert.NOT_IN_SPLIT_FILE),
                             ("aaaa-0004", f"class {NOT_NORMAL!r} not in classes")]
    # ids the download lacks
    write_paper_split(split, [("aaaa-0001.png", "train"), ("aaaa-0003.png", "test"), ("bbbb-0009.png", "test"),
                              ("bbbb-0008.png", "train")])
    converted = convert_dataset("rsna", tmp_path / "rsna", 32, split_file=split)
    assert [p.source for p in converted.problems] == ["splits:bbbb-0008", "splits:bbbb-0009"]
    assert "neither a DICOM file nor a label row" in converted.problems[0].reason
    out = tmp_path / "cli"
    command = [sys.executable, str(repo / "scripts" / "convert.py"), "--format", "rsna", "--root",
               str(tmp_path / "rsna"), "--out", str(out), "--split-file", str(split), "--workers", "1"]
    failed = subprocess.run(command + settings_args(32, "fail"), capture_output=True, text=True, env=tool_env())
    assert failed.returncode == 1
    assert [line for line in failed.stderr.splitlines() if line.startswith("BAD INPUT")] == [
        "BAD INPUT splits:bbbb-0008: " + converted.problems[0].reason,
        "BAD INPUT splits:bbbb-0009: " + converted.problems[1].reason]
    skipped = subprocess.run(command + settings_args(32, "skip"), capture_output=True, text=True, env=tool_env())
    assert skipped.returncode == 0, skipped.stderr
    assert pd.read_csv(out / "rejected.csv")["source"].tolist() == ["splits:bbbb-0008", "splits:bbbb-0009"]
    assert pd.read_csv(out / "excluded.csv").values.tolist() == [["aaaa-0002", "not in split file"],
                                                                 ["aaaa-0004", "not in split file"]]
    assert "excluded 2: not in split file" in skipped.stdout


def test_split_file_in_a_bad_format_is_a_dataset_error(tmp_path):
    kaggle_like.write_rsna_like(tmp_path / "rsna", size=256)
    bad = tmp_path / "bad.csv"
    bad.write_text(",Image_ID,Split\n0,aaaa-0001.png,holdout\n")
    with pytest.raises(formats.DatasetError, match=r"unknown Split values \['holdout'\]"):
        convert_dataset("rsna", tmp_path / "rsna", 32, split_file=bad)


@pytest.mark.parametrize("fmt", ["siim", "rsna"])
def test_inventory_changes_with_any_image_and_only_then(tmp_path, fmt):
    """The `convert` rule's param: a replaced, added or deleted DICOM changes it; reading the
    download, or a file outside what the format reads, does not."""
    root = tmp_path / fmt
    (kaggle_like.write_siim_like if fmt == "siim" else kaggle_like.write_rsna_like)(root, 64)
    first = formats.inventory(fmt, root)
    convert_dataset(fmt, root, 32)
    (root / "README.txt").write_text("notes beside the download")
    assert formats.inventory(fmt, root) == first
    victim = sorted(root.rglob("*.dcm"))[1]
    data = victim.read_bytes()
    victim.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, newer time
    replaced = formats.inventory(fmt, root)
    assert replaced != first
    victim.unlink()
    assert formats.inventory(fmt, root) not in (first, replaced)
    victim.write_bytes(data)
    copy = victim.with_name("extra.dcm")
    copy.write_bytes(data)
    assert len({first, replaced, formats.inventory(fmt, root)}) == 3
