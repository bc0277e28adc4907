"""Pipeline benchmarks (issue 7, items 4-6): overhead, end to end, no-op rerun, memory, scaling.

    python bench/pipeline.py demo    --workdir results/bench/demo    --out results/bench/pipeline.json
    python bench/pipeline.py analyze --workdir results/bench/demo    --out results/bench/pipeline.json
    python bench/pipeline.py scaling --workdir results/bench/demo    --out results/bench/scaling.json

``demo`` runs the workflow (``snakemake --cores N``) in a scratch working directory
(``--directory``, so the repository's own results/ are never touched) under ``/usr/bin/time
-v`` (peak RSS of snakemake and its children), then a no-op rerun, then ``analyze``.

``analyze`` reads the ``benchmarks/**.tsv`` files (Snakemake ``benchmark:``; ``s`` = wall
seconds of the job, ``max_rss`` MB) and the saliency job logs of a finished run:

* per-stage breakdown: jobs, summed and max job seconds, max RSS;
* overhead (item 4): for rules ``saliency`` and ``randomized_saliency``, 1 − compute / wall,
  compute from the ``TIMING {...}`` line of the job log (``compute_s``), wall = the job's
  benchmark ``s``; without a TIMING line, 1 − (startup+load+write absent) cannot be split and
  the job is listed as unmeasured. Jobs that do not exist yet (rule not in the workflow) give N/A.

``scaling`` (item 6): the demo has only 12 positive test images per dataset, too few for
n_eval = 32, so it runs a shrunk copy of the demo config (one dataset with enough images, one
architecture, 2 folds, 1 epoch: the cost of a map does not depend on how well the model is
trained) in its own scratch directory, once per n_eval with ``--config n_eval=N --forcerun
eval_images``. The classifiers do not depend on eval_images.csv, so they are trained once and
reused; only the evaluation-image consumers (saliency, randomized saliency, localizer maps)
rerun. The saliency stage and the evaluation (``score``: SSIM pairs and the random-pair
baseline, where a quadratic step could hide) are timed from their benchmark files; each is fit
by t = a + b·n, and both must be linear. Until the
workflow has a ``saliency`` rule the result is N/A and nothing runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

import benchlib as B  # bench/benchlib.py (bench/ is this script's folder)
from salaudit import config
from salaudit.registry import CONTROLS

REPO = Path(__file__).resolve().parents[1]

SALIENCY_RULES = ("saliency", "randomized_saliency")
# the evaluation: SSIM pairs, random-pair baseline, AUPRC (where a quadratic step could hide)
SCORE_RULES = ("score",)


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=["demo", "analyze", "scaling"])
    p.add_argument("--workdir", default="results/bench/demo", help="scratch Snakemake working directory")
    p.add_argument("--configfile", default=None, help="default: the repository's config.yaml")
    p.add_argument("--config", nargs="*", default=[], help="extra --config KEY=VALUE for snakemake")
    p.add_argument("--cores", default="2")
    p.add_argument("--n-eval", nargs="+", type=int, default=[8, 16, 32])
    p.add_argument("--out", default=None)
    return p


VENV_BIN = Path(sys.executable).parent
# The jobs Snakemake starts must find this interpreter's python first (as `make` arranges).
ENV = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def snakemake_cmd(args, *extra) -> list[str]:
    cfg = args.configfile or str(REPO / "config.yaml")
    exe = VENV_BIN / "snakemake"
    cmd = [str(exe) if exe.exists() else "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(args.workdir), "--configfile", cfg,
           "--cores", str(args.cores)]
    if args.config:
        cmd += ["--config", *args.config]
    return cmd + list(extra)


def run_timed(cmd: list[str], log: Path) -> dict:
    """Run ``cmd`` under /usr/bin/time -v when available; wall seconds, exit code, peak RSS (GB)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    timev = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    full = [timev, "-v", *cmd] if timev else cmd
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        rc = subprocess.call(full, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO, env=ENV)
    wall = time.perf_counter() - t0
    text = log.read_text(errors="replace")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    return {"command": " ".join(cmd), "wall_s": wall, "returncode": rc,
            "max_rss_gb": int(m.group(1)) / 1e6 if m else None, "log": str(log)}


def collect_benchmarks(workdir: Path) -> list[dict]:
    rows = []
    root = Path(workdir) / "benchmarks"
    for path in sorted(root.rglob("*.tsv")):
        rel = path.relative_to(root).as_posix()
        for row in B.read_benchmark_tsv(path)[:1]:
            rows.append({"file": rel, "rule": B.rule_of_benchmark(rel), **row})
    return rows


def stage_breakdown(rows: list[dict]) -> dict:
    stages: dict[str, dict] = {}
    for r in rows:
        s = stages.setdefault(r["rule"], {"jobs": 0, "sum_s": 0.0, "max_s": 0.0, "max_rss_mb": 0.0})
        s["jobs"] += 1
        s["sum_s"] += r.get("s") or 0.0
        s["max_s"] = max(s["max_s"], r.get("s") or 0.0)
        s["max_rss_mb"] = max(s["max_rss_mb"], r.get("max_rss") or 0.0)
    return stages


def log_of_benchmark(workdir: Path, rel: str) -> Path:
    """benchmarks/X/Y.tsv → logs/X/Y.log (the README's mirroring convention)."""
    return Path(workdir) / "logs" / Path(rel).with_suffix(".log")


def saliency_overhead(workdir: Path, rows: list[dict]) -> dict:
    jobs, wall, compute = [], 0.0, 0.0
    for r in rows:
        if r["rule"] not in SALIENCY_RULES:
            continue
        log = log_of_benchmark(workdir, r["file"])
        timing = B.parse_timing(log.read_text(errors="replace")) if log.exists() else None
        job = {"file": r["file"], "wall_s": r.get("s"), "timing": timing}
        if timing and r.get("s"):
            job["overhead"] = B.overhead_share(r["s"], timing.get("compute_s"))
            wall += r["s"]
            compute += timing.get("compute_s") or 0.0
        jobs.append(job)
    share = B.overhead_share(wall, compute) if wall else None
    return {"jobs": jobs, "wall_s": wall, "compute_s": compute, "overhead": share,
            "verdict": B.check("overhead", share),
            "note": None if jobs else "no saliency / randomized_saliency benchmark files: rules not in this workflow yet"}


def training_throughput(workdir: Path, rows: list[dict]) -> dict:
    """Per architecture: classifier jobs, mean training images/s (``train_images_per_s`` of
    each fold's metrics.json: images trained / seconds of the training epochs, validation
    included), mean job seconds (benchmark ``s``: start-up, loading, test predictions and
    saving too) and the memory format used."""
    seconds = {r["file"]: r.get("s") for r in rows if r["rule"] == "train_classifier"}
    out: dict[str, dict] = {}
    for path in sorted(Path(workdir).glob("results/*/models/*/fold*/metrics.json")):
        m = json.loads(path.read_text())
        dataset, arch, fold = path.parts[-5], path.parts[-3], path.parts[-2]
        a = out.setdefault(arch, {"jobs": 0, "images_per_s": [], "job_s": [], "memory_format": set()})
        a["jobs"] += 1
        a["images_per_s"].append(m.get("train_images_per_s"))
        a["job_s"].append(seconds.get(f"{dataset}/models/{arch}/{fold}/train.tsv"))
        a["memory_format"].add(m.get("memory_format", "contiguous"))
    for a in out.values():
        a["images_per_s"] = float(np.mean([v for v in a["images_per_s"] if v])) if any(a["images_per_s"]) else None
        a["job_s"] = float(np.mean([v for v in a["job_s"] if v])) if any(a["job_s"]) else None
        a["memory_format"] = "/".join(sorted(a["memory_format"]))
    return out




def headline(workdir: Path) -> dict | None:
    """The paper's headline on a finished run (issue 13's demo target 4), per dataset: the
    localizer's mean AUPRC above the average mask's and every saliency method's; every control
    gets the verdicts it must (``tables/controls.csv``: the README's table); GBP FAILs
    randomization; no trained map degenerate outside the controls. None when the run has no
    scorecard."""
    results = Path(workdir) / "results"
    if not (results / "scorecard.csv").exists():
        return None
    card = pd.read_csv(results / "scorecard.csv")
    utility = pd.read_csv(results / "tables" / "utility.csv")
    controls = pd.read_csv(results / "tables" / "controls.csv")
    scores = {}
    for dataset, rows in utility.groupby("dataset"):
        mean = {(r.source, r.method): r.mean_auprc for r in rows.itertuples()}
        localizer = next(v for (src, _), v in mean.items() if src == "localizer")
        methods = {m: v for (src, m), v in mean.items() if src == "trained" and m not in CONTROLS}
        best = max(methods, key=methods.get)
        ds = card[card["dataset"] == dataset]
        checked = controls[controls["dataset"] == dataset]
        controls_ok = bool(len(checked)) and bool(checked["ok"].astype(str).eq("True").all())
        gbp = ds[(ds["method"] == "gbp") & (ds["criterion"] == "randomization")]["verdict"].tolist()
        degenerate = 0  # the trained models' maps: every one is scored in scores/utility.csv
        path = results / dataset / "scores" / "utility.csv"
        if path.exists():
            t = pd.read_csv(path, keep_default_na=False)
            degenerate = int(((t["source"] == "trained") & ~t["method"].isin(CONTROLS) & (t["reason"] != "")).sum())
        checks = {
            "localizer_beats_average_mask": bool(localizer > mean[("average_mask", "average_mask")]),
            "localizer_beats_every_method": bool(localizer > methods[best]),
            "controls_get_their_verdicts": controls_ok,
            "gbp_fails_randomization": gbp == ["FAIL"],
            "no_degenerate_trained_maps": degenerate == 0,
        }
        scores[dataset] = {"localizer": float(localizer), "average_mask": float(mean[("average_mask", "average_mask")]),
                           "best_method": best, "best_method_auprc": float(methods[best]),
                           "degenerate_trained_maps": degenerate, "checks": checks,
                           "verdict": "PASS" if all(checks.values()) else "MISS"}
    return scores


def analyze(args, extra: dict | None = None) -> dict:
    workdir = Path(args.workdir)
    rows = collect_benchmarks(workdir)
    stages = stage_breakdown(rows)
    peak_job_gb = max((r.get("max_rss") or 0.0 for r in rows), default=0.0) / 1000
    # Jobs run side by side: the sum of the `cores` largest job peaks bounds the machine's peak.
    cores = int(getattr(args, "cores", 2) or 2)
    top = sorted((r.get("max_rss") or 0.0 for r in rows), reverse=True)[:cores]
    result = {"kind": "pipeline", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": B.machine_info(), "workdir": str(workdir), "stages": stages,
              "peak_job_rss_gb": peak_job_gb,
              "concurrent_upper_bound_gb": sum(top) / 1000, "overhead": saliency_overhead(workdir, rows),
              "training": training_throughput(workdir, rows), "headline": headline(workdir)}
    if extra:
        result.update(extra)
    snake_gb = (extra or {}).get("run", {}).get("max_rss_gb")
    peak = max(peak_job_gb, snake_gb or 0.0) if rows or snake_gb else None
    result["peak_memory_gb"] = peak
    result["verdicts"] = {
        "overhead": result["overhead"]["verdict"],
        "demo_wall": B.check("demo_wall", (extra or {}).get("run", {}).get("wall_s")),
        "noop_rerun": B.check("noop_rerun", (extra or {}).get("noop", {}).get("wall_s")),
        "peak_memory": B.check("peak_memory", peak),
    }
    if result["headline"]:
        result["verdicts"]["headline"] = "PASS" if all(h["verdict"] == "PASS" for h in result["headline"].values()) else "MISS"
    return result


def demo(args) -> dict:
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    run = run_timed(snakemake_cmd(args), workdir / "bench_run.log")
    noop = run_timed(snakemake_cmd(args), workdir / "bench_noop.log")
    noop["nothing_to_do"] = "Nothing to be done" in Path(noop["log"]).read_text(errors="replace")
    return analyze(args, {"run": run, "noop": noop, "cores": args.cores})


def stage_seconds(workdir: Path, rules=SALIENCY_RULES) -> float:
    """Sum of the ``s`` of the benchmark files of ``rules`` (each run rewrites the files of the
    jobs it ran)."""
    return sum(r.get("s") or 0.0 for r in collect_benchmarks(workdir) if r["rule"] in rules)


def workflow_rules(args) -> list[str]:
    out = subprocess.run(snakemake_cmd(args, "--list-rules"), capture_output=True, text=True, cwd=REPO, env=ENV)
    return out.stdout.split()


def scaling_config(base: Path, target: Path, n_max: int) -> Path:
    """The demo config shrunk to what scaling needs: one dataset with enough positive test images
    for ``n_max`` (the 120-image demo has 12), one architecture, 2 folds, 1 epoch: the maps' cost
    does not depend on how well the model is trained."""
    import yaml

    cfg = yaml.safe_load(base.read_text())
    resolved = config.resolve(cfg)  # the schema's defaults where the file leaves a key out
    name, spec = next(iter(cfg["datasets"].items()))
    frac = resolved["test_fraction"] * resolved["datasets"][name]["demo"]["positive_fraction"]
    spec["demo"]["n_images"] = int(np.ceil(n_max / frac * 1.1))
    cfg["datasets"] = {name: spec}
    cfg["folds"] = 2
    cfg["classifiers"]["archs"] = cfg["classifiers"]["archs"][:1]
    cfg["classifiers"]["epochs"] = 1
    cfg["localizers"]["epochs"] = 1
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return target


def scaling(args) -> dict:
    base = {"kind": "scaling", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": B.machine_info(), "points": [], "fit": None}
    if not set(SALIENCY_RULES) & set(workflow_rules(args)):
        return {**base, "verdict": "N/A", "note": "rule `saliency` is not in this workflow yet: nothing to scale"}
    workdir = Path(args.workdir)
    args.configfile = str(scaling_config(Path(args.configfile or REPO / "config.yaml"), workdir / "scaling_config.yaml",
                                         max(args.n_eval)))
    extra = [c for c in args.config if not c.startswith("n_eval=")]
    points = []
    for n in args.n_eval:
        args.config = extra + [f"n_eval={n}"]
        res = run_timed(snakemake_cmd(args, "--forcerun", "eval_images"), workdir / f"bench_scaling_{n}.log")
        used = [len(pd.read_csv(p)) for p in workdir.glob("results/*/eval_images.csv")]
        points.append({"n_eval": n, "eval_images": used, "snakemake_wall_s": res["wall_s"],
                       "returncode": res["returncode"], "saliency_s": stage_seconds(workdir),
                       "score_s": stage_seconds(workdir, SCORE_RULES)})
    valid = [p for p in points if p["returncode"] == 0 and all(u == p["n_eval"] for u in p["eval_images"])]

    def fit_of(key):
        measured = [(p["n_eval"], p[key]) for p in valid if p[key] > 0]
        return B.linear_fit(*zip(*measured)) if len({n for n, _ in measured}) >= 2 else None

    fit, score_fit = fit_of("saliency_s"), fit_of("score_s")
    verdict = "N/A" if fit is None else ("PASS" if fit["linear"] and (score_fit or {}).get("linear", True) else "MISS")
    return {**base, "config": args.configfile, "points": points, "fit": fit, "score_fit": score_fit,
            "verdict": verdict, "note": None if fit else "fewer than two valid sizes measured (see points)"}


def main(args):
    out = Path(args.out or f"results/bench/{'scaling' if args.action == 'scaling' else 'pipeline'}.json")
    result = {"demo": demo, "analyze": analyze, "scaling": scaling}[args.action](args)
    result["command"] = " ".join(["python", "bench/pipeline.py", *sys.argv[1:]])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=float))
    print(json.dumps({k: result.get(k) for k in ("verdicts", "verdict", "fit", "peak_memory_gb")}, default=float))
    return result


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main(get_args_parser().parse_args())
