"""Cost estimate of a workflow run from a previous run's benchmarks.

The pending jobs come from Snakemake's dry run (`parse_dry_run`: rule, wildcards, threads,
resources, benchmark path of every job it would run). Each job's cost is

    seconds = work(job, config) x seconds_per_work

where ``work`` is the job's amount of work in `SCALING` (e.g. a training job: S^2 x
training images x epochs) and ``seconds_per_work`` is calibrated on the reference run:
the sum of its benchmark seconds over the sum of its work, over the jobs of the same rule
and calibration key (e.g. the same architecture; a job whose architecture has no reference
benchmark is counted but not estimated). Reference jobs and their benchmark files
come from a dry run of the reference config with ``--forceall`` (every job, with the
``benchmark:`` path it writes).

What is not modelled: a GPU's speed-up over the reference machine (unless the reference
benchmarks were measured on a GPU: then pass them as the reference); early stopping
(epochs are the configured maximum, so training is an upper bound); contention between
jobs; queueing. Rules without benchmark files are counted but not estimated.

One module (about 400 lines) on purpose: the dry-run parser, the scaling table, the calibration and
the GPU rates are one model of a run's cost, read and tested together (tests/unit/tools/test_cost_model.py).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from salaudit import config as salaudit_config
from salaudit import registry
from salaudit.datasets import formats, table
from salaudit.saliency import methods as salaudit_methods

# --------------------------------------------------------------------------------------
# Jobs of a dry run


@dataclass(frozen=True)
class Job:
    rule: str
    wildcards: dict = field(default_factory=dict, hash=False, compare=True)
    threads: int = 1
    resources: dict = field(default_factory=dict, hash=False, compare=True)
    benchmark: str | None = None

    @property
    def gpus(self) -> int:
        try:
            return int(self.resources.get("gpu", 0))
        except ValueError:
            return 0


_JOB_START = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):\s*$")
_FIELD = re.compile(r"^\s+(\w+): (.*)$")


def _pairs(text: str) -> dict:
    """'dataset=siim, arch=tiny_cnn' -> {'dataset': 'siim', 'arch': 'tiny_cnn'}."""
    pairs = {}
    for item in text.split(", "):
        key, sep, value = item.partition("=")
        if sep:
            pairs[key.strip()] = value.strip()
    return pairs


def parse_dry_run(text: str, normalise: bool = True) -> list[Job]:
    """Jobs listed by `snakemake --dry-run` (Snakemake 8/9 text): one block per job, a
    ``rule NAME:`` line followed by indented ``key: value`` lines. Rules without a command
    (``localrule all``) are included; callers drop what they do not estimate. With
    ``normalise``, ``randomized_saliency_<arch>`` jobs are read as rule ``randomized_saliency``
    with an ``arch`` wildcard (`_normalise`); without, rules keep their workflow names."""
    jobs, current = [], None
    for line in text.splitlines():
        start = _JOB_START.match(line)
        if start:
            current = {"rule": start.group(1)}
            jobs.append(current)
            continue
        if current is None:
            continue
        match = _FIELD.match(line)
        if not match:
            if line.strip() == "" or not line.startswith(" "):
                current = None
            continue
        key, value = match.groups()
        if key in ("wildcards", "resources"):
            current[key] = _pairs(value)
        elif key == "threads":
            current["threads"] = int(value)
        elif key == "benchmark":
            current["benchmark"] = value.strip()
    parsed = [Job(rule=j["rule"], wildcards=j.get("wildcards", {}), threads=j.get("threads", 1),
                  resources=j.get("resources", {}), benchmark=j.get("benchmark")) for j in jobs]
    return [_normalise(job) for job in parsed] if normalise else parsed


_RANDOMIZED_PREFIX = "randomized_saliency_"


def _normalise(job: Job) -> Job:
    """The per-architecture rules ``randomized_saliency_<arch>`` become one rule,
    ``randomized_saliency``, with the architecture as the ``arch`` wildcard."""
    if job.rule.startswith(_RANDOMIZED_PREFIX) and "arch" not in job.wildcards:
        return Job(rule="randomized_saliency", wildcards={**job.wildcards, "arch": job.rule[len(_RANDOMIZED_PREFIX):]},
                   threads=job.threads, resources=job.resources, benchmark=job.benchmark)
    return job


def read_benchmark(path: str | Path) -> dict:
    """Mean wall seconds (`s`) and CPU seconds (`cpu_time`) over the repeats of a
    Snakemake benchmark TSV."""
    table = pd.read_csv(path, sep="\t")
    seconds = float(table["s"].mean())
    cpu = float(table["cpu_time"].mean()) if "cpu_time" in table and table["cpu_time"].notna().all() else math.nan
    return {"s": seconds, "cpu_time": cpu if cpu > 0 else math.nan}


# --------------------------------------------------------------------------------------
# How much work a job is


@dataclass
class Context:
    """What a job's work depends on: the (schema-completed) config and the image count of
    each dataset (`dataset_sizes`)."""
    config: dict
    sizes: dict[str, int]

    def S2(self) -> float:
        return float(self.config["image_size"]) ** 2

    def pool_images(self, dataset: str) -> float:
        """Images in the cross-validation pool (train split) of a dataset."""
        return self.sizes[dataset] * (1 - self.config["test_fraction"])

    def train_images(self, dataset: str) -> float:
        """Images one fold trains on: the pool without its own fold."""
        folds = self.config["folds"]
        return self.pool_images(dataset) * (folds - 1) / folds

    def n_eval(self) -> int:
        return int(self.config["n_eval"])


def saliency_methods(config: dict) -> dict[str, dict]:
    """Method id -> settings of the maps one model gets: ``config["saliency"]["methods"]``
    (default: the schema's, every registered method) with the settings of
    ``config["saliency"][<section>]`` that the method takes (absent: the schema's, i.e. the paper's)."""
    section = config.get("saliency") or {}
    methods = section.get("methods", salaudit_config.defaults()["saliency"]["methods"])
    return {m: {k: v for k, v in (section.get(registry.METHOD_CONFIG_SECTIONS.get(m, "")) or {}).items()
                if k in salaudit_methods.default_settings(m)} for m in methods}


def passes_per_image(config: dict) -> int:
    """Forward+backward passes per image and model for all configured methods
    (`salaudit.saliency.methods.total_passes`: GGCAM reuses GBP and GCAM), + 1 for the forward pass that
    picks the target class (shared by every method, counted as a pass). At the config's
    ``image_size`` (occlusion's passes depend on it)."""
    size = int(config.get("image_size") or salaudit_config.defaults()["image_size"])
    return salaudit_methods.total_passes(saliency_methods(config), image_size=size) + 1


def localizer_epochs(config: dict, localizer: str) -> int:
    """``localizers.<localizer>.epochs`` when set, else ``localizers.epochs``."""
    section = config["localizers"]
    return int((section.get(localizer) or {}).get("epochs", section["epochs"]))


@dataclass(frozen=True)
class Scaling:
    """A rule's work formula and the wildcards whose jobs share one calibration."""
    work: Callable[[Job, Context], float]
    key: tuple[str, ...] = ()
    doc: str = ""


def _demo_images(job: Job, c: Context) -> float:
    spec = c.config["datasets"][job.wildcards["dataset"]]
    return float(spec["demo"]["n_images"]) if "demo" in spec else 0.0


# The scaling rules. A rule that is not here is estimated as "same seconds per job as in
# the reference run" (work = 1), which suits the small bookkeeping rules.
SCALING: dict[str, Scaling] = {
    "demo_data": Scaling(_demo_images, doc="generated images (1024 px each, whatever image_size)"),
    "convert": Scaling(lambda j, c: c.sizes[j.wildcards["dataset"]],
                       doc="images decoded (DICOM decoding at the source size dominates)"),
    "train_classifier": Scaling(
        lambda j, c: c.S2() * (c.train_images(j.wildcards["dataset"]) + c.pool_images(j.wildcards["dataset"]) / c.config["folds"])
        * c.config["classifiers"]["epochs"],
        key=("arch",), doc="S^2 x (training + validation images) x epochs (maximum; early stopping ends sooner)"),
    "train_localizer": Scaling(
        lambda j, c: c.S2() * (c.train_images(j.wildcards["dataset"]) + c.pool_images(j.wildcards["dataset"]) / c.config["folds"])
        * localizer_epochs(c.config, j.wildcards["localizer"]),
        key=("localizer",), doc="S^2 x (training + validation images) x epochs (maximum)"),
    "saliency": Scaling(
        lambda j, c: c.S2() * c.n_eval() * passes_per_image(c.config) * c.config["folds"],
        key=("arch",), doc="S^2 x n_eval x (sum over methods of passes_per_image + 1) x folds (one job per arch)"),
    "train_label_randomized": Scaling(
        lambda j, c: c.S2() * (c.train_images(j.wildcards["dataset"]) + c.pool_images(j.wildcards["dataset"]) / c.config["folds"])
        * c.config["classifiers"]["epochs"],
        key=("arch",), doc="as train_classifier (the same training on permuted labels)"),
    "label_randomized_saliency": Scaling(
        lambda j, c: c.S2() * c.n_eval() * passes_per_image(c.config),
        key=("arch",), doc="S^2 x n_eval x (sum over methods of passes_per_image + 1): one model"),
    "randomized_saliency": Scaling(
        lambda j, c: c.S2() * c.n_eval() * passes_per_image(c.config) * len(registry.step_labels(j.wildcards["arch"])),
        key=("arch", "mode"), doc="S^2 x n_eval x (sum over methods of passes_per_image + 1) x cascade steps of arch"),
}


def work(job: Job, context: Context) -> float:
    scaling = SCALING.get(job.rule)
    return 1.0 if scaling is None else float(scaling.work(job, context))


def calibration_key(job: Job) -> tuple:
    scaling = SCALING.get(job.rule)
    return (job.rule, *(job.wildcards.get(k) for k in (scaling.key if scaling else ())))


def calibration_keys(job: Job) -> list[tuple]:
    """Keys to calibrate a job on, most specific first: the full key, then shorter ones,
    but never across models (a tiny_cnn timing says nothing about InceptionV3): e.g.
    (randomized_saliency, inception_v3, independent) -> (randomized_saliency, inception_v3)."""
    key = calibration_key(job)
    return [key[:n] for n in range(len(key), min(2, len(key)) - 1, -1)]


# --------------------------------------------------------------------------------------
# Dataset sizes


def count_label_ids(fmt: str, root: str | Path, classes=None, table_name: str | None = None) -> int:
    """Distinct images in a Kaggle label file (SIIM ImageId / RSNA patientId); with RSNA
    ``classes``, only the patients of those classes in ``stage_2_detailed_class_info.csv``. A
    table: its distinct images (with a split column, those with a split)."""
    if fmt == "table":
        path = formats.label_file(fmt, root, table_name)
        _, images, _ = table.read_table(path)
        with_split = table.has_split(path)
        return sum(1 for entry in images.values() if entry.split or not with_split)
    labels = pd.read_csv(Path(root) / formats.FORMATS[fmt]["labels"], dtype=str, skipinitialspace=True,
                         encoding="utf-8-sig")
    ids = set(labels.iloc[:, 0])
    if classes is not None and fmt == "rsna":
        info = pd.read_csv(Path(root) / formats.RSNA_CLASS_FILE, dtype=str, keep_default_na=False,
                           encoding="utf-8-sig")
        ids &= set(info.loc[info["class"].isin(classes), "patientId"])
    return len(ids)


def dataset_sizes(config: dict, workdir: str | Path = ".") -> dict[str, int]:
    """Images per dataset: the converted manifest when the workdir has one, else the demo's
    n_images, else the distinct ids of the Kaggle label file."""
    sizes = {}
    for name, spec in config["datasets"].items():
        manifest = Path(workdir) / "results" / name / "data" / "manifest.csv"
        if manifest.exists():
            sizes[name] = sum(1 for _ in manifest.open()) - 1
        elif "demo" in spec:
            sizes[name] = int(spec["demo"]["n_images"])
        else:
            sizes[name] = count_label_ids(spec["format"], spec["root"], spec.get("classes"), spec.get("table"))
    return sizes


# --------------------------------------------------------------------------------------
# The estimate


@dataclass
class RuleEstimate:
    rule: str
    jobs: int = 0
    gpu_jobs: int = 0
    cpu_hours: float = 0.0
    gpu_hours: float = 0.0
    unestimated: int = 0  # jobs without a reference benchmark
    basis: str = ""


def calibrate(reference_jobs: list[Job], reference: Context, benchmark_root: str | Path) -> dict[tuple, dict]:
    """calibration key (`calibration_keys`) -> seconds per unit of work (wall `s` and CPU
    `cpu_time`), from the reference jobs whose benchmark file exists."""
    sums: dict[tuple, dict] = defaultdict(lambda: {"work": 0.0, "s": 0.0, "cpu_time": 0.0, "jobs": 0})
    for job in reference_jobs:
        if not job.benchmark:
            continue
        path = Path(benchmark_root) / job.benchmark
        if not path.exists():
            continue
        measured = read_benchmark(path)
        amount = work(job, reference)
        if amount <= 0:
            continue
        cpu = measured["cpu_time"] if not math.isnan(measured["cpu_time"]) else measured["s"]
        for key in calibration_keys(job):
            sums[key]["work"] += amount
            sums[key]["s"] += measured["s"]
            sums[key]["cpu_time"] += cpu
            sums[key]["jobs"] += 1
    return {key: {"s": v["s"] / v["work"], "cpu_time": v["cpu_time"] / v["work"], "jobs": v["jobs"]}
            for key, v in sums.items()}


# --------------------------------------------------------------------------------------
# Rates from GPU figures (bench/gpu.sh: gpu_checks.json, methods_gpu.json)

GPU_RULES = frozenset({"train_classifier", "train_label_randomized", "train_localizer", "saliency",
                       "label_randomized_saliency", "randomized_saliency"})
# Rules whose GPU rate is another rule's per unit of work (the same computation, another model).
SAME_RATE = {"train_label_randomized": "train_classifier", "label_randomized_saliency": "saliency"}
TRAIN_STEPS = ("bf16_channels_last", "bf16", "fp32")  # what the workflow trains with on CUDA, first


def method_seconds_per_map(arch_figures: dict, method: str, settings: dict, size: int = 320) -> float:
    """Seconds per map of ``method`` at the figures' size (``size`` px): the measured time when the
    figures have the method, scaled by the passes of ``settings`` over the measured settings' passes;
    else its passes times the figures' batched pass time per image (efficiency 1)."""
    passes = salaudit_methods.passes_per_image(method, settings, image_size=size)
    measured = arch_figures.get("methods", {}).get(method)
    if measured and measured.get("seconds_per_map"):
        measured_passes = max(measured.get("passes") or 1, 1)
        return measured["seconds_per_map"] * max(passes, 1) / measured_passes
    return passes * float(arch_figures.get("reference_pass_s_per_image") or 0.0)


def gpu_rates(checks: dict, methods: dict, target: Context, cpu_rates: dict[tuple, dict]) -> dict[tuple, dict]:
    """Seconds per unit of `SCALING` work on the GPU of the figures, for the torch rules:

    * ``train_classifier``: 1 / (training images/s x S_ref^2) from ``gpu_checks.json``
      (``train_step/<arch>/bf16_channels_last``, else bf16, else fp32);
    * ``saliency`` / ``randomized_saliency``: the target config's methods' seconds per map at
      S_ref (`method_seconds_per_map`, from ``methods_gpu.json``) over S_ref^2 x passes per image;
    * ``train_localizer`` (no GPU figure): the CPU reference's rate times the classifiers' GPU
      over CPU ratio (assumed: a localizer gains what the classifiers gain).

    Work scales with S^2 from S_ref (the figures' size): an assumption for sizes far from it."""
    rates: dict[tuple, dict] = {}
    size = float(checks.get("size") or 320) ** 2
    steps = checks.get("checks") or {}
    for arch in sorted({name.split("/")[1] for name in steps if name.startswith("train_step/")}):
        usable = [(kind, steps.get(f"train_step/{arch}/{kind}") or {}) for kind in TRAIN_STEPS]
        kind, check = next(((k, c) for k, c in usable if c.get("ok") and c.get("images_per_s")), (None, None))
        if check:
            rates[("train_classifier", arch)] = {"s": 1.0 / (check["images_per_s"] * size), "basis": f"{kind} training step"}
    msize = float(methods.get("size") or 320) ** 2
    configured = saliency_methods(target.config)
    passes = passes_per_image(target.config)
    for arch, figures in (methods.get("archs") or {}).items():
        per_map = sum(method_seconds_per_map(figures, m, settings, int(methods.get("size") or 320))
                      for m, settings in configured.items())
        per_map += float(figures.get("reference_pass_s_per_image") or 0.0)  # the shared target forward (as 1 pass)
        for rule in ("saliency", "randomized_saliency"):
            rates[(rule, arch)] = {"s": per_map / (msize * passes), "basis": "methods' seconds per map"}
    ratios = [rates[("train_classifier", arch)]["s"] / cpu_rates[("train_classifier", arch)]["s"]
              for arch in {k[1] for k in rates if k[0] == "train_classifier"} if ("train_classifier", arch) in cpu_rates]
    if ratios:
        speedup = float(sum(ratios) / len(ratios))
        for key, rate in cpu_rates.items():
            if key[0] == "train_localizer":
                rates[key] = {"s": rate["s"] * speedup, "basis": "CPU rate x the classifiers' GPU/CPU ratio"}
    for key in list(rates):
        for rule, like in SAME_RATE.items():
            if key[0] == like:
                rates[(rule, *key[1:])] = dict(rates[key])
    for rate in rates.values():
        rate.setdefault("cpu_time", rate["s"])
    for key in cpu_rates:  # a more specific CPU key (e.g. the randomization mode) must not win
        if len(key) > 2 and key[:2] in rates:
            rates[key] = rates[key[:2]]
    return rates


# Targets without a command: Snakemake never runs (or submits) anything for them.
NOT_JOBS = frozenset({"all"})


def estimate(pending: list[Job], target: Context, rates: dict[tuple, dict], gpu_rules_on_gpu: bool,
             gpu_rules: frozenset[str] = frozenset()) -> list[RuleEstimate]:
    """Per rule: job count and hours of the pending jobs. A job that asks for a GPU
    (resources gpu > 0, i.e. device: cuda), or whose rule is in ``gpu_rules`` (the torch rules
    when the rates come from GPU figures), counts as GPU hours (its scaled wall time), any
    other job as CPU hours (its scaled CPU time, i.e. core-hours)."""
    rows: dict[str, RuleEstimate] = {}
    for job in pending:
        if job.rule in NOT_JOBS:
            continue
        row = rows.setdefault(job.rule, RuleEstimate(job.rule, basis=SCALING[job.rule].doc if job.rule in SCALING
                                                     else "seconds per job as in the reference run"))
        row.jobs += 1
        rate = next((rates[key] for key in calibration_keys(job) if key in rates), None)
        if rate is None:
            row.unestimated += 1
            continue
        amount = work(job, target)
        on_gpu = (gpu_rules_on_gpu and job.gpus > 0) or job.rule in gpu_rules
        if on_gpu:
            row.gpu_jobs += 1
            row.gpu_hours += amount * rate["s"] / 3600
        else:
            row.cpu_hours += amount * rate["cpu_time"] / 3600
    return list(rows.values())


def format_table(rows: list[RuleEstimate]) -> str:
    lines = [f"{'rule':<22}{'jobs':>6}{'GPU jobs':>10}{'CPU h':>10}{'GPU h':>10}  basis"]
    for r in rows:
        note = f" ({r.unestimated} without a reference benchmark: not estimated)" if r.unestimated else ""
        lines.append(f"{r.rule:<22}{r.jobs:>6}{r.gpu_jobs:>10}{r.cpu_hours:>10.2f}{r.gpu_hours:>10.2f}  {r.basis}{note}")
    total_jobs = sum(r.jobs for r in rows)
    lines.append(f"{'total':<22}{total_jobs:>6}{sum(r.gpu_jobs for r in rows):>10}"
                 f"{sum(r.cpu_hours for r in rows):>10.2f}{sum(r.gpu_hours for r in rows):>10.2f}")
    return "\n".join(lines)
