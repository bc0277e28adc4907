"""The real workflow on a real SLURM scheduler, with the real profiles/slurm.

A single-node cluster (tests/helpers/slurm_cluster.py: munged, slurmctld, slurmd from Debian's
packages, everything under a temporary folder) runs the tiny e2e config through the README's
command, `snakemake --profile profiles/slurm` from the checkout (the global profile, by its full
path: the run works in another folder; the workflow profile profiles/default adds the per-rule
resources by itself). The test then asks SLURM, not
Snakemake, what ran: every job of the workflow but the local rules (rule + wildcards, from a dry
run) must appear exactly once in slurmctld's job records (`scontrol show job`, kept by
MinJobAge), matched by the comment the plugin gives each sbatch, and in the job completion log,
COMPLETED with exit code 0, with the account, time limit, memory and CPUs its profiles give it.
The outputs must equal the local run's.

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

from salaudit.jobcache import CACHE
from helpers import slurm_cluster
from helpers.repo import REPO, tool_env
from cost_model import NOT_JOBS, parse_dry_run
from test_workflow import TINY

PROFILE = REPO / "profiles" / "slurm"
WORKFLOW_PROFILE = REPO / "profiles" / "default"
# The light rules Snakemake runs itself (`localrules:` in workflow/rules/common.smk), never submitted.
LOCAL_RULES = set(re.findall(r"^\s+(\w+),$", (REPO / "workflow" / "rules" / "common.smk").read_text()
                             .split("localrules:")[1].split("\n\n")[0], flags=re.M))
# What this throw-away cluster needs beside the README's command: it has no accounting
# database (sacct cannot answer), and the plugin may poll soon after submitting.
TEST_CLUSTER = ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2"]

# What may differ between two runs of the same config on the CPU: wall-clock timings.
# A JSON key / CSV column is a timing when it is named `seconds`, `*_seconds` or `*_per_s`.
# Files named here are not compared at all.
TIMING_NAME = re.compile(r"^(seconds|.*_seconds|.*_per_s)$")
UNCOMPARED_FILES = {".snakemake_timestamp",  # Snakemake's marker in directory outputs
                    "report_screenshot.png"}  # written into the local run by tests/e2e/test_report.py


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


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny-slurm")
    (workdir / "config.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
    # The README's command from the checkout; the profile by its full path, because this run works
    # in another folder (--directory) and the profile's partition file is found relative to it.
    command = ["snakemake", "--profile", str(PROFILE), "--directory", str(workdir),
               "--configfile", str(workdir / "config.yaml"), *TEST_CLUSTER]
    env = cluster.client_env(tool_env())
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, (result.stdout[-4000:] + result.stderr[-6000:] + cluster.logs())
    return workdir, result.stdout + result.stderr


def expected_jobs(workdir):
    """The tiny workflow's submitted jobs, keyed by the comment the plugin gives their sbatch
    (``rule_<rule>_wildcards_<values joined by _>``), from a dry run in a fresh folder: the
    plan. What ran is then read from SLURM. The local rules (`all` among them) are never submitted."""
    fresh = workdir.parent / "tiny-dry-run"
    fresh.mkdir(exist_ok=True)
    (fresh / "config.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
    result = subprocess.run(["snakemake", "--profile", "profiles/slurm", "--directory", str(fresh), "-n",
                             "--configfile", str(fresh / "config.yaml")],
                            cwd=REPO, env=tool_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    jobs = {}
    for job in parse_dry_run(result.stdout + result.stderr, normalise=False):  # the rules' own names
        if job.rule in NOT_JOBS | LOCAL_RULES:
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
    """SLURM's records of every job: the global profile's account and default resources, the
    workflow profile's per-rule time limit and memory (first attempt), threads as CPUs per task,
    and the CPU partition partitions.yaml picks (the tiny config asks for no GPU)."""
    workdir, log = slurm_run
    defaults = yaml.safe_load((PROFILE / "config.v8+.yaml").read_text())["default-resources"]
    per_rule = yaml.safe_load((WORKFLOW_PROFILE / "config.v8+.yaml").read_text())["set-resources"]
    expected = expected_jobs(workdir)
    records = slurm_records(cluster, workdir)
    assert {planned.rule for planned in expected.values()} >= {"train_classifier", "score", "saliency"}
    for comment, (job,) in records.items():
        planned = expected[comment]
        wanted = {**defaults, **per_rule.get(planned.rule, {})}
        memory = eval(str(wanted["mem_mb"]), {"attempt": 1})  # e.g. "16000 * attempt"
        assert job["Account"] == str(defaults["slurm_account"]).lower(), job
        assert job["TimeLimit"] == _minutes_to_slurm(wanted["runtime"]), job
        assert job["MinMemoryNode"] == f"{memory}M", job
        assert int(job["NumCPUs"]) == planned.threads, job
        assert job["Partition"] == "cpu" and "TresPerJob" not in job, job
    # the threads of a torch job are the config's, not one (the dry run showed them too)
    assert {planned.threads for planned in expected.values() if planned.rule == "convert"} == {TINY["convert_threads"]}
    # the local rules ran on the submitting host, as the log says
    assert all(f"localrule {rule}:" in log for rule in LOCAL_RULES - {"all"})


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
    return [str(p.relative_to(root)) for p in root.rglob("*")
            if p.is_file() and p.name not in UNCOMPARED_FILES and CACHE not in p.relative_to(root).parts]


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
