"""profiles/default and profiles/slurm: valid Snakemake options, every key commented, and
the SLURM partition choice (GPU jobs to the GPU partition) as the plugin computes it."""

import logging
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from conftest import REPO

PROFILES = REPO / "profiles"


def parse_profile(name):
    """The options Snakemake's own parser reads from a profile (unknown keys are errors)."""
    from snakemake.cli import get_argument_parser

    return get_argument_parser(profiles=[str(PROFILES / name)]).parse_args([])


def test_default_profile_options():
    args = parse_profile("default")
    assert args.cores == os.cpu_count()  # cores: all
    assert args.rerun_incomplete and args.printshellcmds
    assert int(args.resources["gpu"].raw) == 1
    assert set(args.default_resources) >= {"mem_mb", "runtime"}


def test_slurm_profile_options():
    args = parse_profile("slurm")
    assert args.executor == "slurm"
    assert args.rerun_incomplete and args.printshellcmds and int(args.jobs) >= 1
    assert set(args.default_resources) >= {"slurm_account", "runtime", "mem_mb"}
    assert {"train_classifier", "train_localizer", "saliency", "randomized_saliency_inception_v3",
            "randomized_saliency_densenet121"} <= set(args.set_resources)
    # the profile parser turns the relative partition file into a path inside the profile
    assert Path(args.slurm_partition_config).resolve() == (PROFILES / "slurm" / "partitions.yaml").resolve()


@pytest.mark.parametrize("name", ["default", "slurm"])
def test_every_key_is_commented(name):
    """Each key (any depth) has a comment on its line or on the line(s) just above."""
    lines = (PROFILES / name / "config.v8+.yaml").read_text().splitlines()
    previous = ""
    uncommented = []
    for line in lines:
        stripped = line.strip()
        if re.match(r"^[\w-]+:", stripped) and "#" not in line and not previous.startswith("#"):
            # a rule's own block under set-resources is explained by the comment above the block
            if not re.match(r"^\s{4}[\w-]+:", line):
                uncommented.append(line)
        if stripped:
            previous = stripped
    assert not uncommented, uncommented


def test_dry_run_with_the_slurm_profile_keeps_its_resources(tmp_path):
    """--workflow-profile profiles/slurm replaces profiles/default (whose default-resources
    would otherwise win): every job carries the profile's account."""
    import subprocess

    from conftest import tool_env

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"image_size": 64, "folds": 3, "n_eval": 2, "classifiers": {"archs": ["tiny_cnn"]},
                                      "datasets": {"siim": {"format": "siim", "demo": {"n_images": 12}}}}))
    result = subprocess.run(["snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--configfile", str(config),
                             "-n", "--workflow-profile", str(PROFILES / "slurm")],
                            env=tool_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    resources = re.findall(r"^\s+resources: (.*)$", result.stdout, flags=re.M)
    assert resources and all("slurm_account=" in line for line in resources)
    train = [line for line in resources if "runtime=720" in line]
    assert train and all("mem_mb=16000" in line for line in train)


class FakeResources(dict):
    def __getattr__(self, name):
        return self[name]


def fake_job(**resources):
    return SimpleNamespace(name="train_classifier", threads=resources.pop("threads", 1),
                           resources=FakeResources(resources))


def test_partition_file_sends_gpu_jobs_to_the_gpu_partition():
    from snakemake_executor_plugin_slurm.partitions import get_best_partition, read_partition_file

    partitions = read_partition_file(PROFILES / "slurm" / "partitions.yaml")
    logger = logging.getLogger("test")
    assert get_best_partition(partitions, fake_job(gpu=1, mem_mb=16000, runtime=720), logger) == "gpu"
    assert get_best_partition(partitions, fake_job(gpu=0, mem_mb=16000, runtime=720), logger) == "cpu"
    assert get_best_partition(partitions, fake_job(mem_mb=4000, runtime=60, threads=2), logger) == "cpu"


def test_gpu_resource_becomes_sbatch_gpus():
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    assert set_gres_string(fake_job(gpu=1)).strip() == "--gpus=1"
    assert set_gres_string(fake_job(gpu=0)) == ""
