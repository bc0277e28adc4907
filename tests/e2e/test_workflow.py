"""The real workflow, run by Snakemake on a tiny config in a temporary directory."""

import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, tool_env

pytestmark = pytest.mark.e2e

TINY = {
    "seed": 0,
    "image_size": 64,
    "folds": 3,
    "test_fraction": 0.25,
    "convert_threads": 2,
    "datasets": {
        "siim": {"format": "siim", "demo": {"n_images": 24, "positive_fraction": 0.5, "seed": 1}},
        "rsna": {"format": "rsna", "demo": {"n_images": 24, "positive_fraction": 0.5, "seed": 2}},
    },
}


def snakemake(workdir, *args, config=None):
    config_path = workdir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config if config is not None else TINY))
    command = ["snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
               "--configfile", str(config_path), *args]
    return subprocess.run(command, capture_output=True, text=True, env=tool_env(), timeout=900)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny")
    result = snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir


@pytest.mark.parametrize("dataset", ["siim", "rsna"])
def test_contract_files(run, dataset):
    out = run / "results" / dataset
    images = np.load(out / "data" / "images.npy", mmap_mode="r")
    masks = np.load(out / "data" / "masks.npy", mmap_mode="r")
    manifest = pd.read_csv(out / "data" / "manifest.csv", dtype={"image_id": str})
    assert images.dtype == masks.dtype == np.uint8
    assert images.shape == masks.shape == (24, 64, 64)
    assert set(np.unique(masks)) <= {0, 1}
    assert manifest["label"].sum() == 12
    # every positive has a mask, no negative has one
    has_mask = masks.reshape(24, -1).any(axis=1)
    np.testing.assert_array_equal(has_mask, manifest["label"].to_numpy() == 1)
    assert pd.read_csv(out / "data" / "rejected.csv").empty
    splits = pd.read_csv(out / "splits.csv", dtype={"image_id": str})
    assert splits["image_id"].tolist() == manifest["image_id"].tolist()
    assert set(splits["fold"]) == {-1, 0, 1, 2}
    assert (splits["split"] == "test").sum() == 6
    assert (run / "logs" / dataset / "convert.log").read_text().startswith(dataset)
    assert (run / "benchmarks" / dataset / "convert.tsv").exists()


def test_nothing_left_to_do(run):
    result = snakemake(run, "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_lint_is_clean(tmp_path):
    result = snakemake(tmp_path, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


def test_dry_run_lists_the_jobs(tmp_path):
    result = snakemake(tmp_path, "-n")
    assert result.returncode == 0, result.stderr
    text = result.stdout + result.stderr
    for rule in ("demo_data", "convert", "split"):
        assert f"rule {rule}:" in text


@pytest.mark.parametrize("change, message", [
    ({"imge_size": 64}, "'imge_size' was unexpected"),
    ({"image_size": "big"}, "'big' is not of type 'integer'"),
    ({"on_bad_input": "ignore"}, "'ignore' is not one of"),
    ({"datasets": {"siim": {"format": "siim", "demo": {"n_image": 4}}}}, "'n_image' was unexpected"),
])
def test_schema_rejects_bad_config_before_any_job(tmp_path, change, message):
    result = snakemake(tmp_path, "--cores", "1", config={**TINY, **change})
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_missing_kaggle_folder_is_named(tmp_path):
    config = {**TINY, "datasets": {"siim": {"format": "siim", "root": str(tmp_path / "siim-download")}}}
    result = snakemake(tmp_path, "-n", config=config)
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert f"datasets.siim: missing {tmp_path / 'siim-download'}" in text
    assert "train-rle.csv" in text and "dicom-images-train/<StudyInstanceUID>" in text
