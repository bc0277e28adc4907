"""salaudit.maps and the two CLIs that write maps (xrai_segments.py, saliency_maps.py)."""

import csv

import numpy as np
import pytest
import torch

import saliency_maps
import xrai_segments
from salaudit import maps, methods, models, randomize, seeds


def test_a_grad_cam_layer_per_architecture_passes_through_the_command_line():
    """common.smk writes a mapping as one shell-quoted `--set=gcam.layer={JSON}` argument."""
    import shlex

    from saliency_maps import get_args_parser

    flag = shlex.quote('--set=gcam.layer={"inception_v3": "Mixed_6e"}')
    args = get_args_parser().parse_args(shlex.split(f"--dataset d --model m --data x --eval-images e --out o "
                                                    f"--methods gcam {flag}"))
    assert maps.parse_settings(args.settings) == {"gcam": {"layer": {"inception_v3": "Mixed_6e"}}}


def test_parse_settings_reads_yaml_values_and_rejects_unknowns():
    parsed = maps.parse_settings(["sg.samples=5", "sg.noise=0.2", "gcam.layer=null", "xrai.algorithm=fast"])
    assert parsed == {"sg": {"samples": 5, "noise": 0.2}, "gcam": {"layer": None}, "xrai": {"algorithm": "fast"}}
    with pytest.raises(ValueError, match="unknown method 'sgg'"):
        maps.parse_settings(["sgg.samples=5"])
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['sampels'\]"):
        maps.parse_settings(["sg.sampels=5"])
    with pytest.raises(ValueError, match="expected method.name=value"):
        maps.parse_settings(["samples=5"])


def test_method_settings_add_seed_batch_cap_cache_and_gcam_layer():
    cache = {}
    settings = {"gcam": {"layer": "block2"}, "sg": {"samples": 3}}
    assert maps.method_settings("sg", settings, seed=7, max_batch=32, cache=cache) == {"samples": 3, "seed": 7}
    assert maps.method_settings("ig", settings, seed=7, max_batch=32, cache=cache) == {"max_batch": 32}
    assert maps.method_settings("ggcam", settings, 7, 32, cache) == {"layer": "block2"}
    assert maps.method_settings("xrai", {}, 7, 32, cache)["segment_cache"] is cache
    assert maps.method_settings("grad", settings, 7, 32, cache) == {}


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
    assert list(cache) == [methods.image_key(xi) for xi in x]
    cached = cache[methods.image_key(x[1])]
    assert len(cached) == 4 and all(a is b for a, b in zip(cached, loaded[1]))


def test_compute_segments_equals_xrai_segments_of_the_preprocessed_image():
    images = np.random.default_rng(1).integers(0, 256, (2, 32, 32), dtype=np.uint8)
    got = maps.compute_segments(images)
    want = [methods.xrai_segments(xi) for xi in models.preprocess(images)]
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
    a = maps.compute_all(tiny, "tiny_cnn", images, ids, settings, seed=3, batch_size=5, model_key=KEY)
    assert list(a) == ids
    for method, (m, f) in a.items():
        assert m.dtype == np.float16 and m.shape == (5, 32, 32) and f.shape == (5,)
        assert 0 <= m.min() and m.max() <= 1
        s = maps.method_settings(method, settings, 3, 64, {})
        if "seed" in s:  # the one batch starts at row 0
            s["seed"] = maps.batch_seed(3, method, KEY, 0)
            assert s["seed"] == seeds.derive(3, "saliency", method, "siim", "tiny_cnn", 0, "trained", 0)
        ref, _ = methods.compute_maps(method, tiny, models.preprocess(images), s, arch="tiny_cnn")
        np.testing.assert_array_equal(m, ref.astype(np.float16))  # GGCAM from the batch's GBP and GCAM: the same
    # deterministic methods give the same maps in batches of 2 (SmoothGrad noise is drawn per batch)
    b = maps.compute_all(tiny, "tiny_cnn", images, ["grad", "ig", "gcam"], settings, seed=3, batch_size=2,
                         model_key=KEY)
    for method in b:
        np.testing.assert_allclose(b[method][0].astype(np.float32), a[method][0].astype(np.float32), atol=1e-3)


def test_every_model_gets_its_own_random_draws_and_a_rerun_the_same(tiny, images):
    """SmoothGrad noise and the random control are drawn per (method, dataset, arch, fold, step,
    batch): the paper draws fresh noise for every map. Another fold, step or dataset of the same
    network gets other draws; the same model, the same ones."""
    def run(key, batch_size=5):
        return maps.compute_all(tiny, "tiny_cnn", images, ["random", "sg", "sig"],
                                {"sg": {"samples": 2}, "sig": {"samples": 2, "steps": 2}}, seed=1,
                                batch_size=batch_size, model_key=key)

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
    segments = maps.compute_segments(images[:2])
    cache = maps.segment_cache(images[:2], segments)

    def refuse(image):
        raise AssertionError("segments recomputed although cached")

    monkeypatch.setattr(methods, "xrai_segments", refuse)
    out = maps.compute_all(tiny, "tiny_cnn", images[:2], ["xrai"], {"xrai": {"steps": 2}}, segments=cache)
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
    models.save_checkpoint(tmp_path / "model.pt", tiny, "tiny_cnn", settings={"fold": 2}, image_size=32)
    return tmp_path


def _cli(module, argv):
    return module.main(module.get_args_parser().parse_args(argv))


def test_saliency_cli_writes_trained_and_every_cascade_step(dataset, tiny, images):
    d = dataset
    assert _cli(xrai_segments, ["--data", str(d / "data"), "--eval-images", str(d / "eval.csv"),
                                "--out", str(d / "seg.npz")]) == 0
    common = ["--dataset", "siim", "--model", str(d / "model.pt"), "--data", str(d / "data"), "--eval-images", str(d / "eval.csv"),
              "--segments", str(d / "seg.npz"), "--out", str(d / "maps"), "--methods", "grad", "xrai", "random",
              "--set", "xrai.steps=2", "--seed", "4", "--threads", "1"]
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
    # same seed, same maps (CPU): bit-identical rerun
    first = maps.load_maps(d / "maps", "xrai", f"cascade/{labels[0]}")[0].copy()
    assert _cli(saliency_maps, common + ["--randomize", "cascade"]) == 0
    np.testing.assert_array_equal(maps.load_maps(d / "maps", "xrai", f"cascade/{labels[0]}")[0], first)


def test_saliency_cli_several_models_in_one_run(dataset, tiny, images):
    d = dataset
    torch.manual_seed(9)
    other = models.build_model("tiny_cnn").eval()
    models.save_checkpoint(d / "other.pt", other, "tiny_cnn", settings={}, image_size=32)
    argv = ["--dataset", "siim", "--model", str(d / "model.pt"), str(d / "other.pt"), "--data", str(d / "data"),
            "--eval-images", str(d / "eval.csv"), "--out", str(d / "a"), str(d / "b"), "--methods", "grad", "random",
            "--threads", "1"]
    assert _cli(saliency_maps, argv) == 0
    for folder, net in ((d / "a", tiny), (d / "b", other)):
        m, _ = maps.load_maps(folder, "grad", "trained")
        ref, _ = methods.compute_maps("grad", net, models.preprocess(images[[3, 0, 4]]))
        np.testing.assert_array_equal(m, ref.astype(np.float16))
    # the random control differs between the two models of the run
    assert not np.array_equal(maps.load_maps(d / "a", "random", "trained")[0], maps.load_maps(d / "b", "random", "trained")[0])


def test_saliency_cli_clear_errors(dataset, capsys):
    d = dataset
    base = ["--dataset", "siim", "--model", str(d / "model.pt"), "--data", str(d / "data"),
            "--eval-images", str(d / "eval.csv"), "--out", str(d / "maps"), "--threads", "1"]
    assert _cli(saliency_maps, base + ["--methods", "grad", "--out", str(d / "x"), str(d / "y")]) == 1
    assert "1 --model files but 2 --out folders" in capsys.readouterr().err
    assert _cli(saliency_maps, base + ["--methods", "grad", "nope"]) == 1
    assert "unknown method(s) nope" in capsys.readouterr().err
    assert _cli(saliency_maps, base + ["--methods", "sg", "--set", "sg.steps=3"]) == 1
    assert "unknown setting(s) ['steps'] for 'sg'" in capsys.readouterr().err
    maps.save_segments(d / "other.npz", [1, 2, 3], [[np.ones((32, 32), bool)]] * 3)
    assert _cli(saliency_maps, base + ["--methods", "xrai", "--segments", str(d / "other.npz")]) == 1
    assert "other evaluation images" in capsys.readouterr().err
    (d / "eval.csv").write_text("index,image_id\n3,img1\n")
    assert _cli(saliency_maps, base + ["--methods", "grad"]) == 1
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
