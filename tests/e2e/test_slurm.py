"""The real workflow on a real SLURM scheduler, with the real profiles/slurm.

A single-node cluster (tests/slurm_cluster.py: munged, slurmctld, slurmd from Debian's
packages, everything under a temporary folder) runs the tiny e2e config through
`snakemake --workflow-profile profiles/slurm`. The test then asks SLURM, not Snakemake,
what ran: every job of the workflow (rule + wildcards, from a dry run) must appear exactly
once in slurmctld's job records (`scontrol show job`, kept by MinJobAge), matched by the
comment the plugin gives each sbatch, and in the job completion log, COMPLETED with exit
code 0. The outputs must equal the local run's.

Skipped, with the reason, where the cluster cannot be built (not root, no apt-get) or
when SALAUDIT_SKIP_SLURM=1. `make test-slurm` runs only this file.
"""

import collections
import json
import os
import re
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml

import slurm_cluster
from conftest import REPO, tool_env
from salaudit.estimate import NOT_JOBS, parse_dry_run
from test_workflow import TINY

PROFILE = REPO / "profiles" / "slurm"
# The rule whose jobs this test sends to the GPU partition (the tiny config trains on the
# CPU, so no rule asks for a GPU by itself; with `device: cuda` the rules' gpu_request does).
GPU_RULE = "train_localizer"

# What may differ between two runs of the same config on the CPU: wall-clock timings.
# A JSON key / CSV column is a timing when it is named `seconds`, `*_seconds` or `*_per_s`.
# Files named here are not compared at all.
TIMING_NAME = re.compile(r"^(seconds|.*_seconds|.*_per_s)$")
UNCOMPARED_FILES = {".snakemake_timestamp"}  # Snakemake's marker in directory outputs


def skip_reason():
    if os.environ.get("SALAUDIT_SKIP_SLURM"):
        return "SALAUDIT_SKIP_SLURM is set"
    return slurm_cluster.unavailable_reason()


# Decided before any fixture runs (the shared local run included).
SKIP_REASON = skip_reason()
pytestmark = [pytest.mark.e2e, pytest.mark.slurm,
              pytest.mark.skipif(SKIP_REASON is not None, reason=f"no SLURM test cluster: {SKIP_REASON}")]


@pytest.fixture(scope="module")
def cluster():
    slurm_cluster.install_packages()
    with slurm_cluster.SlurmCluster() as running:
        pids = [p.pid for p in running.processes.values()]
        yield running
    for pid in pids:  # exactly the daemons it started are gone
        assert not os.path.exists(f"/proc/{pid}") or _is_zombie(pid), f"daemon {pid} still running"


def _is_zombie(pid):
    try:
        return open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def profile_set_resources():
    """profiles/slurm's set-resources as CLI words, plus gpu=1 for GPU_RULE: a
    --set-resources on the command line replaces the profile's whole mapping."""
    profile = yaml.safe_load((PROFILE / "config.v8+.yaml").read_text())
    per_rule = {rule: dict(values) for rule, values in profile["set-resources"].items()}
    per_rule.setdefault(GPU_RULE, {})["gpu"] = 1
    return profile, [f"{rule}:{key}={value}" for rule, values in per_rule.items() for key, value in values.items()]


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny-slurm")
    (workdir / "config.yaml").write_text(yaml.safe_dump(TINY))
    _, set_resources = profile_set_resources()
    command = [
        "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
        "--configfile", str(workdir / "config.yaml"),
        "--workflow-profile", str(PROFILE),
        # this cluster has no accounting database: sacct cannot answer
        "--slurm-status-command", "squeue",
        # poll soon after submitting (the profile keeps the plugin's 40 s)
        "--slurm-init-seconds-before-status-checks", "2",
        "--set-resources", *set_resources,
    ]
    env = cluster.client_env(tool_env())
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, (result.stdout[-4000:] + result.stderr[-6000:] + cluster.logs())
    return workdir, result.stdout + result.stderr


def expected_jobs(workdir):
    """The tiny workflow's jobs, keyed by the comment the plugin gives their sbatch
    (``rule_<rule>_wildcards_<values joined by _>``), from a dry run in a fresh folder: the
    plan. What ran is then read from SLURM. `all` has no command and is never submitted."""
    fresh = workdir.parent / "tiny-dry-run"
    fresh.mkdir(exist_ok=True)
    (fresh / "config.yaml").write_text(yaml.safe_dump(TINY))
    result = subprocess.run(["snakemake", "-s", str(REPO / "Snakefile"), "-d", str(fresh), "-n",
                             "--workflow-profile", str(PROFILE), "--configfile", str(fresh / "config.yaml"),
                             # a dry run caps threads at its --cores (default 1); SLURM jobs are not capped
                             "--cores", "1024"],
                            env=tool_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    jobs = {}
    for job in parse_dry_run(result.stdout + result.stderr, normalise=False):  # the rules' own names
        if job.rule in NOT_JOBS:
            continue
        values = "_".join(job.wildcards.values()).replace("/", "_")
        jobs[f"rule_{job.rule}_wildcards_{values}" if values else f"rule_{job.rule}"] = job
    assert jobs, result.stdout + result.stderr
    return jobs


def slurm_records(cluster, workdir):
    """slurmctld's records of the jobs submitted from this run's folder, by comment."""
    records = collections.defaultdict(list)
    for job in cluster.jobs():
        if job["WorkDir"] == str(workdir):
            records[job.get("Comment", "(none)")].append(job)
    return records


def test_every_job_went_through_sbatch(cluster, slurm_run):
    workdir, log = slurm_run
    expected = expected_jobs(workdir)
    records = slurm_records(cluster, workdir)
    assert sorted(records) == sorted(expected), "SLURM's jobs differ from the workflow's"
    assert all(len(jobs) == 1 for jobs in records.values()), "a job was submitted twice"
    jobs = [job for (job,) in records.values()]
    assert {job["JobState"] for job in jobs} == {"COMPLETED"}
    assert {job["ExitCode"] for job in jobs} == {"0:0"}
    # the job completion log (written by slurmctld as each job ends) agrees
    completed = {job["JobId"]: job for job in cluster.completed()}
    for job in jobs:
        assert completed[job["JobId"]]["JobState"] == "COMPLETED", completed[job["JobId"]]
    assert "SLURM run ID" in log


def test_profile_resources_reach_sbatch(cluster, slurm_run):
    """Threads → CPUs per task, mem_mb → --mem, runtime → -t, account, and gpu=1 →
    --gpus=1 in the partition partitions.yaml picks; other jobs in the CPU partition."""
    workdir, _ = slurm_run
    profile, _ = profile_set_resources()
    defaults = profile["default-resources"]
    expected = expected_jobs(workdir)
    for comment, (job,) in slurm_records(cluster, workdir).items():
        planned = expected[comment]
        wanted = {**defaults, **profile["set-resources"].get(planned.rule, {})}
        assert job["Account"] == str(defaults["slurm_account"]).lower(), job
        assert job["TimeLimit"] == _minutes_to_slurm(wanted["runtime"]), job
        assert job["MinMemoryNode"] == f"{wanted['mem_mb']}M", job
        assert int(job["NumCPUs"]) == planned.threads, job
        if planned.rule == GPU_RULE:
            assert (job["Partition"], job.get("TresPerJob")) == ("gpu", "gres:gpu:1"), job
        else:
            assert job["Partition"] == "cpu" and "TresPerJob" not in job, job


def _minutes_to_slurm(minutes):
    hours, mins = divmod(int(minutes), 60)
    return f"{hours // 24}-{hours % 24:02d}:{mins:02d}:00" if hours >= 24 else f"{hours:02d}:{mins:02d}:00"


def test_outputs_equal_a_local_run(tiny_run, slurm_run):
    """Every file under results/ of either run is in both and equal, timings excepted."""
    workdir, _ = slurm_run
    local = _files(tiny_run / "results")
    remote = _files(workdir / "results")
    assert sorted(local) == sorted(remote)
    different = [name for name in local if not _same(tiny_run / "results" / name, workdir / "results" / name)]
    assert not different, f"differ between the local and the SLURM run: {different}"


def _files(root):
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name not in UNCOMPARED_FILES]


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if not TIMING_NAME.match(str(k))}
    if isinstance(value, (list, tuple)):
        return [_without_timings(v) for v in value]
    return value


def _same(a, b):
    suffix = a.suffix
    if suffix == ".npy":
        x, y = np.load(a), np.load(b)
        return x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True)
    if suffix == ".json":
        return _without_timings(json.loads(a.read_text())) == _without_timings(json.loads(b.read_text()))
    if suffix == ".csv":
        x, y = pd.read_csv(a, dtype=str), pd.read_csv(b, dtype=str)
        timing = [c for c in x.columns if TIMING_NAME.match(c)]
        return x.drop(columns=timing).equals(y.drop(columns=timing, errors="ignore"))
    if suffix == ".pt":
        return _same_checkpoint(a, b)
    return a.read_bytes() == b.read_bytes()


def _same_checkpoint(a, b):
    import torch

    x, y = torch.load(a, map_location="cpu", weights_only=False), torch.load(b, map_location="cpu", weights_only=False)
    if set(x) != set(y):
        return False
    for key in x:
        if key == "state_dict":
            if list(x[key]) != list(y[key]) or not all(torch.equal(x[key][k], y[key][k]) for k in x[key]):
                return False
        elif _without_timings(x[key]) != _without_timings(y[key]):
            return False
    return True
