"""salaudit.saliency.maps and the two CLIs that write maps (xrai_segments.py, saliency_maps.py)."""

import csv
import json
import re

import numpy as np
import pytest
import torch

import saliency_maps
import xrai_segments
from salaudit import config, layout, models, registry, seeds
from salaudit.saliency import maps, methods, randomize, xrai


def saliency_block(**given):
    """The config's validated ``saliency`` block: ``given`` (methods, batch_size, max_batch, a
    method's section), every other key at the schema's default."""
    return config.resolve({"saliency": given})["saliency"]


def parse_cli(argv):
    return saliency_maps.get_args_parser().parse_args(argv)


SALIENCY_PATHS = ["--dataset", "d", "--model", "m", "--images", "x", "--manifest", "y", "--eval-images", "e",
                  "--out", "o"]


def test_a_grad_cam_layer_per_architecture_passes_through_the_command_line():
    """common.smk (`settings`) writes the config's keys, a mapping included, as one shell-quoted
    `--settings JSON` argument."""
    import shlex

    flag = shlex.quote(json.dumps({"saliency": {"methods": ["gcam"], "gcam": {"layer": {"inception_v3": "Mixed_6e"}}}},
                                  sort_keys=True))
    args = parse_cli(shlex.split(" ".join(SALIENCY_PATHS) + f" --settings {flag}"))
    assert args.settings["saliency"]["gcam"] == {"layer": {"inception_v3": "Mixed_6e"}}
    assert args.settings["saliency"]["methods"] == ["gcam"]


def test_settings_read_json_values_and_reject_unknowns(capsys):
    """``--settings`` (was ``--set method.name=value``, `parse_settings`): JSON values, every other
    key at the schema's default; an unknown method or setting is a usage error naming it."""
    given = {"sg": {"samples": 5, "noise": 0.2}, "gcam": {"layer": None}, "xrai": {"algorithm": "fast"}}
    parsed = parse_cli(SALIENCY_PATHS + ["--settings", json.dumps({"saliency": given})]).settings["saliency"]
    assert {m: {k: parsed[m][k] for k in s} for m, s in given.items()} == given
    assert parsed == saliency_block(**given)  # the rest: the schema's defaults
    for settings, message in [({"saliency": {"sgg": {"samples": 5}}}, r"saliency\.sgg: unknown key; allowed here: "),
                              ({"saliency": {"sg": {"sampels": 5}}},
                               r"saliency\.sg\.sampels: unknown key; allowed here: noise, nt_type, samples")]:
        with pytest.raises(SystemExit) as exit_:
            parse_cli(SALIENCY_PATHS + ["--settings", json.dumps(settings)])
        assert exit_.value.code == 2
        assert re.search(message, capsys.readouterr().err)
    with pytest.raises(SystemExit) as exit_:
        parse_cli(SALIENCY_PATHS + ["--settings", "sg.samples=5"])
    assert exit_.value.code == 2
    assert "argument --settings: not JSON" in capsys.readouterr().err


def test_method_settings_add_seed_batch_cap_cache_and_gcam_layer():
    cache = {}
    default = config.defaults()["saliency"]
    saliency = saliency_block(gcam={"layer": "block2"}, sg={"samples": 3}, max_batch=32)
    assert maps.method_settings("sg", saliency, seed=7, cache=cache) == {**default["sg"], "samples": 3, "seed": 7}
    assert maps.method_settings("ig", saliency, seed=7, cache=cache) == {**default["ig"], "max_batch": 32}
    assert maps.method_settings("ggcam", saliency, 7, cache) == {"layer": "block2"}
    assert maps.method_settings("xrai", saliency_block(), 7, cache)["segment_cache"] is cache
    assert maps.method_settings("grad", saliency, 7, cache) == {}


def test_save_and_load_maps_round_trip(tmp_path):
    m = np.linspace(0, 1, 2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    maps.save_maps(tmp_path, "grad", "cascade/01_fc", m, np.array([False, True]))
    assert (tmp_path / "grad" / "cascade" / "01_fc.npy").is_file()
    loaded, flags = maps.load_maps(tmp_path, "grad", "cascade/01_fc")
    assert loaded.dtype == np.float16 and flags.dtype == bool
    np.testing.assert_array_equal(loaded, m.astype(np.float16))
    np.testing.assert_array_equal(flags, [False, True])
    with pytest.raises(ValueError, match="maps"):
        maps.save_maps(tmp_path, "grad", "trained", m, np.array([False]))


def test_segments_round_trip_exactly_and_key_the_cache(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 24, 24), dtype=np.uint8)
    segments = [[rng.random((24, 24)) > 0.5 for _ in range(n)] for n in (1, 4, 2)]
    maps.save_segments(tmp_path / "s.npz", [5, 9, 2], segments)
    index, loaded = maps.load_segments(tmp_path / "s.npz")
    np.testing.assert_array_equal(index, [5, 9, 2])
    assert [len(s) for s in loaded] == [1, 4, 2]
    for got, want in zip(loaded, segments):
        for a, b in zip(got, want):
            assert a.dtype == bool
            np.testing.assert_array_equal(a, b)
    cache = maps.segment_cache(images, loaded)
    x = models.preprocess(images)
    assert list(cache) == [xrai.image_key(xi) for xi in x]
    cached = cache[xrai.image_key(x[1])]
    assert len(cached) == 4 and all(a is b for a, b in zip(cached, loaded[1]))


def test_compute_segments_equals_xrai_segments_of_the_preprocessed_image():
    images = np.random.default_rng(1).integers(0, 256, (2, 32, 32), dtype=np.uint8)
    got = maps.compute_segments(images, workers=1)
    want = [xrai.xrai_segments(xi) for xi in models.preprocess(images)]
    assert [len(s) for s in got] == [len(s) for s in want]
    for a, b in zip(got[1], want[1]):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return models.build_model("tiny_cnn").eval()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(2).integers(0, 256, (5, 32, 32), dtype=np.uint8)


KEY = ("siim", "tiny_cnn", 0, "trained")


def test_compute_all_matches_compute_maps_whatever_the_batching(tiny, images):
    settings = {"sg": {"samples": 3}, "ig": {"steps": 3}}
    ids = ["grad", "sg", "ig", "gcam", "gbp", "ggcam"]
    a = maps.compute_all(tiny, "tiny_cnn", images, saliency_block(methods=ids, batch_size=5, **settings), seed=3,
                         device="cpu", model_key=KEY)
    assert list(a) == ids
    for method, (m, f) in a.items():
        assert m.dtype == np.float16 and m.shape == (5, 32, 32) and f.shape == (5,)
        assert 0 <= m.min() and m.max() <= 1
        s = maps.method_settings(method, saliency_block(max_batch=64, **settings), 3, {})
        if "seed" in s:  # the one batch starts at row 0
            s["seed"] = maps.batch_seed(3, method, KEY, 0)
            assert s["seed"] == seeds.derive(3, "saliency", method, "siim", "tiny_cnn", 0, "trained", 0)
        ref, _ = methods.compute_maps(method, tiny, models.preprocess(images), s, arch="tiny_cnn")
        np.testing.assert_array_equal(m, ref.astype(np.float16))  # GGCAM from the batch's GBP and GCAM: the same
    # deterministic methods give the same maps in batches of 2 (SmoothGrad noise is drawn per batch)
    b = maps.compute_all(tiny, "tiny_cnn", images, saliency_block(methods=["grad", "ig", "gcam"], batch_size=2,
                                                                  **settings), seed=3, device="cpu", model_key=KEY)
    for method in b:
        np.testing.assert_allclose(b[method][0].astype(np.float32), a[method][0].astype(np.float32), atol=1e-3)


def test_every_model_gets_its_own_random_draws_and_a_rerun_the_same(tiny, images):
    """SmoothGrad noise and the random control are drawn per (method, dataset, arch, fold, step,
    batch): the paper draws fresh noise for every map. Another fold, step or dataset of the same
    network gets other draws; the same model, the same ones."""
    def run(key, batch_size=5):
        saliency = saliency_block(methods=["random", "sg", "sig"], sg={"samples": 2}, sig={"samples": 2, "steps": 2},
                                  batch_size=batch_size)
        return maps.compute_all(tiny, "tiny_cnn", images, saliency, seed=1, device="cpu", model_key=key)

    a, again = run(("siim", "tiny_cnn", 0, "trained")), run(("siim", "tiny_cnn", 0, "trained"))
    others = [run(("siim", "tiny_cnn", 1, "trained")), run(("siim", "tiny_cnn", 0, "cascade/01_fc")),
              run(("rsna", "tiny_cnn", 0, "trained"))]
    for method in ("random", "sg", "sig"):
        np.testing.assert_array_equal(a[method][0], again[method][0])
        for other in others:
            assert not np.array_equal(a[method][0], other[method][0]), method
    halves = run(("siim", "tiny_cnn", 0, "trained"), batch_size=2)["random"][0]
    assert not np.array_equal(halves[0], halves[2])  # batches do not repeat each other's noise


def test_compute_all_reuses_given_segments(tiny, images, monkeypatch):
    segments = maps.compute_segments(images[:2], workers=1)
    cache = maps.segment_cache(images[:2], segments)

    def refuse(image):
        raise AssertionError("segments recomputed although cached")

    monkeypatch.setattr(xrai, "xrai_segments", refuse)
    out = maps.compute_all(tiny, "tiny_cnn", images[:2], saliency_block(methods=["xrai"], xrai={"steps": 2}),
                           seed=0, device="cpu", segments=cache)
    m, f = out["xrai"]
    assert m.shape == (2, 32, 32) and 0 <= m.min() and m.max() <= 1 and not f.any()


@pytest.fixture()
def dataset(tmp_path, tiny, images):
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "images.npy", images)
    with open(data / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image_id", "label", "patient_id"])
        for i in range(len(images)):
            w.writerow([f"img{i}", 1, f"p{i}"])
    (tmp_path / "eval.csv").write_text("index,image_id\n3,img3\n0,img0\n4,img4\n")
    models.save_checkpoint(tmp_path / "model.pt", tiny, "classifier", "tiny_cnn", settings={"fold": 2}, image_size=32)
    return tmp_path


def _cli(module, argv):
    return module.main(module.get_args_parser().parse_args(argv))


def _data_args(d):
    """The rule's data inputs: the dataset's images and manifest, the evaluation images."""
    return ["--images", str(d / "data" / "images.npy"), "--manifest", str(d / "data" / "manifest.csv"),
            "--eval-images", str(d / "eval.csv")]


def _settings(methods, seed=None, **saliency):
    """``--settings``: the config's seed, device and saliency block (CPU: the references are)."""
    given = {"device": "cpu", "saliency": {"methods": methods, **saliency}}
    if seed is not None:
        given["seed"] = seed
    return ["--settings", json.dumps(given)]


def test_saliency_cli_writes_trained_and_every_cascade_step(dataset, tiny, images, monkeypatch):
    d = dataset
    assert _cli(xrai_segments, ["--data", str(d / "data"), "--eval-images", str(d / "eval.csv"),
                                "--out", str(d / "seg.npz"), "--workers", "1"]) == 0
    common = ["--dataset", "siim", "--model", str(d / "model.pt"), *_data_args(d),
              "--segments", str(d / "seg.npz"), "--out", str(d / "maps"), "--threads", "1",
              *_settings(["grad", "xrai", "random"], seed=4, xrai={"steps": 2})]
    assert _cli(saliency_maps, common) == 0
    m, f = maps.load_maps(d / "maps", "grad", "trained")
    assert m.shape == (3, 32, 32) and m.dtype == np.float16 and not f.any()
    ref, _ = methods.compute_maps("grad", tiny, models.preprocess(images[[3, 0, 4]]))
    np.testing.assert_array_equal(m, ref.astype(np.float16))  # rows follow eval.csv

    assert _cli(saliency_maps, common + ["--randomize", "cascade"]) == 0
    labels = [s.label for s in randomize.steps("tiny_cnn")]
    for method in ("grad", "xrai", "random"):
        for label in labels:
            m, f = maps.load_maps(d / "maps", method, f"cascade/{label}")
            assert m.shape == (3, 32, 32)
    # the last step is the fully randomized model, from the seed
    *_, (step, net) = randomize.randomized_models(tiny, "tiny_cnn", 4, "cascade", replicate=("siim", 2))
    last, _ = maps.load_maps(d / "maps", "grad", f"cascade/{step.label}")
    ref, _ = methods.compute_maps("grad", net, models.preprocess(images[[3, 0, 4]]))
    np.testing.assert_array_equal(last, ref.astype(np.float16))
    # same seed, same maps (CPU): bit-identical rerun, computed again (not restored from the job cache)
    first = maps.load_maps(d / "maps", "xrai", f"cascade/{labels[0]}")[0].copy()
    monkeypatch.setenv("SALAUDIT_RECOMPUTE", "1")
    assert _cli(saliency_maps, common + ["--randomize", "cascade"]) == 0
    np.testing.assert_array_equal(maps.load_maps(d / "maps", "xrai", f"cascade/{labels[0]}")[0], first)


def test_saliency_cli_several_models_in_one_run(dataset, tiny, images):
    d = dataset
    torch.manual_seed(9)
    other = models.build_model("tiny_cnn").eval()
    models.save_checkpoint(d / "other.pt", other, "classifier", "tiny_cnn", settings={}, image_size=32)
    argv = ["--dataset", "siim", "--model", str(d / "model.pt"), str(d / "other.pt"), *_data_args(d),
            "--out", str(d / "a"), str(d / "b"), *_settings(["grad", "random"]), "--threads", "1"]
    assert _cli(saliency_maps, argv) == 0
    for folder, net in ((d / "a", tiny), (d / "b", other)):
        m, _ = maps.load_maps(folder, "grad", "trained")
        ref, _ = methods.compute_maps("grad", net, models.preprocess(images[[3, 0, 4]]))
        np.testing.assert_array_equal(m, ref.astype(np.float16))
    # the random control differs between the two models of the run
    assert not np.array_equal(maps.load_maps(d / "a", "random", "trained")[0], maps.load_maps(d / "b", "random", "trained")[0])


def test_saliency_cli_rerun_restores_the_maps_until_a_model_changes(dataset, capsys):
    d = dataset
    argv = ["--dataset", "siim", "--model", str(d / "model.pt"), *_data_args(d), "--out", str(d / "a"),
            *_settings(["grad", "random"]), "--threads", "1"]
    assert _cli(saliency_maps, argv) == 0
    written = sorted(p for p in (d / "a").rglob("*.npy") if ".salaudit-cache" not in p.parts)
    before = [p.read_bytes() for p in written]
    grad = maps.load_maps(d / "a", "grad", "trained")[0]
    assert len(written) == 4  # two methods, maps and flags
    for path in written:
        path.unlink()
    capsys.readouterr()
    assert _cli(saliency_maps, argv) == 0
    assert "restored 4 output file(s)" in capsys.readouterr().out
    assert [p.read_bytes() for p in written] == before
    torch.manual_seed(3)
    models.save_checkpoint(d / "model.pt", models.build_model("tiny_cnn").eval(), "classifier", "tiny_cnn",
                           settings={"fold": 2}, image_size=32)
    assert _cli(saliency_maps, argv) == 0
    assert "restored" not in capsys.readouterr().out
    assert not np.array_equal(maps.load_maps(d / "a", "grad", "trained")[0], grad)


def test_saliency_cli_clear_errors(dataset, capsys):
    d = dataset
    base = ["--dataset", "siim", "--model", str(d / "model.pt"), *_data_args(d), "--out", str(d / "maps"),
            "--threads", "1"]
    assert _cli(saliency_maps, base + _settings(["grad"]) + ["--out", str(d / "x"), str(d / "y")]) == 1
    assert "1 --model files but 2 --out folders" in capsys.readouterr().err
    # an unknown method or setting: the schema refuses it as the arguments are parsed (usage error)
    with pytest.raises(SystemExit) as exit_:
        _cli(saliency_maps, base + _settings(["grad", "nope"]))
    assert exit_.value.code == 2
    assert "saliency.methods.1: 'nope' is not one of" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        _cli(saliency_maps, base + _settings(["sg"], sg={"steps": 3}))
    assert exit_.value.code == 2
    assert "saliency.sg.steps: unknown key; allowed here: noise, nt_type, samples" in capsys.readouterr().err
    maps.save_segments(d / "other.npz", [1, 2, 3], [[np.ones((32, 32), bool)]] * 3)
    assert _cli(saliency_maps, base + _settings(["xrai"]) + ["--segments", str(d / "other.npz")]) == 1
    assert "other evaluation images" in capsys.readouterr().err
    (d / "eval.csv").write_text("index,image_id\n3,img1\n")
    assert _cli(saliency_maps, base + _settings(["grad"])) == 1
    assert "has image_id img1 but manifest row 3 is img3" in capsys.readouterr().err


def test_given_target_is_used_and_checked(tiny, images):
    x = models.preprocess(images)
    predicted = methods.predicted_class(tiny, x)
    default, _ = methods.compute_maps("grad", tiny, x)
    given, _ = methods.compute_maps("grad", tiny, x, target=predicted)
    np.testing.assert_array_equal(default, given)
    other, _ = methods.compute_maps("grad", tiny, x, target=1 - predicted)
    assert not np.array_equal(other, default)  # the target really is the one passed
    with pytest.raises(ValueError, match="one class per image"):
        methods.compute_maps("grad", tiny, x, target=predicted[:2])


FOLLOW_UP = ["ixg", "deeplift", "occlusion", "gcampp", "eigencam", "lrp"]


def test_the_follow_up_methods_go_through_compute_all_and_the_randomization(tiny, images, tmp_path):
    """The follow-up benchmarks' methods take the same path as the paper's: compute_all (the same maps
    as compute_maps), the map files, every step of a cascading randomization."""
    saliency = saliency_block(methods=FOLLOW_UP, batch_size=5, occlusion={"window": 8, "stride": 4})
    a = maps.compute_all(tiny, "tiny_cnn", images, saliency, seed=3, device="cpu", model_key=KEY)
    assert list(a) == FOLLOW_UP
    for method, (m, f) in a.items():
        assert m.dtype == np.float16 and m.shape == (5, 32, 32) and not f.any()
        ref, _ = methods.compute_maps(method, tiny, models.preprocess(images),
                                      maps.method_settings(method, saliency, 3, {}), arch="tiny_cnn")
        np.testing.assert_array_equal(m, ref.astype(np.float16))
    written = maps.write_model_maps(tiny, "tiny_cnn", 0, tmp_path, images[:2], saliency, seed=3, dataset="siim",
                                    device="cpu", cache={}, mode="cascade", timer=maps.Timer(), log=lambda *_: None)
    labels = registry.step_labels("tiny_cnn")
    assert len(written) == 2 * len(FOLLOW_UP) * len(labels)
    for method in FOLLOW_UP:
        trained = a[method][0][:2].astype(np.float32)
        last, flags = maps.load_maps(tmp_path, method, layout.randomized_stem("cascade", labels[-1]))
        assert last.shape == (2, 32, 32)
        if not flags.any():  # the fully random model's map is another map
            assert not np.allclose(last.astype(np.float32), trained, atol=1e-2), method
