"""Print PASS/MISS per target and regenerate the measured section of BENCHMARKS.md.

    python bench/report.py [--results results/bench] [--benchmarks BENCHMARKS.md]

Reads what the other bench scripts wrote (missing files are reported as not measured):
``methods.json`` (CPU, items 1-3), ``methods_gpu.json`` + ``gpu_checks.json`` (GPU; looked up in
``--results``, then in ``bench/gpu_results/``, where the last GPU run is kept in git because
most machines have no GPU), ``pipeline.json`` (items 4-5), ``scaling.json`` (item 6).
Only the text between the ``BEGIN/END GENERATED`` markers of BENCHMARKS.md is replaced.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import benchlib as B  # bench/benchlib.py (bench/ is this script's folder)
from salaudit.registry import DISPLAY_NAMES

REPO = Path(__file__).resolve().parents[1]

GPU_FALLBACK = REPO / "bench" / "gpu_results"


def load(results: Path, name: str, fallback: Path | None = None) -> dict | None:
    for folder in (results, fallback):
        if folder and (folder / name).is_file():
            return json.loads((folder / name).read_text())
    return None


def cache_text(c: dict, first: str) -> str:
    """The XRAI segment-cache sentence of one measurement (`bench/methods.py` ``xrai_parts``)."""
    f = B.fmt
    return (f"{first} model {f(c['first_model_s_per_map'])} s/map, second model with the segment cache "
            f"{f(c['second_model_s_per_map'])} s/map: ratio {f(c['cache_ratio'])} (target ≤ 0.5) "
            f"**{c['verdict_cache']}**.")


def methods_section(data: dict, title: str, label: str, verdicts: list) -> list[str]:
    f = B.fmt
    # A run with overridden settings is not the configured benchmark: say so in every verdict row.
    tag = f"{label} (settings overridden)" if data.get("settings_overrides") else label
    lines = [f"### {title}", "",
             f"Machine: {B.describe_machine(data.get('machine'))}; device `{data.get('device')}`, "
             f"{data.get('size')} px, batch {data.get('batch')}, torch threads {data.get('torch_threads')}; "
             f"{data.get('date')}.", f"Command: `{data.get('command')}`", ""]
    for arch, res in data.get("archs", {}).items():
        if "error" in res:
            lines += [f"**{arch}**: failed: {res['error']}", ""]
            continue
        pp = res.get("postprocess", {})
        lines += [f"**{arch}** — one batched forward+backward pass: {f(res.get('reference_pass_s'), 4)} s "
                  f"({f(1000 * res['reference_pass_s_per_image'], 2)} ms/image). Post-processing "
                  f"(`methods.postprocess`, CPU float64): {f(1000 * pp.get('current_s_per_map', float('nan')), 3)} ms/map; "
                  f"on the device in float32: {f(1000 * pp.get('on_device_s_per_map', float('nan')), 3)} ms/map.", "",
                  "| method | P | maps | s/map | maps/s | efficiency | usual s/map (batch 1) | speed-up | verdicts |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for m, e in res.get("methods", {}).items():
            if "error" in e:
                lines.append(f"| {DISPLAY_NAMES.get(m, m)} | {e.get('passes')} | failed: {e['error'][:80]} |||||||")
                continue
            usual = e.get("usual", {})
            vs = []
            for key, label in (("verdict_efficiency", "efficiency"), ("verdict_speedup", "speed-up")):
                if key in e:
                    vs.append(f"{label} {e[key]}")
                    verdicts.append((f"{tag} {arch} {DISPLAY_NAMES.get(m, m)} {label}", e[key]))
            lines.append(f"| {DISPLAY_NAMES.get(m, m)} | {e.get('passes')} | {e.get('n_maps')} | "
                         f"{f(e.get('seconds_per_map'), 4)} | {f(e.get('maps_per_s'), 1)} | {f(e.get('efficiency'))} | "
                         f"{f(usual.get('seconds_per_map'), 4)} | {f(e.get('speedup'), 1, '×')} | {', '.join(vs) or '—'} |")
        x = res.get("methods", {}).get("xrai", {}).get("parts")
        if x and "error" not in x:
            steps = x.get("steps")
            at = f", {2 * steps} passes" if steps else ""
            verdicts.append((f"{tag} {arch} XRAI segment cache{at}", x["verdict_cache"]))
            lines += ["", f"XRAI per image ({x['n_images']} images{at}): segmentation {f(x['segmentation_s_per_image'])} s, "
                      f"IG passes (black + white) {f(x['passes_s_per_image'])} s, region selection "
                      f"{f(x['region_selection_s_per_image'])} s. {cache_text(x, 'First')}"]
            c = x.get("configured")
            if c:
                verdicts.append((f"{tag} {arch} XRAI segment cache, {2 * c['steps']} passes (config.yaml)",
                                 c["verdict_cache"]))
                lines += ["", f"At `config.yaml`'s `saliency.xrai.steps: {c['steps']}` ({2 * c['steps']} passes): "
                          + cache_text(c, "first")]
        lines.append("")
    return lines


def checks_section(data: dict) -> list[str]:
    lines = [f"### CUDA path checks ({B.describe_machine(data.get('machine'))})", "",
             f"Command: `{data.get('command')}` — all ok: **{data.get('all_ok')}**", "",
             "| check | ok | detail |", "|---|---|---|"]
    for name, c in data.get("checks", {}).items():
        def show(v):
            if isinstance(v, dict):
                return "(" + ", ".join(f"{k} {B.fmt(x, 4)}" for k, x in v.items()) + ")"
            return B.fmt(v, 3)

        detail = c.get("error") or ", ".join(
            f"{k} {show(v)}" for k, v in c.items() if k in ("images_per_s", "seconds", "fp32", "tf32") and v is not None)
        lines.append(f"| {name} | {c.get('ok')} | {detail} |")
    return lines + [""]


def ab_section(cur: dict, new: dict) -> list[str]:
    """The proposed on-device post-processing against the current one, same machine, same call."""
    f = B.fmt
    lines = ["### Proposed fix measured: post-processing on the device (GPU)", "",
             f"Machine: {B.describe_machine(cur.get('machine'))}; {cur.get('size')} px, batch {cur.get('batch')}, "
             "paper settings; both variants in one call (by `bench/gpu.sh --postprocess-ab`, a mode removed once the "
             "fix went into `salaudit.methods`; its JSON stays in `bench/gpu_results/ab_*.json`). "
             "ms per map (efficiency):", "",
             "| arch | method | current | on the device |", "|---|---|---|---|"]
    for arch, res in cur.get("archs", {}).items():
        other = new.get("archs", {}).get(arch, {}).get("methods", {})
        for m, e in res.get("methods", {}).items():
            o = other.get(m, {})
            lines.append(f"| {arch} | {DISPLAY_NAMES.get(m, m)} | {f(1000 * e.get('seconds_per_map', float('nan')))} "
                         f"({f(e.get('efficiency'))}) | {f(1000 * o.get('seconds_per_map', float('nan')))} "
                         f"({f(o.get('efficiency'))}) |")
    return lines + [""]


def training_section(t: dict | None) -> list[str]:
    """`bench/training.py`: training images/s per architecture and memory format (issue 13)."""
    lines = ["### Classifier training throughput (issue 13)", ""]
    if not t:
        return lines + ["Not measured yet: `make bench` runs `bench/training.py`.", ""]
    f = B.fmt
    lines += [f"Machine: {B.describe_machine(t.get('machine'))}; {t.get('size')} px, batch {t.get('batch')}, "
              f"{t.get('threads')} torch thread(s), one process; {t.get('date')}. Command: `{t.get('command')}`", "",
              "| architecture | contiguous img/s | channels-last img/s | channels-last / contiguous | `auto` on a CPU |",
              "|---|---|---|---|---|"]
    for arch, r in t.get("archs", {}).items():
        rate = r["images_per_s"]
        lines.append(f"| {arch} | {f(rate['contiguous'], 1)} | {f(rate['channels_last'], 1)} | "
                     f"{f(r['channels_last_speedup'])} | {r['auto_on_cpu']} |")
    return lines + [""]


def pipeline_section(p: dict | None, s: dict | None, verdicts: list) -> list[str]:
    f = B.fmt
    lines = ["### Pipeline (items 4-6)", ""]
    if not p:
        lines += ["Not measured yet: `make bench` runs `bench/pipeline.py demo` (the whole demo in a scratch "
                  "directory).", ""]
    else:
        run, noop = p.get("run", {}), p.get("noop", {})
        lines += [f"Machine: {B.describe_machine(p.get('machine'))}; {p.get('date')}. Command: `{p.get('command')}`", "",
                  f"- End to end: {f(run.get('wall_s'), 0)} s wall (`{run.get('command')}`, exit {run.get('returncode')}) "
                  f"— target ≤ 600 s: **{p['verdicts']['demo_wall']}**",
                  f"- No-op rerun: {f(noop.get('wall_s'), 1)} s (nothing to do: {noop.get('nothing_to_do')}) "
                  f"— target ≤ 10 s: **{p['verdicts']['noop_rerun']}**",
                  f"- Peak memory: {f(p.get('peak_memory_gb'))} GB (jobs' max_rss {f(p.get('peak_job_rss_gb'))} GB, "
                  f"largest process under snakemake by `time -v` {f(run.get('max_rss_gb'))} GB; the {p.get('cores', 2)} largest "
                  f"jobs together at most {f(p.get('concurrent_upper_bound_gb'))} GB) — target ≤ 4 GB: "
                  f"**{p['verdicts']['peak_memory']}**",
                  f"- Saliency job overhead (1 − compute/wall): {f(p['overhead'].get('overhead'))} — target ≤ 0.10: "
                  f"**{p['verdicts']['overhead']}**" + (f" ({p['overhead']['note']})" if p['overhead'].get('note') else ""),
                  "", "| stage | jobs | sum of job s | max job s | max RSS MB |", "|---|---|---|---|---|"]
        for name, st in sorted(p.get("stages", {}).items(), key=lambda kv: -kv[1]["sum_s"]):
            lines.append(f"| {name} | {st['jobs']} | {f(st['sum_s'], 0)} | {f(st['max_s'], 0)} | {f(st['max_rss_mb'], 0)} |")
        lines.append("")
        if p.get("headline"):
            lines += ["The paper's headline on this run (localizer vs the average mask and the best saliency method, "
                      "mean AUPRC; controls; GBP's randomization; degenerate trained maps):", "",
                      "| dataset | localizer | average mask | best method | controls as they must be | GBP fails randomization "
                      "| degenerate trained maps | verdict |", "|---|---|---|---|---|---|---|---|"]
            for dataset, h in p["headline"].items():
                c = h["checks"]
                lines.append(f"| {dataset} | {f(h['localizer'])} | {f(h['average_mask'])} | "
                             f"{DISPLAY_NAMES.get(h['best_method'], h['best_method'])} {f(h['best_method_auprc'])} | "
                             # runs before the controls' table checked RANDOM only ("fail everything")
                             f"{c.get('controls_get_their_verdicts', c.get('controls_fail_everything'))} | "
                             f"{c['gbp_fails_randomization']} | "
                             f"{h['degenerate_trained_maps']} | **{h['verdict']}** |")
            lines.append("")
        if p.get("training"):
            lines += ["Classifier training (each fold's `metrics.json`: `train_images_per_s`, the training epochs "
                      "with their validation; job seconds from `benchmarks/`):", "",
                      "| architecture | jobs | training images/s | mean job s | memory format |", "|---|---|---|---|---|"]
            for arch, t in sorted(p["training"].items()):
                lines.append(f"| {arch} | {t['jobs']} | {f(t['images_per_s'], 1)} | {f(t['job_s'], 1)} | {t['memory_format']} |")
            lines.append("")
        for k, v in p["verdicts"].items():
            verdicts.append((f"pipeline {k}", v))
    if s:
        fit = s.get("fit") or {}
        pts = ", ".join(f"n={q['n_eval']}: {f(q['saliency_s'], 0)} s" for q in s.get("points", []))
        lines += [f"Scaling of the saliency stage: {pts or '—'}; t(32)/t(16) {f(fit.get('doubling_ratio'))}, "
                  f"max residual of t = a + b·n {f(fit.get('max_rel_residual'))} — **{s.get('verdict')}**"
                  + (f" ({s['note']})" if s.get("note") else "")]
        sfit = s.get("score_fit")
        if sfit:
            pts = ", ".join(f"n={q['n_eval']}: {f(q.get('score_s'), 1)} s" for q in s.get("points", []))
            lines += ["", f"Scaling of the evaluation (`score`: SSIM pairs, random-pair baseline, AUPRC): {pts}; "
                          f"t(32)/t(16) {f(sfit.get('doubling_ratio'))}, max residual {f(sfit.get('max_rel_residual'))}, "
                          f"linear: {sfit.get('linear')} (part of the verdict above)"]
        lines += ["", f"Command: `{s.get('command')}`", ""]
        verdicts.append(("pipeline scaling", s.get("verdict")))
    return lines


def main(args) -> int:
    results = Path(args.results)
    verdicts: list[tuple[str, str]] = []
    lines = [f"Regenerated by `make bench` (`bench/report.py`); targets of issue 7. Timings on a shared "
             f"machine are noisy: compare ratios taken in the same run, not absolute seconds.", ""]
    cpu = load(results, "methods.json")
    lines += methods_section(cpu, "Saliency methods, this machine (items 1-3)", "CPU", verdicts) if cpu else \
        ["### Saliency methods, this machine (items 1-3)", "", "Not measured yet: `make bench-methods`.", ""]
    gpu = load(results, "methods_gpu.json", GPU_FALLBACK)
    if gpu:
        lines += methods_section(gpu, "Saliency methods on the GPU, 320 px InceptionV3, paper settings (items 1-3)",
                                 "GPU", verdicts)
        lines += ["Reproduce on a GPU machine: `OUT=results/bench bash bench/gpu.sh` (about 2.5 min on an H200; "
                  "copy the two JSON files to `bench/gpu_results/` to keep them).", ""]
    ab = load(results, "ab_current.json", GPU_FALLBACK), load(results, "ab_on_device.json", GPU_FALLBACK)
    if all(ab):
        lines += ab_section(*ab)
    checks = load(results, "gpu_checks.json", GPU_FALLBACK)
    if checks:
        lines += checks_section(checks)
    lines += training_section(load(results, "training.json"))
    lines += pipeline_section(load(results, "pipeline.json"), load(results, "scaling.json"), verdicts)
    summary = ["| target | verdict |", "|---|---|"] + [f"| {name} | {v} |" for name, v in verdicts]
    section = "\n".join(["## Measured (generated)", "", *summary, "", *lines])
    path = Path(args.benchmarks)
    path.write_text(B.replace_generated(path.read_text() if path.exists() else "# Benchmarks\n", section))
    print(f"machine: {B.describe_machine(B.machine_info())}")
    for name, v in verdicts:
        print(f"{v:4}  {name}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default="results/bench")
    p.add_argument("--benchmarks", default=str(REPO / "BENCHMARKS.md"))
    sys.exit(main(p.parse_args()))
