"""The real workflow, run by Snakemake on a tiny config in a temporary directory."""

import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers.repo import REPO, tool_env

pytestmark = pytest.mark.e2e

TINY = {
    "seed": 0,
    "image_size": 64,
    "folds": 3,
    "test_fraction": 0.25,
    "convert_threads": 2,
    "n_eval": 3,
    "torch_threads": 1,
    "classifiers": {"archs": ["tiny_cnn"], "epochs": 2, "batch_size": 8},
    "localizers": {"epochs": 1, "unet": {"base_channels": 4, "depth": 3, "batch_size": 4},
                   "retinanet": {"fpn_channels": 16, "batch_size": 4}},
    "saliency": {"batch_size": 2, "randomization": {"archs": ["tiny_cnn"], "folds": [1],
                                                    "modes": ["cascade", "independent", "bottom_up"]},
                 "sg": {"samples": 2}, "ig": {"steps": 3}, "sig": {"samples": 2, "steps": 2}, "xrai": {"steps": 2}},
    "evaluation": {"label_randomization": {"archs": ["tiny_cnn"], "folds": [1]}},
    "datasets": {
        "siim": {"format": "siim", "demo": {"n_images": 24, "positive_fraction": 0.5, "seed": 1}},
        # the paper's RSNA cohort: "No Lung Opacity / Not Normal" patients go to excluded.csv
        "rsna": {"format": "rsna", "demo": {"n_images": 24, "positive_fraction": 0.5, "seed": 2},
                 "classes": ["Normal", "Lung Opacity"]},
    },
}
NOT_NORMAL = "No Lung Opacity / Not Normal"


def demo_classes(run, dataset):
    """patientId -> class of the generated RSNA download (SIIM: every image is in the study)."""
    table = run / "results" / "demo_data" / dataset / "stage_2_detailed_class_info.csv"
    return pd.read_csv(table).drop_duplicates("patientId").set_index("patientId")["class"] if table.exists() else None


def snakemake(workdir, *args, config=None):
    config_path = workdir / "config.yaml"
    # the config's order kept: its datasets (siim, then rsna) order the tables
    config_path.write_text(yaml.safe_dump(config if config is not None else TINY, sort_keys=False))
    command = ["snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
               "--configfile", str(config_path), *args]
    return subprocess.run(command, capture_output=True, text=True, env=tool_env(), timeout=900)


@pytest.fixture
def run(tiny_run):
    """The workflow run on TINY with `--cores 2`, once per session (tests/conftest.py):
    tests/e2e/test_slurm.py compares its SLURM run with the same one."""
    return tiny_run


@pytest.mark.parametrize("dataset", ["siim", "rsna"])
def test_contract_files(run, dataset):
    out = run / "results" / dataset
    images = np.load(out / "data" / "images.npy", mmap_mode="r")
    masks = np.load(out / "data" / "masks.npy", mmap_mode="r")
    manifest = pd.read_csv(out / "data" / "manifest.csv", dtype={"image_id": str})
    excluded = pd.read_csv(out / "data" / "excluded.csv", dtype=str)
    classes = demo_classes(run, dataset)
    not_normal = [] if classes is None else sorted(classes.index[classes == NOT_NORMAL])
    n = 24 - len(not_normal)
    assert dataset == "siim" or 0 < len(not_normal) < 12  # the demo's RSNA negatives hold both classes
    assert excluded.columns.tolist() == ["image_id", "reason"]
    assert excluded["image_id"].tolist() == not_normal
    assert (excluded["reason"] == f"class {NOT_NORMAL!r} not in classes").all()
    assert NOT_NORMAL not in set(manifest["class"])
    assert images.dtype == masks.dtype == np.uint8
    assert images.shape == masks.shape == (n, 64, 64)
    assert set(np.unique(masks)) <= {0, 1}
    assert manifest["label"].sum() == 12
    # every positive has a mask, no negative has one
    has_mask = masks.reshape(n, -1).any(axis=1)
    np.testing.assert_array_equal(has_mask, manifest["label"].to_numpy() == 1)
    assert pd.read_csv(out / "data" / "rejected.csv").empty
    splits = pd.read_csv(out / "splits.csv", dtype={"image_id": str})
    assert splits["image_id"].tolist() == manifest["image_id"].tolist()
    assert set(splits["fold"]) == {-1, 0, 1, 2}
    assert (splits["split"] == "test").sum() == round(0.25 * 12) + round(0.25 * (n - 12))
    log = (run / "logs" / dataset / "convert.log").read_text()
    assert log.startswith(dataset)
    assert dataset == "siim" or f"excluded {len(not_normal)}: class {NOT_NORMAL!r} not in classes" in log
    assert (run / "benchmarks" / dataset / "convert.tsv").exists()

    eval_images = pd.read_csv(out / "eval_images.csv", dtype={"image_id": str})
    assert list(eval_images.columns) == ["index", "image_id"] and len(eval_images) == 3
    test_positive = (splits["split"] == "test") & (manifest["label"] == 1)
    assert test_positive.iloc[eval_images["index"]].all()
    average = np.load(out / "baselines" / "average_mask.npy")
    assert average.dtype == np.float32 and average.shape == (64, 64) and 0 < average.max() <= 1


@pytest.mark.parametrize("dataset, localizer", [("siim", "unet"), ("rsna", "retinanet")])
def test_models_and_localizers(run, dataset, localizer):
    import json

    import torch

    from salaudit.models import load_checkpoint

    out = run / "results" / dataset
    for fold in range(3):
        folder = out / "models" / "tiny_cnn" / f"fold{fold}"
        model, meta = load_checkpoint(folder / "model.pt")
        assert meta["kind"] == "classifier" and meta["name"] == "tiny_cnn"
        assert meta["settings"]["fold"] == fold and meta["settings"]["seed"] == 0
        assert meta["versions"]["torch"] == torch.__version__
        _, localizer_meta = load_checkpoint(out / "localizers" / localizer / f"fold{fold}" / "model.pt")
        assert localizer_meta["kind"] == "localizer" and localizer_meta["name"] == localizer
        assert localizer_meta["settings"]["fold"] == fold and localizer_meta["settings"]["epochs"] == 1
        metrics = json.loads((folder / "metrics.json").read_text())
        assert {"val_auroc", "test_auroc", "best_epoch", "seconds", "device"} <= set(metrics)
        predictions = pd.read_csv(folder / "predictions.csv", dtype={"image_id": str})
        splits = pd.read_csv(out / "splits.csv", dtype={"image_id": str})
        assert list(predictions.columns) == ["image_id", "label", "prob"]
        assert predictions["image_id"].tolist() == splits.loc[splits["split"] == "test", "image_id"].tolist()
        assert not (folder / "train_state.pt").exists()
        maps = np.load(out / "localizers" / localizer / f"fold{fold}" / "maps.npy")
        assert maps.dtype == np.float16 and maps.shape == (3, 64, 64)
        assert maps.min() >= 0 and maps.max() <= 1
    log = (run / "logs" / dataset / "models" / "tiny_cnn" / "fold0" / "train.log").read_text()
    assert "epoch 1/2" in log and "val_auroc" in log
    tables = run / "results" / "tables"
    assert set(pd.read_csv(tables / "classifiers.csv")["dataset"]) == {"siim", "rsna"}
    assert len(pd.read_csv(tables / "localizers.csv")) == 6


METHODS = ["grad", "sg", "ig", "sig", "gcam", "gbp", "ggcam", "xrai", "random", "smooth_random", "edge", "prior"]
MODES = TINY["saliency"]["randomization"]["modes"]


@pytest.mark.parametrize("dataset", ["siim", "rsna"])
def test_saliency_maps(run, dataset):
    from salaudit.saliency.randomize import steps

    out = run / "results" / dataset / "maps"
    segments = np.load(out / "xrai_segments.npz")
    assert segments["counts"].shape == (3,) and segments["counts"].min() >= 1
    labels = [step.label for step in steps("tiny_cnn")]
    for fold in range(3):
        for method in METHODS:
            folder = out / "tiny_cnn" / f"fold{fold}" / method
            stems = ["trained"] + ([f"{mode}/{label}" for mode in MODES for label in labels] + ["label_randomized"]
                                   if fold == 1 else [])
            for stem in stems:
                maps = np.load(folder / f"{stem}.npy")
                flags = np.load(folder / f"{stem}.flags.npy")
                assert maps.dtype == np.float16 and maps.shape == (3, 64, 64), (method, stem)
                assert flags.dtype == bool and flags.shape == (3,)
                assert maps.min() >= 0 and maps.max() <= 1
                # a flagged map is all zeros; an unflagged one reaches 1
                np.testing.assert_array_equal(maps.reshape(3, -1).max(axis=1) == 0, flags)
            assert fold == 1 or not ((folder / "cascade").exists() or (folder / "label_randomized.npy").exists())
    log = (run / "logs" / dataset / "maps" / "tiny_cnn" / "fold1" / "randomized_cascade.log").read_text()
    assert log.splitlines()[-1].startswith("TIMING {") and '"compute_s"' in log
    assert (run / "benchmarks" / dataset / "maps" / "tiny_cnn" / "saliency.tsv").exists()  # one job, every fold
    assert (run / "logs" / dataset / "maps" / "tiny_cnn" / "saliency.log").read_text().count("(tiny_cnn) on cpu") == 3


def test_maps_agree_with_direct_captum_and_pair(run):
    """The independent check (tools/verify_maps.py): PAIR's library recomputes every method but the
    controls from the run's config, in the workflow's batches; each map equals PAIR's to float16 rounding."""
    result = subprocess.run(
        ["python", str(REPO / "tools" / "verify_maps.py"), "--results", str(run / "results"), "--dataset", "rsna",
         "--arch", "tiny_cnn", "--fold", "2", "--configfile", str(run / "config.yaml")],
        capture_output=True, text=True, env=tool_env(), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("(OK)") == 8, result.stdout


def test_scorecard_tables_figures_and_report(run):
    results = run / "results"
    scorecard = pd.read_csv(results / "scorecard.csv")
    assert list(scorecard.columns[:8]) == ["dataset", "method", "criterion", "value", "ci_low", "ci_high", "p",
                                           "verdict"]
    from salaudit.registry import CRITERIA

    main = scorecard[scorecard["criterion"].isin(CRITERIA)]
    assert set(main["method"]) == set(METHODS) and set(main["dataset"]) == {"siim", "rsna"}
    # rows follow the config: its datasets in their order (not sorted), its methods in theirs
    assert scorecard["dataset"].unique().tolist() == list(TINY["datasets"]) == ["siim", "rsna"]
    # every configured criterion has rows for both datasets; one architecture: no reproducibility
    configured = set(CRITERIA) - {"reproducibility"}
    for dataset in ("siim", "rsna"):
        assert set(main.loc[main["dataset"] == dataset, "criterion"]) == configured, dataset
    # every control gets the verdicts it must (3 images cannot pass anything: this checks the plumbing)
    controls = pd.read_csv(results / "tables" / "controls.csv")
    assert len(controls) > 0 and controls["ok"].all(), controls[~controls["ok"]]
    assert "RANDOM *" in (results / "tables" / "scorecard.md").read_text()
    for name in ("summary", "controls", "utility", "randomization", "consistency", "classifier_auroc", "degenerate"):
        assert len(pd.read_csv(results / "tables" / f"{name}.csv")) > 0, name
    for name in ("utility", "cascade", "consistency", "consistency_null", "roc", "examples_siim", "cascade_strip_rsna"):
        assert (results / "figures" / f"{name}.png").stat().st_size > 10_000, name
    utility = pd.read_csv(results / "siim" / "scores" / "utility.csv", dtype={"image_id": str})
    assert len(utility[(utility["source"] == "trained") & (utility["method"] == "grad")]) == 3 * 3  # folds x images
    # outside results/: the SLURM test compares results/ of this run with its own
    result = snakemake(run, "--report", "report.html")
    assert result.returncode == 0, result.stderr[-3000:]
    html = (run / "report.html").read_text(errors="replace")
    assert "scorecard" in html.lower() and len(html) > 100_000


def test_scorecard_recomputed_independently(run):
    """tools/recompute_scorecard.py: sklearn/skimage/scipy/quantus from the saved maps, none of salaudit's scoring."""
    result = subprocess.run(["python", str(REPO / "tools" / "recompute_scorecard.py"), "--results", str(run / "results")],
                            capture_output=True, text=True, env=tool_env(), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # 12 methods x 12 criteria (4 utility, randomization + spearman, bottom_up, independent, entropy,
    # label randomization + spearman, repeatability) x 2 datasets
    assert "288 of 288 scorecard rows recomputed identically" in result.stdout, result.stdout[-3000:]


def test_nothing_left_to_do(run):
    result = snakemake(run, "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_lint_is_clean_but_for_the_paths_that_are_not_params(tmp_path):
    """Snakemake's linter on the tiny config: only {PYTHON} and {SCRIPTS} in shell lines
    (tools/lint_workflow.py says why they are not params)."""
    import lint_workflow

    result = snakemake(tmp_path, "--lint")
    lints = lint_workflow.parse(result.stdout + result.stderr)
    assert lints and all(lint_workflow.allowed(title) for _, title in lints), lints


def test_dry_run_lists_the_jobs(tmp_path):
    result = snakemake(tmp_path, "-n")
    assert result.returncode == 0, result.stderr
    text = result.stdout + result.stderr
    for rule in ("demo_data", "convert", "split", "eval_images", "average_mask", "train_classifier",
                 "train_label_randomized", "train_localizer", "summarize_models", "xrai_segments", "saliency",
                 "label_randomized_saliency", "randomized_saliency_tiny_cnn", "score", "aggregate", "figures"):
        assert f"rule {rule}:" in text


@pytest.mark.parametrize("change, message", [
    ({"imge_size": 64}, "imge_size: unknown key; allowed here: classifiers, "),
    ({"image_size": "big"}, "image_size: 'big' is not of type 'integer'"),
    ({"on_bad_input": "ignore"}, "on_bad_input: 'ignore' is not one of"),
    ({"datasets": {"siim": {"format": "siim", "demo": {"n_image": 4}}}},
     "datasets.siim.demo.n_image: unknown key; allowed here: n_images, positive_fraction, seed"),
    ({"saliency": {"sg": {"sample": 3}}}, "saliency.sg.sample: unknown key; allowed here: noise, nt_type, samples"),
])
def test_schema_rejects_bad_config_before_any_job(tmp_path, change, message):
    """One line: the file, the dotted key, what is allowed - before any job (nothing else but
    Snakemake's note that it read the workflow profile)."""
    result = snakemake(tmp_path, "--cores", "1", config={**TINY, **change})
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines()
             if line.strip() and not line.startswith("Using workflow specific profile")]
    assert lines == [lines[0]] and lines[0].startswith(f"{tmp_path / 'config.yaml'}: {message}"), lines
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("change, message", [
    ({"classifiers": {"archs": ["resnet9"]}}, "unknown architecture 'resnet9'"),
    ({"image_size": 64, "classifiers": {"archs": ["inception_v3"]}}, "inception_v3 needs image_size >= 75"),
    ({"classifiers": {"archs": ["tiny_cnn"], "pretrained": {"tiny_cnn": "/no/such/weights.pth"}}},
     "no file /no/such/weights.pth"),
    ({"saliency": {"randomization": {"archs": ["tiny_cnn"], "folds": [3]}}},
     "saliency.randomization.folds: [3] not below folds (3)"),
    ({"saliency": {"randomization": {"archs": ["vgg"]}}}, "unknown architecture(s) vgg"),
    ({"classifiers": {"archs": ["vit_b_16"]}}, "classifiers.archs: vit_b_16 cannot be audited: not a CNN"),
    ({"classifiers": {"archs": ["tiny_cnn"], "weights": {"tiny_cnn": ["/a.pt"]}}},
     "classifiers.weights.tiny_cnn: 1 file(s), one per replicate, but folds is 3"),
    ({"classifiers": {"archs": ["tiny_cnn"], "weights": {"resnet18": ["/a.pt", "/b.pt", "/c.pt"]}}},
     "classifiers.weights.resnet18: resnet18 is not in classifiers.archs"),
    ({"classifiers": {"archs": ["tiny_cnn", "efficientnet_b0"]}},
     "saliency.methods: gbp, ggcam need(s) ReLU activations; efficientnet_b0 has SiLU, Sigmoid"),
    ({"saliency": {"methods": ["grad", "lime"]}}, "saliency.methods.1: 'lime' is not one of"),
    # a method that refuses one of the configured architectures (LRP: no rule for DenseNet121's BatchNorm)
    ({"classifiers": {"archs": ["tiny_cnn", "densenet121"]}, "saliency": {"methods": ["grad", "lrp"]}},
     "saliency.methods: saliency method lrp does not support architecture densenet121 (supported: tiny_cnn, "
     "inception_v3, resnet*, resnext*, wide_resnet*, vgg*, alexnet*)"),
    # a U-Net that cannot halve the image depth times: at start-up, not inside train_localizer
    ({"image_size": 72, "localizers": {"unet": {"depth": 4}}},
     "localizers.unet.depth: unet depth 4 needs image_size divisible by 2**4 = 16, got 72 (use depth <= 3)"),
])
def test_model_config_errors_before_any_job(tmp_path, change, message):
    result = snakemake(tmp_path, "-n", config={**TINY, **change})
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def test_models_brought_as_weights_are_audited_like_trained_ones(tmp_path):
    """tiny_cnn trained here, resnet18 brought as three files (ImageNet-style input): the
    resnet18 replicates are imported, never trained, and take part in every criterion."""
    import torch

    from salaudit import models

    files = []
    for k in range(3):
        torch.manual_seed(k)
        files.append(tmp_path / f"resnet18 seed{k}.pt")
        torch.save(models.build_model("resnet18").state_dict(), files[-1])
    config = {**TINY, "classifiers": {**TINY["classifiers"], "archs": ["tiny_cnn", "resnet18"],
                                      "weights": {"resnet18": [str(f) for f in files]},
                                      "preprocess": {"resnet18": {"range": [0.0, 1.0], "mean": [0.485, 0.456, 0.406],
                                                                  "std": [0.229, 0.224, 0.225]}}},
              "saliency": {**TINY["saliency"], "methods": ["grad", "gcam", "gbp", "random", "prior"],
                           "randomization": {"archs": ["tiny_cnn"], "folds": [1], "modes": ["cascade"]}},
              "evaluation": {"label_randomization": {"archs": []}},
              "datasets": {"siim": TINY["datasets"]["siim"]}}
    result = snakemake(tmp_path, "--cores", "2", config=config)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = tmp_path / "results" / "siim"
    for k in range(3):
        assert (tmp_path / "logs" / "siim" / "models" / "resnet18" / f"fold{k}" / "import.log").is_file()
        assert not (tmp_path / "logs" / "siim" / "models" / "resnet18" / f"fold{k}" / "train.log").exists()
        _, meta = models.load_checkpoint(run / "models" / "resnet18" / f"fold{k}" / "model.pt")
        assert meta["input"]["mean"] == [0.485, 0.456, 0.406] and meta["imported"]["file"] == str(files[k])
    utility = pd.read_csv(run / "scores" / "utility.csv")
    assert set(utility.loc[utility["arch"] == "resnet18", "fold"]) == {0, 1, 2}
    pairs = pd.read_csv(run / "scores" / "consistency.csv")
    repeat = pairs[(pairs["criterion"] == "repeatability") & (pairs["arch_a"] == "resnet18")]
    reproduce = pairs[pairs["criterion"] == "reproducibility"]
    assert len(repeat) and set(repeat["method"]) == {"grad", "gcam", "gbp", "random", "prior"}
    assert {tuple(sorted(p)) for p in zip(reproduce["arch_a"], reproduce["arch_b"])} == {("resnet18", "tiny_cnn")}
    assert set(pd.read_csv(tmp_path / "results" / "scorecard.csv")["criterion"]) >= {"utility", "repeatability",
                                                                                       "reproducibility"}
    classifiers = pd.read_csv(tmp_path / "results" / "tables" / "classifiers.csv")
    imported = classifiers[classifiers["arch"] == "resnet18"]
    assert len(imported) == 3 and (imported["epochs_run"] == 0).all()


def test_a_torchvision_cnn_is_audited_like_the_papers(tmp_path):
    """resnet18 by name: trained per fold, every method, randomized block by block (its derived
    cascade), scored - the dry run lists each job."""
    config = {**TINY, "classifiers": {**TINY["classifiers"], "archs": ["tiny_cnn", "resnet18"]},
              "saliency": {**TINY["saliency"], "randomization": {"archs": ["resnet18"], "folds": [0]}}}
    result = snakemake(tmp_path, "-n", "--quiet", "rules", config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = dict(line.split()[:2] for line in result.stdout.splitlines() if len(line.split()) == 2
                  and line.split()[1].isdigit())
    assert counts["train_classifier"] == "12" and counts["randomized_saliency_resnet18"] == "2"
    files = snakemake(tmp_path, "-n", "--printshellcmds", config=config).stdout
    assert "results/siim/maps/resnet18/fold0/gcam/cascade/05_layer1.npy" in files
    # the config's own randomization steps for it
    blocks = [{"name": "top", "modules": ["fc", "layer4"]}, {"name": "rest", "modules": ["layer3", "layer2"]}]
    config["saliency"]["randomization"] = {"archs": ["resnet18"], "folds": [0], "blocks": {"resnet18": blocks}}
    files = snakemake(tmp_path, "-n", "--printshellcmds", config=config).stdout
    assert "results/siim/maps/resnet18/fold0/gcam/cascade/02_rest.npy" in files and "05_layer1" not in files


def test_missing_kaggle_folders_are_named_all_at_once(tmp_path):
    config = {**TINY, "datasets": {"siim": {"format": "siim", "root": str(tmp_path / "siim-download")},
                                   "rsna": {"format": "rsna", "root": str(tmp_path / "rsna-download")}}}
    result = snakemake(tmp_path, "-n", config=config)
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert f"datasets.siim: missing {tmp_path / 'siim-download'}" in text
    assert f"datasets.rsna: missing {tmp_path / 'rsna-download'}" in text
    assert "train-rle.csv" in text and "dicom-images-train/<StudyInstanceUID>" in text
    assert "Traceback" not in text


def _paper(workdir, *args):
    command = ["snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
               "--configfile", str(REPO / "config" / "paper.yaml"), *args]
    return subprocess.run(command, capture_output=True, text=True, env=tool_env(), timeout=300)


def test_paper_config_names_the_missing_download_then_lists_the_whole_study(tmp_path):
    result = _paper(tmp_path, "-n")
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert "datasets.siim: missing data/siim-acr-pneumothorax" in text and "train-rle.csv" in text
    # the two downloads' files in place (empty: a dry run reads none of them)
    siim, rsna = tmp_path / "data" / "siim-acr-pneumothorax", tmp_path / "data" / "rsna-pneumonia-detection-challenge"
    (siim / "dicom-images-train").mkdir(parents=True)
    (siim / "train-rle.csv").write_text("ImageId, EncodedPixels\n")
    (rsna / "stage_2_train_images").mkdir(parents=True)
    (rsna / "stage_2_train_labels.csv").write_text("patientId,x,y,width,height,Target\n")
    (rsna / "stage_2_detailed_class_info.csv").write_text("patientId,class\np1,Normal\np2,Lung Opacity\n")
    result = _paper(tmp_path, "-n", "--quiet", "rules")
    assert result.returncode == 0, result.stdout + result.stderr
    counts = {line.split()[0]: int(line.split()[1]) for line in result.stdout.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert counts["convert"] == 2 and counts["train_classifier"] == 2 * 2 * 5
    assert counts["train_localizer"] == 2 * 5 and counts["saliency"] == 2 * 2  # a job per dataset and arch
    assert counts["randomized_saliency_inception_v3"] == 2 * 5  # every InceptionV3 replicate, cascade
    assert counts["train_label_randomized"] == 2 * 5  # label randomization of every InceptionV3 replicate
    assert "demo_data" not in counts
