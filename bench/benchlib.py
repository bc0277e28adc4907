"""Benchmark helpers (`make bench`): targets, verdicts, parsing, fits, the BENCHMARKS.md section.

The timing itself lives in ``bench/*.py``; everything here is pure (no clocks) and unit-tested,
except `machine_info`, which only reads the machine's description.

Targets (issue 7) are data, `TARGETS`: one entry per figure, with the comparison that makes it
pass. `verdict` turns a measured value into ``PASS`` / ``MISS`` (``N/A`` when not measured).
"""

from __future__ import annotations

import ast
import json
import math
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GRADIENT_METHODS = ("grad", "sg", "ig", "sig", "gcam", "gbp", "ggcam")


@dataclass(frozen=True)
class Target:
    key: str
    description: str
    threshold: float
    op: str  # ">=" or "<="
    unit: str = ""


TARGETS: dict[str, Target] = {t.key: t for t in (
    Target("efficiency", "(P x batched pass time per image) / time per map, every gradient method", 0.85, ">="),
    Target("speedup_cpu", "speed-up over one-image-at-a-time (PAIR-style) code, CPU", 1.0, ">=", "x"),
    Target("speedup_gpu", "speed-up over one-image-at-a-time (PAIR-style) code, GPU, SG/IG/SIG", 5.0, ">=", "x"),
    Target("xrai_cache", "second model's XRAI time / first model's (shared segment cache)", 0.5, "<="),
    Target("overhead", "share of saliency job wall time outside compute (start, imports, loading)", 0.10, "<="),
    Target("demo_wall", "`make demo`'s workflow wall time on 2 idle CPU cores, 5 folds (issue 13)", 600.0, "<=", "s"),
    Target("noop_rerun", "no-op rerun of snakemake", 10.0, "<=", "s"),
    Target("peak_memory", "peak memory (max RSS of any job and of snakemake)", 4.0, "<=", "GB"),
    Target("scaling", "saliency stage t(32)/t(16) (linear: 2; allowed up to 2.3) and linear fit residual <= 10 %",
           2.3, "<="),
)}


def verdict(value, threshold: float, op: str) -> str:
    """``PASS`` / ``MISS`` for ``value op threshold``; ``N/A`` when value is None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "N/A"
    if op == ">=":
        return "PASS" if value >= threshold else "MISS"
    if op == "<=":
        return "PASS" if value <= threshold else "MISS"
    raise ValueError(f"unknown comparison {op!r}")


def check(key: str, value) -> str:
    t = TARGETS[key]
    return verdict(value, t.threshold, t.op)


# --------------------------------------------------------------------------- method efficiency

def efficiency_ratio(passes: int, batch_pass_s: float, batch: int, seconds_per_map: float) -> float | None:
    """Ideal time per map over measured time per map.

    ``batch_pass_s`` is one batched forward+backward pass over ``batch`` images, so the ideal
    cost of a map that needs ``passes`` passes is ``passes * batch_pass_s / batch``; 1.0 means
    the method spends nothing beyond its passes, 0.5 twice the ideal time. None when the method
    does no passes (random) or a time is missing.
    """
    if not passes or not seconds_per_map or not batch_pass_s or seconds_per_map <= 0:
        return None
    return passes * batch_pass_s / batch / seconds_per_map


def speedup(usual_s_per_map: float | None, project_s_per_map: float | None) -> float | None:
    if not usual_s_per_map or not project_s_per_map:
        return None
    return usual_s_per_map / project_s_per_map


def parse_settings_overrides(items: list[str] | None) -> dict[str, dict]:
    """``["sg.samples=25", "xrai.steps=20"]`` → ``{"sg": {"samples": 25}, "xrai": {"steps": 20}}``.

    Values are Python literals (numbers, ``None``, quoted or bare strings).
    """
    out: dict[str, dict] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        method, dot, name = key.strip().partition(".")
        if not sep or not dot or not method or not name:
            raise ValueError(f"expected METHOD.SETTING=VALUE, got {item!r}")
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip()
        out.setdefault(method, {})[name] = value
    return out


# --------------------------------------------------------------------------- Snakemake benchmarks + logs

BENCHMARK_COLUMNS = ("s", "h:m:s", "max_rss", "max_vms", "max_uss", "max_pss", "io_in", "io_out", "mean_load",
                     "cpu_time")


def _number(text: str):
    text = text.strip()
    if text in ("", "-", "NA", "nan"):
        return None
    try:
        return float(text)
    except ValueError:
        return text


def read_benchmark_tsv(path_or_text) -> list[dict]:
    """Rows of a Snakemake ``benchmark:`` file (one per repeat), numbers as floats (``-`` → None).

    ``max_rss`` etc. are MB; ``s`` the wall seconds of the job's shell command.
    """
    text = Path(path_or_text).read_text() if isinstance(path_or_text, Path) else str(path_or_text)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    header = lines[0].split("\t")
    return [{h: (v if h == "h:m:s" else _number(v)) for h, v in zip(header, ln.split("\t"))} for ln in lines[1:]]


_TIMING = re.compile(r"^TIMING\s+(\{.*\})\s*$", re.MULTILINE)


def parse_timing(log_text: str) -> dict | None:
    """The last ``TIMING {...}`` JSON line of a job log (startup_s, load_s, compute_s, write_s), or None."""
    found = _TIMING.findall(log_text or "")
    if not found:
        return None
    try:
        return json.loads(found[-1])
    except json.JSONDecodeError:
        return None


def overhead_share(wall_s: float, compute_s: float) -> float | None:
    """1 − compute / wall (clipped to [0, 1]); None without a positive wall time."""
    if not wall_s or wall_s <= 0 or compute_s is None:
        return None
    return min(1.0, max(0.0, 1.0 - compute_s / wall_s))


def rule_of_benchmark(relpath: str) -> str:
    """Stage name of a benchmark file path relative to ``benchmarks/``.

    ``siim/maps/inception_v3/fold0/saliency.tsv`` → ``saliency``; ``.../randomized_cascade.tsv``
    → ``randomized_saliency``; ``.../models/{arch}/fold0/train.tsv`` → ``train_classifier``;
    ``.../localizers/unet/fold0/train.tsv`` → ``train_localizer``; ``demo_data/siim.tsv`` →
    ``demo_data``; otherwise the file stem.
    """
    parts = Path(relpath).parts
    stem = Path(relpath).stem
    if parts and parts[0] == "demo_data":
        return "demo_data"
    if stem.startswith("randomized_"):
        return "randomized_saliency"
    if stem == "train" and "models" in parts:
        return "train_classifier"
    if stem == "train" and "localizers" in parts:
        return "train_localizer"
    return stem


# --------------------------------------------------------------------------- scaling

def linear_fit(ns, ts) -> dict:
    """Least-squares ``t = a + b·n``; max relative residual; t(n_max)/t(n_max/2) when both measured.

    ``linear`` is True when the residuals are all within 10 % of the measured time and the
    doubling ratio (if measurable) is at most the scaling target (2.3: 2 plus noise; a hidden
    quadratic step that matters would push it towards 4).
    """
    n = np.asarray(ns, float)
    t = np.asarray(ts, float)
    if n.size < 2 or np.unique(n).size < 2:
        raise ValueError("need at least two distinct sizes")
    b, a = np.polyfit(n, t, 1)
    resid = t - (a + b * n)
    max_rel = float(np.max(np.abs(resid) / np.maximum(np.abs(t), 1e-12)))
    by_n = dict(zip(n.tolist(), t.tolist()))
    top = float(n.max())
    doubling = by_n[top] / by_n[top / 2] if (top / 2) in by_n and by_n[top / 2] > 0 else None
    linear = max_rel <= 0.10 and (doubling is None or check("scaling", doubling) == "PASS")
    return {"intercept_s": float(a), "slope_s_per_image": float(b), "max_rel_residual": max_rel,
            "doubling_ratio": doubling, "linear": bool(linear)}


# --------------------------------------------------------------------------- demo-like images

def demo_like_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """uint8 ``[n, size, size]`` smooth chest-like images (two dark lung fields, soft ribs, a blob).

    Not the demo generator (that one writes DICOM at 1024 px); these only need realistic
    structure so that XRAI's Felzenszwalb segmentation sees a normal number of segments
    (uniform noise would give thousands).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, size, size), np.uint8)
    for i in range(n):
        img = 0.75 - 0.25 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)
        for cx in (0.3 + rng.normal(0, 0.02), 0.7 + rng.normal(0, 0.02)):
            lung = ((xx - cx) / 0.16) ** 2 + ((yy - 0.5) / 0.3) ** 2
            img -= 0.45 * np.exp(-lung ** 2)
        img += 0.05 * np.sin(yy * 40 + rng.uniform(0, 6)) * (img < 0.5)
        bx, by, r = rng.uniform(0.2, 0.8), rng.uniform(0.3, 0.7), rng.uniform(0.04, 0.1)
        img += 0.25 * np.exp(-(((xx - bx) ** 2 + (yy - by) ** 2) / r ** 2))
        img += rng.normal(0, 0.02, img.shape)
        out[i] = np.clip(img * 255, 0, 255).astype(np.uint8)
    return out


# --------------------------------------------------------------------------- machine + report

def machine_info() -> dict:
    """CPU model (``/proc/cpuinfo``), usable cores, GPU name (torch) if any, torch version."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = None
    torch_version = None
    try:
        import torch

        torch_version = torch.__version__
        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - a machine description must never fail the bench
        pass
    return {"cpu": cpu, "cores": cores, "gpu": gpu, "torch": torch_version, "python": platform.python_version()}


def describe_machine(m: dict | None) -> str:
    if not m:
        return "unknown machine"
    gpu = m.get("gpu") or "no GPU"
    return f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, {gpu}; torch {m.get('torch', '?')}"


BEGIN_MARK = "<!-- BEGIN GENERATED: make bench -->"
END_MARK = "<!-- END GENERATED: make bench -->"


def replace_generated(text: str, section: str, begin: str = BEGIN_MARK, end: str = END_MARK) -> str:
    """``text`` with the part between the markers replaced by ``section`` (markers kept);
    appended at the end when the markers are absent. Hand-written parts are untouched."""
    block = f"{begin}\n{section.rstrip()}\n{end}"
    i, j = text.find(begin), text.find(end)
    if i >= 0 and j > i:
        return text[:i] + block + text[j + len(end):]
    return text.rstrip() + "\n\n" + block + "\n"


def fmt(value, digits: int = 2, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"
