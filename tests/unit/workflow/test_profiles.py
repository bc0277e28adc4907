"""profiles/default (the workflow profile) and profiles/slurm (a global profile): valid
Snakemake options, laid out as Snakemake layers them, every key commented, the resources a dry run
gives each job, and the SLURM partition choice (GPU jobs to the GPU partition) as the plugin
computes it."""

import logging
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from helpers.repo import REPO

PROFILES = REPO / "profiles"


def parse_profile(name):
    """The options Snakemake's own parser reads from a profile (unknown keys are errors)."""
    from snakemake.cli import get_argument_parser

    return get_argument_parser(profiles=[str(PROFILES / name)]).parse_args([])


HEAVY_RULES = {"convert", "train_classifier", "train_label_randomized", "train_localizer", "xrai_segments", "saliency",
               "label_randomized_saliency", "randomized_saliency_inception_v3", "randomized_saliency_densenet121",
               "score"}


def test_the_workflow_profile_holds_the_workflow_and_nothing_of_a_machine():
    """Snakemake reads profiles/default last, key by key over --profile: it must not hold what a
    global profile sets (cores, executor, accounts, default resources, global limits)."""
    text = yaml.safe_load((PROFILES / "default" / "config.v8+.yaml").read_text())
    assert set(text) == {"rerun-incomplete", "printshellcmds", "show-failed-logs", "set-resources"}
    args = parse_profile("default")
    assert args.rerun_incomplete and args.printshellcmds and args.show_failed_logs
    assert HEAVY_RULES <= set(args.set_resources)
    # memory scales with the attempt (the heavy rules retry once)
    train = args.set_resources["train_classifier"]
    assert str(train["mem_mb"].raw) == "16000 * attempt" and int(train["runtime"].raw) == 720


def test_the_slurm_profile_is_a_global_profile():
    text = yaml.safe_load((PROFILES / "slurm" / "config.v8+.yaml").read_text())
    assert "set-resources" not in text  # the workflow profile's would replace it
    args = parse_profile("slurm")
    assert args.executor == "slurm" and int(args.jobs) >= 1 and int(args.latency_wait) > 0
    assert set(args.default_resources) >= {"slurm_account", "runtime", "mem_mb"}
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


def dry_run(tmp_path, profile, env_extra=None):
    """`snakemake -n --profile <profile>` from the checkout, as the README says; the jobs it plans."""
    import subprocess

    from cost_model import parse_dry_run
    from helpers.repo import tool_env

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"image_size": 64, "folds": 3, "n_eval": 2, "torch_threads": 3,
                                      "classifiers": {"archs": ["tiny_cnn"]},
                                      "datasets": {"siim": {"format": "siim", "demo": {"n_images": 12}}}}))
    result = subprocess.run(["snakemake", "-d", str(tmp_path), "--configfile", str(config), "-n", "--profile", profile],
                            cwd=REPO, env={**tool_env(), **(env_extra or {})}, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return [job for job in parse_dry_run(result.stdout + result.stderr, normalise=False) if job.rule != "all"]


def check_resources(jobs):
    assert jobs
    for job in jobs:
        assert job.resources.get("slurm_account") == "CHANGE_ME", job
        if job.rule in HEAVY_RULES:
            assert int(job.resources["runtime"]) >= 120 and int(job.resources["mem_mb"]) >= 8000, job
        else:
            assert (job.resources["runtime"], job.resources["mem_mb"]) == ("60", "4000"), job
    # the dry run shows the threads the cluster gives (no cap at one core)
    train = [job for job in jobs if job.rule == "train_classifier"]
    assert train and all(job.threads == 3 for job in train)


def test_profile_slurm_from_the_checkout_gives_every_job_its_resources(tmp_path):
    """`snakemake --profile profiles/slurm`: the global profile's account and defaults, the
    workflow profile's per-rule resources, the real threads."""
    check_resources(dry_run(tmp_path, "profiles/slurm"))


def test_a_site_profile_of_ones_own_plus_the_workflow_profile(tmp_path):
    """`cp -r profiles/slurm ~/.config/snakemake/slurm`, then `snakemake --profile slurm` from anywhere."""
    import shutil

    home = tmp_path / "home"
    shutil.copytree(PROFILES / "slurm", home / ".config" / "snakemake" / "slurm")
    run = tmp_path / "run"
    run.mkdir()
    check_resources(dry_run(run, "slurm", {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}))


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
