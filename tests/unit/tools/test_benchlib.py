"""bench/benchlib.py: the pure parts of `make bench` (no clocks: these tests never depend on speed)."""

import math

import numpy as np
import pytest

import benchlib as B


def test_efficiency_ratio_ideal_and_half():
    # 10 passes, a batched pass of 16 images takes 0.8 s -> ideal 0.5 s per map
    assert B.efficiency_ratio(10, 0.8, 16, 0.5) == pytest.approx(1.0)
    assert B.efficiency_ratio(10, 0.8, 16, 1.0) == pytest.approx(0.5)
    assert B.efficiency_ratio(0, 0.8, 16, 1.0) is None  # random: no passes
    assert B.efficiency_ratio(1, 0.8, 16, None) is None


def test_speedup():
    assert B.speedup(3.0, 0.5) == pytest.approx(6.0)
    assert B.speedup(None, 0.5) is None


@pytest.mark.parametrize("value, threshold, op, expected", [
    (0.85, 0.85, ">=", "PASS"), (0.849, 0.85, ">=", "MISS"), (0.5, 0.5, "<=", "PASS"), (0.51, 0.5, "<=", "MISS"),
    (None, 1.0, ">=", "N/A"), (float("nan"), 1.0, "<=", "N/A"),
])
def test_verdict(value, threshold, op, expected):
    assert B.verdict(value, threshold, op) == expected


def test_verdict_unknown_op():
    with pytest.raises(ValueError):
        B.verdict(1.0, 1.0, "<")


def test_targets_of_the_issue():
    assert B.check("efficiency", 0.86) == "PASS" and B.check("efficiency", 0.84) == "MISS"
    assert B.check("speedup_cpu", 1.0) == "PASS" and B.check("speedup_cpu", 0.99) == "MISS"
    assert B.check("speedup_gpu", 4.9) == "MISS"
    assert B.check("xrai_cache", 0.5) == "PASS"
    assert B.check("overhead", 0.11) == "MISS"
    assert B.check("demo_wall", 599) == "PASS" and B.check("demo_wall", 601) == "MISS"
    assert B.check("noop_rerun", 10.5) == "MISS"
    assert B.check("peak_memory", 3.9) == "PASS"


def test_parse_settings_overrides():
    got = B.parse_settings_overrides(["sg.samples=25", "sg.noise=0.1", "xrai.algorithm=fast", "gcam.layer=None"])
    assert got == {"sg": {"samples": 25, "noise": 0.1}, "xrai": {"algorithm": "fast"}, "gcam": {"layer": None}}
    assert B.parse_settings_overrides(None) == {}
    for bad in ("samples=25", "sg.samples", "=3"):
        with pytest.raises(ValueError):
            B.parse_settings_overrides([bad])


BENCH_TSV = ("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
             "57.6338\t0:00:57\t1402.55\t3870.12\t1380.10\t1385.02\t0.00\t12.30\t98.70\t56.81\n")


def test_read_benchmark_tsv(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text(BENCH_TSV)
    (row,) = B.read_benchmark_tsv(path)
    assert row["s"] == pytest.approx(57.6338)
    assert row["h:m:s"] == "0:00:57"
    assert row["max_rss"] == pytest.approx(1402.55)
    assert row["cpu_time"] == pytest.approx(56.81)
    # Snakemake writes '-' where a value could not be measured
    (row,) = B.read_benchmark_tsv(BENCH_TSV.replace("1402.55", "-"))
    assert row["max_rss"] is None
    assert B.read_benchmark_tsv("") == []


def test_parse_timing_takes_the_last_line():
    log = ('loading\nTIMING {"startup_s": 1.0, "load_s": 2.0, "compute_s": 30.0, "write_s": 0.5}\n'
           'TIMING {"startup_s": 1.5, "load_s": 2.0, "compute_s": 40.0, "write_s": 0.5}\ndone\n')
    assert B.parse_timing(log) == {"startup_s": 1.5, "load_s": 2.0, "compute_s": 40.0, "write_s": 0.5}
    assert B.parse_timing("no timing here") is None
    assert B.parse_timing("TIMING {broken") is None


def test_overhead_share():
    assert B.overhead_share(100.0, 92.0) == pytest.approx(0.08)
    assert B.overhead_share(100.0, 120.0) == 0.0  # clipped
    assert B.overhead_share(0.0, 1.0) is None


@pytest.mark.parametrize("rel, rule", [
    ("siim/maps/inception_v3/fold0/saliency.tsv", "saliency"),
    ("siim/maps/densenet121/fold3/randomized_cascade.tsv", "randomized_saliency"),
    ("rsna/models/inception_v3/fold1/train.tsv", "train_classifier"),
    ("rsna/localizers/retinanet/fold0/train.tsv", "train_localizer"),
    ("demo_data/siim.tsv", "demo_data"),
    ("siim/convert.tsv", "convert"),
])
def test_rule_of_benchmark(rel, rule):
    assert B.rule_of_benchmark(rel) == rule


def test_linear_fit_linear_and_quadratic():
    n = [8, 16, 32]
    lin = B.linear_fit(n, [5 + 2 * x for x in n])
    assert lin["slope_s_per_image"] == pytest.approx(2.0)
    assert lin["intercept_s"] == pytest.approx(5.0)
    assert lin["max_rel_residual"] == pytest.approx(0.0, abs=1e-9)
    assert lin["doubling_ratio"] == pytest.approx(69 / 37)
    assert lin["linear"]
    quad = B.linear_fit(n, [0.5 * x * x for x in n])  # a hidden O(n^2) step
    assert quad["doubling_ratio"] == pytest.approx(4.0)
    assert not quad["linear"]
    with pytest.raises(ValueError):
        B.linear_fit([8, 8], [1, 2])


def test_replace_generated_keeps_hand_written_parts():
    text = f"# Benchmarks\nhand written\n{B.BEGIN_MARK}\nold\n{B.END_MARK}\ntrailer\n"
    out = B.replace_generated(text, "new table")
    assert out == f"# Benchmarks\nhand written\n{B.BEGIN_MARK}\nnew table\n{B.END_MARK}\ntrailer\n"
    assert B.replace_generated(out, "new table") == out  # idempotent
    appended = B.replace_generated("# Benchmarks\n", "x")
    assert appended.endswith(f"{B.BEGIN_MARK}\nx\n{B.END_MARK}\n")


def test_demo_like_images_deterministic_and_structured():
    a = B.demo_like_images(2, 64, seed=3)
    assert a.dtype == np.uint8 and a.shape == (2, 64, 64)
    np.testing.assert_array_equal(a, B.demo_like_images(2, 64, seed=3))
    # lungs darker than the mediastinum: structure, not noise
    assert a[:, 32, 18:22].mean() < a[:, 32, 30:34].mean()


def test_fmt():
    assert B.fmt(None) == "—" and B.fmt(math.nan) == "—"
    assert B.fmt(1.234, 1, " s") == "1.2 s" and B.fmt(3) == "3"


# The bench programs import as modules (bench/ is on pytest's pythonpath), inside the tests that
# use them: training.py imports torch.


def test_pipeline_analyze_reads_benchmarks_and_timing_lines(tmp_path):
    import pipeline

    files = {
        "siim/models/inception_v3/fold0/train.tsv": (60.0, 1400.0),
        "siim/maps/inception_v3/fold0/saliency.tsv": (100.0, 2000.0),
        "siim/maps/inception_v3/fold0/randomized_cascade.tsv": (300.0, 2500.0),
    }
    for rel, (s, rss) in files.items():
        path = tmp_path / "benchmarks" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(BENCH_TSV.replace("57.6338", str(s)).replace("1402.55", str(rss)))
    logs = tmp_path / "logs" / "siim" / "maps" / "inception_v3" / "fold0"
    logs.mkdir(parents=True)
    (logs / "saliency.log").write_text('TIMING {"startup_s": 3, "load_s": 2, "compute_s": 90.0, "write_s": 1}\n')
    (logs / "randomized_cascade.log").write_text('TIMING {"compute_s": 282.0}\n')

    class Args:
        workdir = tmp_path

    result = pipeline.analyze(Args(), {"run": {"wall_s": 590.0, "max_rss_gb": 3.1}, "noop": {"wall_s": 4.0}})
    assert result["stages"]["train_classifier"]["jobs"] == 1
    assert result["stages"]["randomized_saliency"]["sum_s"] == pytest.approx(300.0)
    assert result["overhead"]["overhead"] == pytest.approx(1 - 372 / 400)
    assert result["peak_memory_gb"] == pytest.approx(3.1)  # snakemake tree above the largest job
    assert result["verdicts"] == {"overhead": "PASS", "demo_wall": "PASS", "noop_rerun": "PASS",
                                  "peak_memory": "PASS"}
    assert result["training"] == {}  # no metrics.json in this tree


def test_pipeline_training_throughput_per_architecture(tmp_path):
    import json

    import pipeline

    rows = []
    for fold, (rate, s) in enumerate([(40.0, 15.0), (50.0, 17.0)]):
        folder = tmp_path / "results" / "siim" / "models" / "densenet121" / f"fold{fold}"
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({"train_images_per_s": rate, "memory_format": "channels_last"}))
        rows.append({"file": f"siim/models/densenet121/fold{fold}/train.tsv", "rule": "train_classifier", "s": s})
    out = pipeline.training_throughput(tmp_path, rows)
    assert out == {"densenet121": {"jobs": 2, "images_per_s": 45.0, "job_s": 16.0, "memory_format": "channels_last"}}


def test_scaling_config_has_enough_positive_test_images(tmp_path, repo):
    import yaml

    import pipeline

    path = pipeline.scaling_config(repo / "config.yaml", tmp_path / "scaling.yaml", 32)
    cfg = yaml.safe_load(path.read_text())
    (spec,) = cfg["datasets"].values()
    positives_in_test = spec["demo"]["n_images"] * cfg["test_fraction"] * spec["demo"]["positive_fraction"]
    assert positives_in_test >= 32
    assert len(cfg["classifiers"]["archs"]) == 1 and cfg["classifiers"]["epochs"] == 1 and cfg["folds"] == 2


def test_methods_bench_and_report_run_end_to_end(tmp_path, repo):
    """`bench/methods.py` on a tiny model, then `bench/report.py` renders what it measured (the
    XRAI parts and both cache ratios); no figure is judged: the machine's speed is irrelevant."""
    import json
    import subprocess
    import sys

    out = tmp_path / "bench" / "methods.json"
    subprocess.run([sys.executable, str(repo / "bench" / "methods.py"), "--arch", "tiny_cnn", "--size", "48",
                    "--batch", "2", "--n-images", "2", "--methods", "grad", "xrai", "--settings", "xrai.steps=2",
                    "--time-budget", "1", "--out", str(out)], check=True, capture_output=True, cwd=repo)
    res = json.loads(out.read_text())["archs"]["tiny_cnn"]["methods"]
    parts = res["xrai"]["parts"]
    assert parts["steps"] == 2 and parts["n_images"] == 2
    assert parts["configured"]["steps"] == 3  # config.yaml's saliency.xrai.steps
    for key in ("segmentation_s_per_image", "passes_s_per_image", "region_selection_s_per_image", "cache_ratio"):
        assert parts[key] > 0
    assert parts["verdict_cache"] in ("PASS", "MISS") and res["grad"]["verdict_efficiency"] in ("PASS", "MISS")
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# hand-written\n")
    subprocess.run([sys.executable, str(repo / "bench" / "report.py"), "--results", str(tmp_path / "bench"),
                    "--benchmarks", str(md)], check=True, capture_output=True, cwd=repo)
    text = md.read_text()
    assert text.startswith("# hand-written\n")
    assert "| CPU (settings overridden) tiny_cnn XRAI segment cache, 4 passes |" in text
    assert "| CPU (settings overridden) tiny_cnn XRAI segment cache, 6 passes (config.yaml) |" in text
    assert "At `config.yaml`'s `saliency.xrai.steps: 3` (6 passes)" in text


def test_training_bench_reports_both_memory_formats_and_renders(tmp_path):
    import report
    import training

    args = training.get_args_parser().parse_args(["--arch", "tiny_cnn", "densenet121", "--size", "32", "--batch", "2",
                                                  "--steps", "1", "--out", str(tmp_path / "training.json")])
    result = training.main(args)
    for arch, auto in (("tiny_cnn", "contiguous"), ("densenet121", "channels_last")):
        r = result["archs"][arch]
        assert set(r["images_per_s"]) == {"contiguous", "channels_last"} and min(r["images_per_s"].values()) > 0
        assert r["auto_on_cpu"] == auto
    lines = report.training_section(result)
    assert any(line.startswith("| densenet121 |") and line.endswith("| channels_last |") for line in lines)
    assert report.training_section(None)[-2].startswith("Not measured yet")


def test_pipeline_headline_needs_the_localizer_ahead_and_the_controls_failing(tmp_path):
    import pipeline

    assert pipeline.headline(tmp_path) is None  # no run yet
    results = tmp_path / "results"
    (results / "tables").mkdir(parents=True)
    (results / "d" / "scores").mkdir(parents=True)
    (results / "tables" / "utility.csv").write_text(
        "dataset,source,method,mean_auprc\nd,average_mask,average_mask,0.3\nd,localizer,unet,0.8\n"
        "d,trained,gbp,0.6\nd,trained,grad,0.2\nd,trained,random,0.05\n")
    (results / "scorecard.csv").write_text("dataset,method,criterion,verdict\nd,gbp,randomization,FAIL\n")
    (results / "tables" / "controls.csv").write_text(
        "dataset,method,criterion,must,verdict,ok\nd,random,utility,FAIL,FAIL,True\nd,prior,repeatability,FAIL,FAIL,True\n")
    (results / "d" / "scores" / "utility.csv").write_text(
        "source,method,reason\ntrained,gbp,\ntrained,random,constant_map\nuntrained,gbp,constant_map\n")
    h = pipeline.headline(tmp_path)["d"]
    assert h["verdict"] == "PASS" and h["best_method"] == "gbp" and h["degenerate_trained_maps"] == 0
    (results / "tables" / "utility.csv").write_text(
        "dataset,source,method,mean_auprc\nd,average_mask,average_mask,0.3\nd,localizer,unet,0.5\nd,trained,gbp,0.6\n")
    (results / "d" / "scores" / "utility.csv").write_text("source,method,reason\ntrained,gcam,constant_map\n")
    h = pipeline.headline(tmp_path)["d"]
    assert h["verdict"] == "MISS" and not h["checks"]["localizer_beats_every_method"]
    assert h["degenerate_trained_maps"] == 1 and not h["checks"]["no_degenerate_trained_maps"]
    # a control that passes what it must fail is a miss
    (results / "tables" / "controls.csv").write_text(
        "dataset,method,criterion,must,verdict,ok\nd,prior,repeatability,FAIL,PASS,False\n")
    assert not pipeline.headline(tmp_path)["d"]["checks"]["controls_get_their_verdicts"]
