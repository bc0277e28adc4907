"""The embedded demo generator writes the Kaggle layouts, deterministically, with real lesions."""

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from scipy import ndimage

import make_demo_data
from salaudit import config
from salaudit.datasets import convert, demo, demo_anatomy
from salaudit.datasets.dicom import read_dicom
from salaudit.datasets.labels import read_rsna_classes, read_rsna_labels, read_siim_labels, siim_mask

N = 8
SEED = 7
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
UID = r"1\.2\.276\.0\.7230010\.3\.1\.{kind}\.8323329\.\d+\.{stamp}\d{{3}}\.\d{{6}}"
SOP = UID.format(kind=4, stamp=1517875)
KAGGLE = ("siim", "rsna")  # the format table's demo: its own section below


@pytest.fixture(scope="module")
def siim(tmp_path_factory):
    root = tmp_path_factory.mktemp("siim")
    return root, demo.write_siim_demo(root, N, 0.5, SEED)


@pytest.fixture(scope="module")
def rsna(tmp_path_factory):
    root = tmp_path_factory.mktemp("rsna")
    return root, demo.write_rsna_demo(root, N, 0.5, SEED)


def _band_pass(image: np.ndarray) -> np.ndarray:
    """Lung-texture scale (coarser than the pixel noise and the JPEG blocks)."""
    return ndimage.gaussian_filter(image, 3) - ndimage.gaussian_filter(image, 10)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- SIIM
def test_siim_layout(siim):
    root, truth = siim
    assert sorted(p.name for p in root.iterdir()) == ["dicom-images-train", "train-rle.csv"]
    dicoms = sorted(root.glob("dicom-images-train/*/*/*.dcm"))
    assert len(dicoms) == len(list(root.rglob("*.dcm"))) == N
    assert {p.stem for p in dicoms} == {t["image_id"] for t in truth}
    for path in dicoms:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert path.parts[-3:] == (ds.StudyInstanceUID, ds.SeriesInstanceUID, f"{ds.SOPInstanceUID}.dcm")
        assert re.fullmatch(SOP, ds.SOPInstanceUID)
        assert re.fullmatch(UID.format(kind=2, stamp=1517875), ds.StudyInstanceUID)
        assert re.fullmatch(UID.format(kind=3, stamp=1517875), ds.SeriesInstanceUID)


def test_siim_csv_text(siim):
    root, truth = siim
    text = (root / "train-rle.csv").read_bytes().decode("ascii")
    assert "\r" not in text and text.endswith("\n")
    header, *lines = text[:-1].split("\n")
    assert header == "ImageId, EncodedPixels"
    labels = {t["image_id"]: t["label"] for t in truth}
    for line in lines:
        image_id, value = re.fullmatch(rf"({SOP}), (-1|\d+(?: \d+)+)", line).groups()
        assert (value != "-1") == bool(labels[image_id]), line
    ids = [line.split(",")[0] for line in lines]
    assert set(ids) == set(labels)
    assert sum(value.endswith(" -1") for value in lines) == N - sum(labels.values())
    row_labels = [int(not line.endswith(", -1")) for line in lines]
    assert row_labels != sorted(row_labels) and row_labels != sorted(row_labels, reverse=True)  # shuffled


def test_siim_masks_are_the_union_of_the_rows(siim):
    root, truth = siim
    labels = read_siim_labels(root / "train-rle.csv")
    assert sum(t["label"] for t in truth) == round(N * 0.5)
    for t in truth:
        assert t["mask"].dtype == np.uint8 and t["mask"].shape == (1024, 1024)
        label = labels[t["image_id"]]
        assert label.label == t["label"] == int(t["mask"].any())
        np.testing.assert_array_equal(siim_mask(label, 1024, 1024), t["mask"])
    assert any(len(label.rows) > 1 for label in labels.values())


def test_siim_patients(siim):
    root, truth = siim
    ids = [t["patient_id"] for t in truth]
    assert all(re.fullmatch(UUID, pid) for pid in ids)
    assert len(set(ids)) < len(ids)  # some patient has two images
    for path in root.rglob("*.dcm"):
        (t,) = [t for t in truth if t["image_id"] == path.stem]
        assert pydicom.dcmread(path, stop_before_pixels=True).PatientID == t["patient_id"]


# ----------------------------------------------------------------------------- RSNA
def test_rsna_layout_and_csv_text(rsna):
    root, truth = rsna
    assert sorted(p.name for p in root.iterdir()) == [
        "stage_2_detailed_class_info.csv", "stage_2_train_images", "stage_2_train_labels.csv"
    ]
    assert sorted(p.name for p in (root / "stage_2_train_images").iterdir()) == sorted(
        f"{t['patient_id']}.dcm" for t in truth
    )
    labels = (root / "stage_2_train_labels.csv").read_bytes().decode("ascii")
    classes = (root / "stage_2_detailed_class_info.csv").read_bytes().decode("ascii")
    assert "\r" not in labels + classes
    label_lines, class_lines = labels.rstrip("\n").split("\n"), classes.rstrip("\n").split("\n")
    assert label_lines[0] == "patientId,x,y,width,height,Target"
    assert class_lines[0] == "patientId,class"
    assert len(label_lines) == len(class_lines) == 1 + sum(max(1, len(t["boxes"])) for t in truth)
    by_id = {t["patient_id"]: t for t in truth}
    for label_line, class_line in zip(label_lines[1:], class_lines[1:]):
        pid = label_line.split(",")[0]
        assert re.fullmatch(UUID, pid) and class_line.startswith(pid + ",")
        if by_id[pid]["label"]:
            assert re.fullmatch(rf"{pid},(\d+\.0,){{4}}1", label_line)
            assert class_line == f"{pid},Lung Opacity"
        else:
            assert label_line == f"{pid},,,,,0"
            assert class_line in (f"{pid},Normal", f"{pid},No Lung Opacity / Not Normal")
    assert sum(len(t["boxes"]) == 2 for t in truth) == round(0.3 * round(N * 0.5))


def test_rsna_boxes_match_truth_and_lie_in_the_lungs(rsna):
    root, truth = rsna
    labels = read_rsna_labels(root / "stage_2_train_labels.csv")
    assert set(read_rsna_classes(root / "stage_2_detailed_class_info.csv")) == set(labels)
    assert sum(t["label"] for t in truth) == round(N * 0.5)
    cases = {case.image_id: case for case in demo._plan_rsna(N, 0.5, SEED)}
    for t in truth:
        label = labels[t["patient_id"]]
        assert not label.problems
        assert (label.label, label.boxes) == (t["label"], t["boxes"])
        frame = demo_anatomy.Frame(demo_anatomy.SIZE, cases[t["image_id"]].exposure)
        lungs = np.zeros((1024, 1024), bool)
        for lung in cases[t["image_id"]].patient.lungs:
            lungs |= demo_anatomy.lung_geometry(lung, frame).sdf > 0
        for x, y, w, h in t["boxes"]:
            x, y, w, h = int(x), int(y), int(w), int(h)
            assert 50 <= w <= 500 and 50 <= h <= 600
            assert lungs[y + h // 2, x + w // 2]
            assert lungs[y : y + h, x : x + w].mean() > 0.75


# ----------------------------------------------------------------------------- both
@pytest.mark.parametrize("fmt", KAGGLE)
def test_dicom_headers(fmt, siim, rsna):
    root, truth = {"siim": siim, "rsna": rsna}[fmt]
    for path in root.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
        assert (ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored) == (1024, 1024, 8, 8)
        assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.SamplesPerPixel == 1
        assert len(ds.PixelSpacing) == 2 and ds.ViewPosition in ("PA", "AP")
        assert ds.PatientID in {t["patient_id"] for t in truth}
        if fmt == "rsna":
            assert ds.PatientID == path.stem
        assert ds.pixel_array.shape == (1024, 1024) and ds.pixel_array.dtype == np.uint8


@pytest.mark.parametrize("fmt", KAGGLE)
def test_lesions_are_drawn(fmt, siim, rsna):
    """Each written image differs from its lesion-free re-render exactly on the lesions."""
    root, truth = {"siim": siim, "rsna": rsna}[fmt]
    plan = {"siim": demo._plan_siim, "rsna": demo._plan_rsna}[fmt](N, 0.5, SEED)
    paths = {p.stem: p for p in root.rglob("*.dcm")}
    for case, t in zip(plan, truth, strict=True):
        written = read_dicom(paths[t["image_id"]])
        clean = demo_anatomy.render(case, draw_lesions=False)[0].astype(np.float32)
        if fmt == "siim":
            lesion = t["mask"].astype(bool)
        else:
            lesion = np.zeros((1024, 1024), bool)
            for x, y, w, h in t["boxes"]:
                lesion[int(y) : int(y + h), int(x) : int(x + w)] = True
        diff = written - clean
        # away from the lesion, the re-render is the written image (up to JPEG noise)
        assert abs(diff[~lesion].mean()) < 0.5
        if not t["label"]:
            continue
        if fmt == "siim":  # darker inside the crescent, and its lung texture is gone
            assert diff[lesion].mean() < -15
            core = ndimage.binary_erosion(lesion, iterations=10)
            # (ribs and mottle remain, so the band-passes stay partly correlated; ~1 with texture;
            # an ECG pad or wire over the crescent stays: compared without the devices)
            bare = dataclasses.replace(case, devices=())
            with_lesion, without = (demo_anatomy.render(bare, draw_lesions=d)[0].astype(np.float32) for d in (True, False))
            assert np.corrcoef(_band_pass(with_lesion)[core], _band_pass(without)[core])[0, 1] < 0.9
        else:  # brighter inside each box
            for x, y, w, h in t["boxes"]:
                assert diff[int(y) : int(y + h), int(x) : int(x + w)].mean() > 10


@pytest.mark.parametrize("fmt", KAGGLE)
def test_devices_are_drawn_in_both_classes_independently_of_the_label(fmt):
    """ECG pads, wires and calcified nodules: bright, sharp, in positives and negatives alike."""
    plan = {"siim": demo._plan_siim, "rsna": demo._plan_rsna}[fmt](60, 0.5, SEED)
    with_devices = {label: np.mean([bool(c.devices) for c in plan if bool(c.lesions) == label]) for label in (0, 1)}
    assert 0.5 < with_devices[0] < 0.95 and 0.5 < with_devices[1] < 0.95
    kinds = {d.kind for c in plan for d in c.devices}
    assert kinds == {"electrode", "granuloma"} and any(d.wire for c in plan for d in c.devices)
    case = next(c for c in plan if any(d.kind == "electrode" for d in c.devices))
    drawn = demo_anatomy.render(case)[0].astype(np.float32)
    bare = demo_anatomy.render(dataclasses.replace(case, devices=()))[0].astype(np.float32)
    pad = next(d for d in case.devices if d.kind == "electrode")
    frame = demo_anatomy.Frame(demo_anatomy.SIZE, case.exposure)
    row, col = (int(round(float(v))) for v in frame.body_to_pixel(np.float32(pad.x), np.float32(pad.y), demo.SIZE))
    rim = drawn[row - 30:row + 31, col - 30:col + 31] - bare[row - 30:row + 31, col - 30:col + 31]
    assert rim.max() > 40  # the pad's rim, tens of grey levels above the bare image
    assert abs((drawn - bare).mean()) < 2  # and nothing much elsewhere


@pytest.mark.parametrize("fmt", KAGGLE)
def test_deterministic_and_overwrites_only_own_files(fmt, siim, rsna, tmp_path):
    reference = _files({"siim": siim, "rsna": rsna}[fmt][0])
    (tmp_path / "notes.txt").write_text("kept")
    demo.write_demo(fmt, tmp_path, N, 0.5, SEED)
    again = _files(tmp_path)
    assert again.pop("notes.txt") == b"kept"
    assert again == reference  # byte-identical CSVs and DICOMs

    other = tmp_path / "other"
    truth = demo.write_demo(fmt, other, N, positive_fraction=0.25, seed=SEED + 1)
    assert sum(t["label"] for t in truth) == 2
    csv = "train-rle.csv" if fmt == "siim" else "stage_2_train_labels.csv"
    assert (other / csv).read_bytes() != reference[csv]
    first_dicom = next(name for name in reference if name.endswith(".dcm"))
    assert all(content != reference[first_dicom] for name, content in _files(other).items())


# ----------------------------------------------------------------------------- table
@pytest.fixture(scope="module")
def table_demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("table")
    return root, demo.write_table_demo(root, N, 0.5, SEED)


def test_table_demo_is_the_siim_demo_as_pngs(table_demo, siim):
    """The same plan as the SIIM demo: the same images (lossless here), patients, labels and masks."""
    root, truth = table_demo
    _, siim_truth = siim
    lines = (root / "table.csv").read_text().splitlines()
    assert lines[0] == "image,label,mask,patient_id"
    assert len(list((root / "images").glob("*.png"))) == N
    for t, s in zip(truth, siim_truth, strict=True):
        assert t["image_id"] == f"images/{s['image_id']}"
        assert (t["patient_id"], t["label"]) == (s["patient_id"], s["label"]) and (t["mask"] == s["mask"]).all()
        rows = [line.split(",") for line in lines[1:] if line.startswith(t["image_id"] + ".png,")]
        masks = [np.asarray(Image.open(root / row[2])) > 0 for row in rows if row[2]]
        assert len(masks) == len(rows) - (1 - t["label"])  # one mask per row of a positive
        assert (np.logical_or.reduce(masks or [np.zeros_like(t["mask"], bool)]) == t["mask"].astype(bool)).all()
    plan = demo._plan_siim(N, 0.5, SEED)
    pixels = np.asarray(Image.open(root / f"{truth[0]['image_id']}.png"))
    assert (pixels == demo_anatomy.render(plan[0])[0]).all()


def test_table_demo_converts_to_its_truth_and_is_deterministic(table_demo, tmp_path):
    root, truth = table_demo
    defaults = config.defaults()
    converted = convert.convert_dataset("table", root, 64, defaults["high_bit_depth"],
                                        tuple(defaults["window_percentiles"]), table_name="table.csv")
    assert converted.problems == [] and converted.warnings == []
    expected = {t["image_id"]: t for t in truth}
    for i, row in converted.manifest.iterrows():
        assert row.label == expected[row.image_id]["label"]
        assert (converted.masks[i] == convert.resize_mask(expected[row.image_id]["mask"], 64)).all()
    demo.write_demo("table", tmp_path, N, 0.5, SEED)
    assert _files(tmp_path) == _files(root)


@pytest.mark.parametrize(
    "n_images, fraction", [(3, 0.5), (0, 0.5), (2.5, 0.5), (8, 0.0), (8, 1.0), (8, -0.1), (8, 1.5)]
)
@pytest.mark.parametrize("fmt", demo.FORMATS)
def test_invalid_arguments(fmt, n_images, fraction, tmp_path):
    with pytest.raises(ValueError):
        demo.write_demo(fmt, tmp_path / "out", n_images, fraction, SEED)
    assert not (tmp_path / "out").exists()


def test_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="unknown demo format 'chexpert'"):
        demo.write_demo("chexpert", tmp_path, N, 0.5, SEED)


def test_cli(tmp_path, capsys):
    args = make_demo_data.get_args_parser().parse_args(
        ["--format", "rsna", "--out", str(tmp_path),
         "--demo", json.dumps({"n_images": 4, "positive_fraction": 0.25, "seed": 3})]
    )
    make_demo_data.main(args)
    lines = capsys.readouterr().out.splitlines()
    summary = rf"wrote 4 rsna images \(1 positive\) to {re.escape(str(tmp_path))} in \d+\.\d s"
    assert len(lines) == 1 and re.fullmatch(summary, lines[0])
    assert len(list((tmp_path / "stage_2_train_images").glob("*.dcm"))) == 4
