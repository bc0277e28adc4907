"""Localizers: box painting, U-Net and RetinaNet, training (learning, determinism, resume), CLI."""

import json
import runpy
import sys

import numpy as np
import pandas as pd
import pytest
import torch

import train_localizer  # scripts/ is on sys.path (pytest config)
from salaudit import config, models
from salaudit.datasets.splits import fold_indices
from salaudit.evaluation import metrics
from salaudit.models import training
from salaudit.models.localizers import io as box_io
from salaudit.models.localizers import networks
from salaudit.models.localizers.networks import paint_boxes
from salaudit.models.localizers.training import predict_maps, train_localizer as train


def localizer_settings(localizer="unet", fold=0, seed=0, **changes):
    """`LocalizerSettings` of a config: the schema's defaults, with ``changes`` in
    ``localizers.<localizer>`` (epochs, patience, batch_size, lr, the network's options) or, for
    weight_decay and augment, in ``localizers``."""
    common = {key: changes.pop(key) for key in ("weight_decay", "augment") if key in changes}
    resolved = config.resolve({"seed": seed, "localizers": {**common, localizer: changes}})
    return networks.LocalizerSettings.from_config(resolved, localizer, fold)


@pytest.fixture(autouse=True)
def one_thread():
    """One thread: faster than two on a shared 2-core machine, and the same on every run."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def toy_dataset(n=40, size=32, seed=0):
    """Noisy grey images; every other one has a bright square: the mask and its box.

    Returns images, masks, boxes (list of [K, 4]), manifest, splits (8 test images, 4 folds of 8).
    """
    rng = np.random.default_rng(seed)
    images = rng.normal(70, 12, (n, size, size)).clip(0, 255).astype(np.uint8)
    masks = np.zeros((n, size, size), dtype=np.uint8)
    boxes = []
    for i in range(n):
        if i % 2:
            side = int(rng.integers(size // 5, size // 3))
            x0, y0 = (int(v) for v in rng.integers(1, size - side - 1, 2))
            images[i, y0:y0 + side, x0:x0 + side] = rng.normal(200, 10, (side, side)).clip(0, 255)
            masks[i, y0:y0 + side, x0:x0 + side] = 1
            boxes.append(np.array([[x0, y0, x0 + side, y0 + side]], dtype=np.float32))
        else:
            boxes.append(np.zeros((0, 4), dtype=np.float32))
    ids = [f"img{i:03d}" for i in range(n)]
    fold = np.where(np.arange(n) < 8, -1, (np.arange(n) // 2) % 4)
    splits = pd.DataFrame({"image_id": ids, "split": np.where(fold < 0, "test", "train"), "fold": fold})
    manifest = pd.DataFrame({"image_id": ids, "label": np.arange(n) % 2, "patient_id": ids})
    return images, masks, boxes, manifest, splits


# ------------------------------------------------------------------------------- paint_boxes

def test_paint_boxes_values_and_zero_elsewhere():
    out = paint_boxes([[1, 2, 4, 5]], [0.7], 8)
    assert out.dtype == np.float32 and out.shape == (8, 8)
    expected = np.zeros((8, 8), dtype=np.float32)
    expected[2:5, 1:4] = 0.7  # rows y0..y1-1, columns x0..x1-1
    np.testing.assert_array_equal(out, expected)


def test_paint_boxes_maximum_where_overlapping():
    out = paint_boxes(np.array([[0, 0, 4, 4], [2, 2, 6, 6], [3, 3, 5, 5]]), np.array([0.3, 0.8, 0.5]), 8)
    assert out[0, 0] == np.float32(0.3) and out[1, 3] == np.float32(0.3)
    assert (out[2:6, 2:6] == np.float32(0.8)).all()  # the 0.5 box lies inside the 0.8 one
    assert out[6:, :].sum() == 0 and out[:, 6:].sum() == 0 and out[4:, :2].sum() == 0


def test_paint_boxes_pixel_centre_convention():
    # A pixel (r, c) is covered when x0 <= c + 0.5 < x1 and y0 <= r + 0.5 < y1.
    out = paint_boxes([[0.4, 0.6, 2.5, 2.6]], [1.0], 6)
    assert np.argwhere(out > 0).tolist() == [[1, 0], [1, 1], [2, 0], [2, 1]]
    out = paint_boxes([[0.5, 0.5, 2.51, 1.49]], [1.0], 6)  # centre exactly on x0: in; x1 just past 2.5: in
    assert np.argwhere(out > 0).tolist() == [[0, 0], [0, 1], [0, 2]]
    # Too thin to cover any pixel centre, degenerate, or no boxes at all: nothing.
    assert paint_boxes([[1.1, 1.0, 1.4, 3.0], [3, 3, 3, 5]], [1.0, 1.0], 6).sum() == 0
    assert paint_boxes(np.zeros((0, 4)), np.zeros(0), 6).sum() == 0


def test_paint_boxes_integer_boxes_match_boxes_csv_masks_and_clip():
    size = 16
    rng = np.random.default_rng(3)
    for _ in range(20):
        x0, y0 = rng.integers(0, size - 1, 2)
        x1, y1 = x0 + rng.integers(1, size - x0 + 1), y0 + rng.integers(1, size - y0 + 1)
        mask = np.zeros((size, size), dtype=np.float32)
        mask[y0:y1, x0:x1] = 1  # boxes.csv: half-open x0 <= col < x1
        np.testing.assert_array_equal(paint_boxes([[x0, y0, x1, y1]], [1.0], size), mask)
    out = paint_boxes([[-3, -3, 2, 100]], [0.5], size)
    assert (out[:, :2] == 0.5).all() and out[:, 2:].sum() == 0
    with pytest.raises(ValueError, match="scores"):
        paint_boxes([[0, 0, 1, 1]], [0.1, 0.2], size)


# ------------------------------------------------------------------------------------ models

@pytest.mark.parametrize("size,depth", [(16, 2), (32, 3), (48, 4), (64, 4)])
def test_unet_forward_shape(size, depth):
    model = networks.UNet(3, base_channels=4, depth=depth).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, size, size)).shape == (2, 1, size, size)


def test_unet_incompatible_size_is_a_clear_error():
    with pytest.raises(models.ModelError, match=r"divisible by 2\*\*4 = 16, got 40 \(use depth <= 3\)"):
        networks.UNet(3, 4, 4)(torch.zeros(1, 3, 40, 40))
    with pytest.raises(models.ModelError, match="divisible by"):
        networks.check_settings(localizer_settings(depth=4), 40)
    with pytest.raises(models.ModelError, match="unknown localizer 'unetz'"):
        networks.LocalizerSettings.from_config(config.defaults(), "unetz", 0)
    vgg = localizer_settings("retinanet")
    vgg.options["backbone"] = "vgg"  # the schema refuses it in a config; the library refuses it too
    with pytest.raises(models.ModelError, match="unknown retinanet backbone"):
        networks.check_settings(vgg, 64)


def test_registry_and_default_learning_rates():
    assert networks.localizer_for("siim") == "unet"
    assert networks.localizer_for("rsna") == "retinanet"
    with pytest.raises(models.ModelError):
        networks.localizer_for("chexpert")
    assert localizer_settings("unet").lr == 1e-3 and localizer_settings("retinanet").lr == 1e-4
    assert localizer_settings("unet", lr=0.5).lr == 0.5
    # a localizer's own epochs and patience override the common ones
    resolved = config.resolve({"localizers": {"epochs": 7, "patience": 2, "retinanet": {"epochs": 12}}})
    unet, retinanet = (networks.LocalizerSettings.from_config(resolved, name, 0) for name in ("unet", "retinanet"))
    assert (unet.epochs, unet.patience, retinanet.epochs, retinanet.patience) == (7, 2, 12, 2)
    assert unet.options == {"base_channels": 16, "depth": 4} and unet.batch_size == 8 and retinanet.batch_size == 2


def test_retinanet_builds_passes_input_through_and_detects():
    torch.manual_seed(0)
    model = networks.build_retinanet("resnet18", 64, score_threshold=0.0, fpn_channels=32).eval()
    x = models.preprocess(np.random.default_rng(0).integers(0, 256, (2, 64, 64), dtype=np.uint8))
    batched, _ = model.transform(list(x))
    assert torch.equal(batched.tensors, x)  # no resize, no re-normalisation
    assert model.head.classification_head.num_classes == 1
    with torch.no_grad():
        detections = model(list(x))
    assert len(detections) == 2
    for d in detections:
        assert d["boxes"].shape[1] == 4 and d["scores"].shape == d["labels"].shape
        assert len(d["scores"]) > 0 and (d["labels"] == 0).all()
    # The schema's default width (torchvision's 256) builds too.
    assert networks.build_localizer(localizer_settings("retinanet"), 64).backbone.out_channels == 256


def test_anchor_sizes_scale_with_image_size():
    assert [s[0] for s in networks.anchor_sizes(128)] == [8, 16, 32, 64, 128]
    assert [s[0] for s in networks.anchor_sizes(320)] == [20, 40, 80, 160, 320]
    assert networks.anchor_sizes(16)[0][0] == 2


def test_augmented_boxes_follow_the_augmented_masks():
    images, masks, boxes, _, _ = toy_dataset(n=12, size=32, seed=1)
    x = models.preprocess(images)
    y = torch.from_numpy(masks.astype(np.float32)).unsqueeze(1)
    per_box = box_io.box_masks(boxes, 32)
    _, shifted = training.augment(x, torch.Generator().manual_seed(5), max_shift=0.2, masks=torch.cat([y, per_box], 1))
    recovered = box_io.boxes_from_masks(shifted[:, 1:], [len(b) for b in boxes])
    for i, image_boxes in enumerate(recovered):
        painted = paint_boxes(image_boxes.numpy(), np.ones(len(image_boxes)), 32)
        np.testing.assert_array_equal(painted, shifted[i, 0].numpy())


# ---------------------------------------------------------------------------------- training

def _settings(**changes):
    return localizer_settings("unet", **{**dict(epochs=2, batch_size=8, lr=3e-3, patience=10, base_channels=4,
                                                  depth=2), **changes})


def test_unet_learns_the_toy_squares(tmp_path):
    images, masks, boxes, _, splits = toy_dataset()
    settings = _settings(epochs=12, base_channels=8, lr=1e-2)
    model, summary = train(images, masks, boxes, splits, settings, tmp_path / "state.pt",
                                                torch.device("cpu"), log=lambda line: None)
    _, val_idx, _ = fold_indices(splits, 0)
    val_pos = val_idx[masks[val_idx].reshape(len(val_idx), -1).any(1)]
    # An all-ones map has Dice 2|m| / (S^2 + |m|); the average-mask baseline is no better here.
    ones_dice = np.mean([2 * masks[i].sum() / (masks[i].size + masks[i].sum()) for i in val_pos])
    assert summary["score_name"] == "val_dice" and summary["val_score"] > max(0.5, 3 * ones_dice)
    maps = predict_maps(model, "unet", images, val_pos, 8, "cpu")
    assert maps.dtype == np.float16 and maps.shape == (len(val_pos), 32, 32)
    assert np.mean([metrics.auprc(m, masks[i]) for i, m in zip(val_pos, maps)]) > 0.8


def _train(tmp_path, name, settings, log=lambda line: None):
    images, masks, boxes, _, splits = toy_dataset(n=24, size=16)
    model, metrics = train(images, masks, boxes, splits, settings, tmp_path / name,
                                                torch.device("cpu"), log=log, checkpoint_seconds=0)
    return model.state_dict(), metrics


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_unet_training_is_deterministic(tmp_path):
    first, m1 = _train(tmp_path, "a.pt", _settings())
    second, m2 = _train(tmp_path, "b.pt", _settings())
    _assert_same_weights(first, second)
    assert [h["loss"] for h in m1["history"]] == [h["loss"] for h in m2["history"]]
    third, _ = _train(tmp_path, "c.pt", _settings(seed=1))
    assert not all(torch.equal(first[k], third[k]) for k in first)


def test_interrupted_training_resumes_to_the_same_weights(tmp_path):
    """A run killed during epoch 2 (after epoch 1's state was saved) and rerun with the same
    settings ends with the weights of an uninterrupted run."""
    settings = _settings(epochs=3)
    uninterrupted, full = _train(tmp_path, "full.pt", settings)

    class Killed(Exception):
        pass

    def dies_in_epoch_2(line):  # fit logs an epoch before saving its state: epoch 2 is lost
        if line.startswith("epoch 2/"):
            raise Killed

    with pytest.raises(Killed):
        _train(tmp_path, "state.pt", settings, log=dies_in_epoch_2)
    assert torch.load(tmp_path / "state.pt", weights_only=False)["epoch"] == 0
    lines = []
    resumed, again = _train(tmp_path, "state.pt", settings, log=lines.append)
    assert any(line.startswith("resuming after epoch 1 of 3") for line in lines)
    _assert_same_weights(uninterrupted, resumed)
    numbers = lambda metrics: [(h["epoch"], h["loss"], h["val_dice"]) for h in metrics["history"]]  # noqa: E731
    assert numbers(again) == numbers(full) and again["best_epoch"] == full["best_epoch"]


def test_retinanet_trains_on_toy_boxes_deterministically_and_paints_maps(tmp_path):
    images, masks, boxes, _, splits = toy_dataset(n=24, size=32)
    settings = localizer_settings("retinanet", epochs=1, batch_size=6, patience=5, fpn_channels=16,
                                  score_threshold=0.01)
    runs = [train(images, masks, boxes, splits, settings, tmp_path / f"{name}.pt",
                                       torch.device("cpu"), log=lambda line: None) for name in "ab"]
    (model, metrics), (again, _) = runs
    assert metrics["score_name"] == "val_auprc" and metrics["epochs_run"] == 1
    assert 0 <= metrics["val_score"] <= 1 and np.isfinite(metrics["history"][0]["loss"])
    _assert_same_weights(model.state_dict(), again.state_dict())  # deterministic like the U-Net
    maps = predict_maps(model, "retinanet", images, np.arange(5), 4, "cpu")
    assert maps.dtype == np.float16 and maps.shape == (5, 32, 32)
    assert maps.min() >= 0 and maps.max() <= 1


# ----------------------------------------------------------------------------------------- CLI

def write_results(folder, size=32):
    images, masks, boxes, manifest, splits = toy_dataset(size=size)
    data = folder / "data"
    data.mkdir(parents=True)
    np.save(data / "images.npy", images)
    np.save(data / "masks.npy", masks)
    manifest.to_csv(data / "manifest.csv", index=False)
    rows = [(manifest["image_id"][i], *box) for i, image_boxes in enumerate(boxes) for box in image_boxes.astype(int)]
    pd.DataFrame(rows, columns=["image_id", "x0", "y0", "x1", "y1"]).to_csv(data / "boxes.csv", index=False)
    splits.to_csv(folder / "splits.csv", index=False)
    test_pos = [i for i in range(len(splits)) if splits["split"][i] == "test" and manifest["label"][i] == 1]
    eval_images = pd.DataFrame({"index": test_pos, "image_id": manifest["image_id"][test_pos]})
    eval_images.to_csv(folder / "eval.csv", index=False)
    return test_pos


def cli_args(folder, localizer, fold=1, **options):
    """The rule's command line: one epoch, batches of 8, ``options`` in ``localizers.<localizer>``."""
    own = {"batch_size": 8, **options} if localizer in networks.LOCALIZERS else {}
    settings = {"localizers": {"epochs": 1, **({localizer: own} if own else {})}}
    return train_localizer.get_args_parser().parse_args([
        "--data", str(folder / "data"), "--splits", str(folder / "splits.csv"),
        "--eval-images", str(folder / "eval.csv"), "--fold", str(fold), "--out", str(folder / "out"),
        "--localizer", localizer, "--threads", "1", "--settings", json.dumps(settings),
    ])


@pytest.mark.parametrize("localizer,options", [("unet", {"base_channels": 4, "depth": 2}),
                                               ("retinanet", {"fpn_channels": 16})])
def test_cli_writes_model_maps_and_metrics(tmp_path, capsys, localizer, options):
    extra = ["--localizer", localizer]
    test_pos = write_results(tmp_path)
    assert train_localizer.main(cli_args(tmp_path, localizer, **options)) == 0
    out = tmp_path / "out"
    maps = np.load(out / "maps.npy")
    assert maps.dtype == np.float16 and maps.shape == (len(test_pos), 32, 32)
    assert maps.min() >= 0 and maps.max() <= 1
    assert not (out / "train_state.pt").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["localizer"] == extra[1] and metrics["fold"] == 1 and metrics["epochs_run"] == 1
    assert metrics["best_epoch"] == 1 and metrics["n_eval"] == len(test_pos) and metrics["device"] == "cpu"
    assert {"val_score", "score_name", "seconds", "history", "versions"} <= metrics.keys()
    model, meta = models.load_checkpoint(out / "model.pt")
    assert meta["kind"] == "localizer" and meta["name"] == extra[1]
    assert meta["image_size"] == 32 and meta["settings"]["fold"] == 1 and meta["settings"]["batch_size"] == 8
    assert meta["versions"]["torch"] == torch.__version__
    again = predict_maps(model, extra[1], np.load(tmp_path / "data" / "images.npy"), test_pos, 8, "cpu")
    np.testing.assert_array_equal(again, maps)
    assert "epoch 1/1" in capsys.readouterr().out


def test_cli_rerun_of_a_finished_job_restores_its_outputs(tmp_path, capsys):
    """A forced rerun (Snakemake deletes the outputs first) costs no training: the job cache
    links the same bytes back; a changed setting trains again."""
    write_results(tmp_path)
    options = {"base_channels": 4, "depth": 2}
    assert train_localizer.main(cli_args(tmp_path, "unet", **options)) == 0
    out = tmp_path / "out"
    before = {name: (out / name).read_bytes() for name in ("model.pt", "maps.npy", "metrics.json")}
    for name in before:
        (out / name).unlink()
    capsys.readouterr()
    assert train_localizer.main(cli_args(tmp_path, "unet", **options)) == 0
    log = capsys.readouterr().out
    assert "restored 3 output file(s)" in log and "epoch 1/1" not in log
    assert {name: (out / name).read_bytes() for name in before} == before
    assert train_localizer.main(cli_args(tmp_path, "unet", base_channels=8, depth=2)) == 0
    assert "epoch 1/1" in capsys.readouterr().out


@pytest.mark.parametrize("localizer,fold,options,message", [
    ("unetz", 1, {}, "unknown localizer 'unetz'"),
    ("unet", 1, {"depth": 6}, "divisible by 2**6 = 64, got 32"),
    ("unet", 7, {}, "fold 7 is not in splits"),
])
def test_cli_bad_input_is_one_error_line(tmp_path, capsys, localizer, fold, options, message):
    write_results(tmp_path)
    assert train_localizer.main(cli_args(tmp_path, localizer, fold, **options)) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ERROR: ") and message in err and "\n" not in err


def test_cli_settings_the_schema_refuses_are_a_usage_error_naming_the_key(tmp_path, capsys):
    write_results(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        cli_args(tmp_path, "retinanet", backbone="vgg16")
    assert stopped.value.code == 2
    assert "localizers.retinanet.backbone: 'vgg16' is not one of" in capsys.readouterr().err


def test_cli_rejects_eval_images_that_do_not_match_the_manifest(tmp_path, capsys):
    write_results(tmp_path)
    pd.DataFrame({"index": [1, 3], "image_id": ["img001", "img999"]}).to_csv(tmp_path / "eval.csv", index=False)
    assert train_localizer.main(cli_args(tmp_path, "unet")) == 1
    assert "line 3 has image_id img999 but manifest row 3 is img003" in capsys.readouterr().err


def test_cli_exit_code_as_a_script(tmp_path, monkeypatch, capsys, repo):
    write_results(tmp_path)
    args = ["--data", str(tmp_path / "data"), "--splits", str(tmp_path / "splits.csv"), "--eval-images",
            str(tmp_path / "eval.csv"), "--fold", "0", "--out", str(tmp_path / "out"), "--localizer", "yolo"]
    monkeypatch.setattr(sys, "argv", ["train_localizer.py", *args])
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(repo / "scripts" / "train_localizer.py"), run_name="__main__")
    assert stopped.value.code == 1
    assert capsys.readouterr().err.strip().splitlines() == ["ERROR: unknown localizer 'yolo'; known: unet, retinanet"]
