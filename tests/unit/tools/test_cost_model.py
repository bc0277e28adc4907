"""tools/cost_model.py: dry-run parsing, the scaling table, calibration on a fake benchmarks tree."""

import math

import pytest

import cost_model as est

# Shaped like `snakemake --dry-run` output of Snakemake 9 (trimmed input/output lines).
DRY_RUN = """\
Building DAG of jobs...
Job stats:
job                 count
----------------  -------
convert                 1
train_classifier        2
all                     1
total                   4

[Thu Nov 26 08:17:43 2026]
rule convert:
    input: results/demo_data/siim
    output: results/siim/data/images.npy, results/siim/data/masks.npy
    log: logs/siim/convert.log
    jobid: 3
    benchmark: benchmarks/siim/convert.tsv
    reason: Missing output files: results/siim/data/images.npy
    wildcards: dataset=siim
    threads: 2
    resources: tmpdir=/tmp, mem_mb=4000, mem=4 GB, runtime=60
Shell command: python scripts/convert.py --format siim > logs/siim/convert.log 2>&1

[Thu Nov 26 08:17:43 2026]
rule train_classifier:
    input: results/siim/data/images.npy
    output: results/siim/models/tiny_cnn/fold0/model.pt
    jobid: 7
    benchmark: benchmarks/siim/models/tiny_cnn/fold0/train.tsv
    wildcards: dataset=siim, arch=tiny_cnn, fold=0
    resources: tmpdir=/tmp, mem_mb=4000, runtime=60, gpu=1

[Thu Nov 26 08:17:43 2026]
rule train_classifier:
    input: results/siim/data/images.npy
    output: results/siim/models/tiny_cnn/fold1/model.pt
    jobid: 8
    benchmark: benchmarks/siim/models/tiny_cnn/fold1/train.tsv
    wildcards: dataset=siim, arch=tiny_cnn, fold=1
    resources: tmpdir=/tmp, mem_mb=4000, runtime=60, gpu=0

[Thu Nov 26 08:17:43 2026]
localrule all:
    input: results/tables/classifiers.csv
    jobid: 0
    reason: Input files updated by another job
    resources: tmpdir=/tmp
Job stats:
job                 count
----------------  -------
total                   4
This was a dry-run (flag -n). The order of jobs does not reflect the order of execution.
"""

BENCHMARK_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def config(**changes):
    base = {"image_size": 64, "folds": 4, "test_fraction": 0.25, "n_eval": 10, "device": "cpu",
            "classifiers": {"epochs": 2}, "localizers": {"epochs": 3},
            "datasets": {"siim": {"format": "siim", "demo": {"n_images": 40}}}}
    return {**base, **changes}


def test_parse_dry_run():
    jobs = est.parse_dry_run(DRY_RUN)
    assert [j.rule for j in jobs] == ["convert", "train_classifier", "train_classifier", "all"]
    convert, fold0, fold1, all_ = jobs
    assert convert.wildcards == {"dataset": "siim"} and convert.threads == 2
    assert convert.benchmark == "benchmarks/siim/convert.tsv"
    assert convert.resources["mem_mb"] == "4000"
    assert fold0.wildcards == {"dataset": "siim", "arch": "tiny_cnn", "fold": "0"}
    assert (fold0.gpus, fold1.gpus, fold1.threads) == (1, 0, 1)
    assert all_.benchmark is None and all_.wildcards == {}


def test_read_benchmark_means_repeats(tmp_path):
    path = tmp_path / "b.tsv"
    path.write_text(BENCHMARK_HEADER + "10.0\t0:00:10\t1\t1\t1\t1\t0\t0\t50\t8.0\n"
                    "14.0\t0:00:14\t1\t1\t1\t1\t0\t0\t50\t12.0\n")
    assert est.read_benchmark(path) == {"s": 12.0, "cpu_time": 10.0}


def test_scaling_table():
    context = est.Context(config(), {"siim": 40})
    # pool = 40 x 0.75 = 30; a fold trains on 30 x 3/4 = 22.5 and validates on 30 / 4 = 7.5
    train = est.Job("train_classifier", {"dataset": "siim", "arch": "tiny_cnn", "fold": "0"})
    assert est.work(train, context) == pytest.approx(64 ** 2 * (22.5 + 7.5) * 2)
    localizer = est.Job("train_localizer", {"dataset": "siim", "localizer": "unet", "fold": "0"})
    assert est.work(localizer, context) == pytest.approx(64 ** 2 * 30 * 3)
    # twice the image side: four times the work
    bigger = est.Context(config(image_size=128), {"siim": 40})
    assert est.work(train, bigger) == pytest.approx(4 * est.work(train, context))

    saliency_config = config(saliency={"methods": ["grad", "ig"]})
    context = est.Context(saliency_config, {"siim": 40})
    # grad: 1 pass, ig: 10 steps, + the one forward that picks the target for both
    assert est.passes_per_image(saliency_config) == 1 + 10 + 1
    maps = est.Job("saliency", {"dataset": "siim", "arch": "tiny_cnn"})
    assert est.work(maps, context) == 64 ** 2 * 10 * 12 * 4  # one job: every fold's model (4 folds)
    randomized = est.Job("randomized_saliency", {"dataset": "siim", "arch": "tiny_cnn", "fold": "0", "mode": "cascade"})
    assert est.work(randomized, context) == 64 ** 2 * 10 * 12 * 4  # tiny_cnn has 4 cascade steps
    # the dry run names the per-architecture rule; it is read as randomized_saliency + arch
    listed = est.parse_dry_run("rule randomized_saliency_tiny_cnn:\n    wildcards: dataset=siim, fold=0, mode=cascade\n")
    assert listed == [randomized]
    assert est.work(est.Job("convert", {"dataset": "siim"}), context) == 40
    assert est.work(est.Job("split", {"dataset": "siim"}), context) == 1  # not in the table: per job


def test_saliency_methods_from_config():
    assert set(est.saliency_methods({})) >= {"grad", "sg", "ig", "sig", "gcam", "gbp", "ggcam", "xrai"}
    assert est.saliency_methods({"saliency": {"methods": ["sg", "ggcam"], "sg": {"samples": 5},
                                              "gcam": {"layer": "block3"}}}) == {"sg": {"samples": 5},
                                                                                 "ggcam": {"layer": "block3"}}
    config = {"saliency": {"methods": ["ig", "sig"], "ig": {"steps": 20}, "sig": {"samples": 2, "steps": 3}}}
    assert est.passes_per_image(config) == 20 + 2 * 3 + 1
    # occlusion's passes depend on the image size: 32 px windows every 16 px at 96 px, 5 x 5 + the image
    config = {"image_size": 96, "saliency": {"methods": ["deeplift", "occlusion"]}}
    assert est.passes_per_image(config) == 2 + 26 + 1


def write_benchmark(root, path, seconds, cpu_time):
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(BENCHMARK_HEADER + f"{seconds}\t0:00:00\t1\t1\t1\t1\t0\t0\t50\t{cpu_time}\n")


def test_calibrate_and_estimate(tmp_path):
    reference = est.Context(config(), {"siim": 40})
    ref_jobs = [
        est.Job("convert", {"dataset": "siim"}, benchmark="benchmarks/siim/convert.tsv"),
        est.Job("train_classifier", {"dataset": "siim", "arch": "tiny_cnn", "fold": "0"},
                benchmark="benchmarks/siim/models/tiny_cnn/fold0/train.tsv"),
        est.Job("train_classifier", {"dataset": "siim", "arch": "tiny_cnn", "fold": "1"},
                benchmark="benchmarks/siim/models/tiny_cnn/fold1/train.tsv"),
        est.Job("split", {"dataset": "siim"}),  # no benchmark: directive
        est.Job("average_mask", {"dataset": "siim"}, benchmark="benchmarks/siim/missing.tsv"),  # file absent
    ]
    write_benchmark(tmp_path, "benchmarks/siim/convert.tsv", 8.0, 4.0)
    write_benchmark(tmp_path, "benchmarks/siim/models/tiny_cnn/fold0/train.tsv", 100.0, 90.0)
    write_benchmark(tmp_path, "benchmarks/siim/models/tiny_cnn/fold1/train.tsv", 140.0, 110.0)
    rates = est.calibrate(ref_jobs, reference, tmp_path)
    train_work = 64 ** 2 * 30 * 2
    assert rates[("train_classifier", "tiny_cnn")]["s"] == pytest.approx(240.0 / (2 * train_work))
    assert rates[("train_classifier", "tiny_cnn")]["cpu_time"] == pytest.approx(200.0 / (2 * train_work))
    assert rates[("convert",)]["cpu_time"] == pytest.approx(4.0 / 40)
    assert ("split",) not in rates and ("average_mask",) not in rates

    # target: 4x the pixels, 2.5x the images, device cuda; fold 0 asks for a GPU, fold 1 not
    target = est.Context(config(image_size=128, device="cuda"), {"siim": 100})
    pending = est.parse_dry_run(DRY_RUN) + [est.Job("split", {"dataset": "siim"})]
    rows = {r.rule: r for r in est.estimate(pending, target, rates, gpu_rules_on_gpu=True)}
    assert set(rows) == {"convert", "train_classifier", "split"}  # `all` is not a job
    per_job_work = 128 ** 2 * 75 * 2
    assert rows["train_classifier"].jobs == 2 and rows["train_classifier"].gpu_jobs == 1
    assert rows["train_classifier"].gpu_hours == pytest.approx(per_job_work * 240.0 / (2 * train_work) / 3600)
    assert rows["train_classifier"].cpu_hours == pytest.approx(per_job_work * 200.0 / (2 * train_work) / 3600)
    assert rows["convert"].cpu_hours == pytest.approx(100 * 0.1 / 3600)
    assert (rows["split"].jobs, rows["split"].unestimated, rows["split"].cpu_hours) == (1, 1, 0.0)

    # device cpu: the same GPU-requesting job counts as CPU time
    rows = {r.rule: r for r in est.estimate(pending, target, rates, gpu_rules_on_gpu=False)}
    assert rows["train_classifier"].gpu_hours == 0 and rows["train_classifier"].gpu_jobs == 0
    table = est.format_table(list(rows.values()))
    assert "train_classifier" in table and "not estimated" in table and table.splitlines()[-1].startswith("total")


def test_calibration_stays_within_a_model(tmp_path):
    """Another randomization mode of the same architecture may borrow its rate; another
    architecture may not (it is counted, not estimated)."""
    reference = est.Context(config(saliency={"methods": ["grad"]}), {"siim": 40})
    ref_jobs = [est.Job("randomized_saliency", {"dataset": "siim", "arch": "tiny_cnn", "fold": "0", "mode": "cascade"},
                        benchmark="benchmarks/r.tsv")]
    write_benchmark(tmp_path, "benchmarks/r.tsv", 60.0, 60.0)
    rates = est.calibrate(ref_jobs, reference, tmp_path)
    independent = est.Job("randomized_saliency", {"dataset": "siim", "arch": "tiny_cnn", "fold": "1", "mode": "independent"})
    other_arch = est.Job("randomized_saliency", {"dataset": "siim", "arch": "densenet121", "fold": "0", "mode": "cascade"})
    (row,) = est.estimate([independent, other_arch], reference, rates, gpu_rules_on_gpu=False)
    assert row.jobs == 2 and row.unestimated == 1
    assert row.cpu_hours == pytest.approx(60.0 / 3600)


def test_dataset_sizes(tmp_path):
    root = tmp_path / "siim-download"
    root.mkdir()
    # a SIIM label file lists an image once per region: count distinct ids
    (root / "train-rle.csv").write_text("ImageId, EncodedPixels\n1.2.3, -1\n1.2.4, 5 3\n1.2.4, 9 2\n")
    manifest = tmp_path / "work" / "results" / "rsna" / "data" / "manifest.csv"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("image_id,label\na,1\nb,0\nc,1\n")
    cfg = {"datasets": {"siim": {"format": "siim", "root": str(root)},
                        "rsna": {"format": "rsna", "demo": {"n_images": 99}},
                        "demo": {"format": "rsna", "demo": {"n_images": 7}}}}
    assert est.dataset_sizes(cfg, tmp_path / "work") == {"siim": 2, "rsna": 3, "demo": 7}
    rsna = tmp_path / "rsna-download"
    rsna.mkdir()
    (rsna / "stage_2_train_labels.csv").write_text("patientId,x,y,width,height,Target\na,1,1,2,2,1\na,5,5,2,2,1\nb,,,,,0\nc,,,,,0\n")
    (rsna / "stage_2_detailed_class_info.csv").write_text(
        "patientId,class\na,Lung Opacity\na,Lung Opacity\nb,Normal\nc,No Lung Opacity / Not Normal\n")
    cohort = {"datasets": {"rsna": {"format": "rsna", "root": str(rsna), "classes": ["Normal", "Lung Opacity"]}}}
    assert est.dataset_sizes(cohort, tmp_path / "none") == {"rsna": 2}  # the paper's cohort: c excluded
    mine = tmp_path / "table"
    mine.mkdir()
    # a table lists an image once per box; with a split column, images without a split are not studied
    (mine / "t.csv").write_text("image,label,x,y,width,height,split\na.png,1,1,1,2,2,train\na.png,1,5,5,2,2,train\n"
                                "b.png,0,,,,,test\nc.png,0,,,,,\n")
    tables = {"datasets": {"mine": {"format": "table", "root": str(mine), "table": "t.csv"}}}
    assert est.dataset_sizes(tables, tmp_path / "none") == {"mine": 2}


def test_missing_cpu_time_falls_back_to_wall(tmp_path):
    path = tmp_path / "b.tsv"
    path.write_text("s\th:m:s\n5.0\t0:00:05\n")
    measured = est.read_benchmark(path)
    assert measured["s"] == 5.0 and math.isnan(measured["cpu_time"])


def test_gpu_rates_from_the_gpu_figures():
    """Training from images/s of the bf16 channels-last step, maps from the methods' seconds per
    map (passes rescaled to the target's settings), localizers from the classifiers' GPU/CPU ratio."""
    checks = {"size": 100, "checks": {
        "train_step/tiny_cnn/fp32": {"ok": True, "images_per_s": 50.0},
        "train_step/tiny_cnn/bf16_channels_last": {"ok": True, "images_per_s": 200.0},
        "train_step/tiny_cnn/bf16": {"ok": False, "error": "x"},
    }}
    methods = {"size": 100, "archs": {"tiny_cnn": {"reference_pass_s_per_image": 0.01, "methods": {
        "grad": {"passes": 1, "seconds_per_map": 0.02}, "sg": {"passes": 25, "seconds_per_map": 0.5}}}}}
    target = est.Context(config(image_size=200, saliency={"methods": ["grad", "sg", "gbp"], "sg": {"samples": 5}}),
                         {"siim": 100})
    cpu = {("train_classifier", "tiny_cnn"): {"s": 1e-3}, ("train_localizer", "unet"): {"s": 2e-3},
           ("randomized_saliency", "tiny_cnn", "cascade"): {"s": 9.0}}
    rates = est.gpu_rates(checks, methods, target, cpu)
    assert rates[("randomized_saliency", "tiny_cnn", "cascade")] is rates[("randomized_saliency", "tiny_cnn")]
    assert rates[("train_classifier", "tiny_cnn")]["s"] == pytest.approx(1 / (200.0 * 100 ** 2))
    # grad 0.02 + sg 0.5 x 5/25 + gbp (not measured: 1 pass x 0.01) + the target forward 0.01
    per_map = 0.02 + 0.1 + 0.01 + 0.01
    assert est.passes_per_image(target.config) == 1 + 5 + 1 + 1
    assert rates[("saliency", "tiny_cnn")]["s"] == pytest.approx(per_map / (100 ** 2 * 8))
    ratio = (1 / (200.0 * 100 ** 2)) / 1e-3
    assert rates[("train_localizer", "unet")]["s"] == pytest.approx(2e-3 * ratio)
    job = est.Job("saliency", {"dataset": "siim", "arch": "tiny_cnn"})
    (row,) = est.estimate([job], target, rates, gpu_rules_on_gpu=False, gpu_rules=est.GPU_RULES)
    # S^2 x n_eval x passes x folds: the per-map time x 4 (200 px vs 100) x maps
    assert row.gpu_hours == pytest.approx(per_map * 4 * target.n_eval() * target.config["folds"] / 3600)
    assert row.cpu_hours == 0 and row.gpu_jobs == 1
