"""Estimate the CPU and GPU hours of a workflow run from a previous run's benchmarks.

    python tools/estimate.py --configfile config/paper.yaml
    make estimate CONFIG=config/paper.yaml

The pending jobs are those of `snakemake --dry-run --configfile CONFIG` in --workdir; the
timings come from the `benchmarks/` of a reference run (by default the demo run in this
folder, `make demo`, with config.yaml), scaled by the rules of `cost_model.SCALING`.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import yaml

import cost_model as est  # tools/cost_model.py (tools/ is this script's folder)

REPO = Path(__file__).resolve().parents[1]


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", required=True, help="config of the run to estimate")
    parser.add_argument("--workdir", default=".", help="working folder of that run (its pending jobs are estimated)")
    parser.add_argument("--forceall", action="store_true", help="estimate every job, not only the pending ones")
    parser.add_argument("--reference-config", default=str(REPO / "config.yaml"),
                        help="config of the run whose benchmarks calibrate the estimate (default: the demo)")
    parser.add_argument("--reference-dir", default=".",
                        help="working folder of the reference run, holding its benchmarks/ (default: .)")
    parser.add_argument("--snakefile", default=str(REPO / "Snakefile"))
    parser.add_argument("--gpu-figures", default=None,
                        help="folder with bench/gpu.sh's gpu_checks.json and methods_gpu.json (e.g. bench/gpu_results): "
                             "also estimate the torch jobs on that GPU, one job at a time")
    return parser


def dry_run(snakefile: str, workdir: str, configfile: str, forceall: bool) -> list[est.Job]:
    """The jobs Snakemake would run. `--workflow-profile none`: the listing must not depend
    on a profile's output options; `--nolock`: the folder may be in use by a run."""
    command = ["snakemake", "-s", snakefile, "-d", workdir, "--configfile", configfile, "--dry-run", "--nolock",
               "--workflow-profile", "none", *(["--forceall"] if forceall else [])]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return est.parse_dry_run(result.stdout + "\n" + result.stderr)


def load_config(path: str) -> dict:
    """The config as the workflow sees it: the schema fills in the defaults."""
    from snakemake.utils import validate

    from salaudit.config import SCHEMA_PATH

    config = yaml.safe_load(Path(path).read_text()) or {}
    validate(config, SCHEMA_PATH)
    return config


def main(args: argparse.Namespace) -> None:
    target_config = load_config(args.configfile)
    reference_config = load_config(args.reference_config)
    pending = dry_run(args.snakefile, args.workdir, args.configfile, args.forceall)
    reference_jobs = dry_run(args.snakefile, args.reference_dir, args.reference_config, forceall=True)

    target = est.Context(target_config, est.dataset_sizes(target_config, args.workdir))
    reference = est.Context(reference_config, est.dataset_sizes(reference_config, args.reference_dir))
    rates = est.calibrate(reference_jobs, reference, args.reference_dir)
    on_gpu = target_config.get("device") == "cuda"
    rows = est.estimate(pending, target, rates, gpu_rules_on_gpu=on_gpu)

    print(f"Pending work of {args.configfile} in {Path(args.workdir).resolve()}"
          f" ({'all jobs' if args.forceall else 'jobs not yet done'}),")
    measured = sum(1 for job in reference_jobs if job.benchmark and (Path(args.reference_dir) / job.benchmark).exists())
    print(f"calibrated on {measured} benchmark files of {args.reference_config}"
          f" in {Path(args.reference_dir).resolve() / 'benchmarks'}:")
    print(f"datasets: {', '.join(f'{n} {s} images' for n, s in target.sizes.items())};"
          f" image_size {target_config['image_size']}, n_eval {target_config['n_eval']},"
          f" {len(est.saliency_methods(target_config))} saliency methods"
          f" ({est.passes_per_image(target_config)} passes per image per model)\n")
    print(est.format_table(rows) if rows else "Nothing pending.")
    print("\nCPU h = core-hours (benchmark cpu_time, scaled); GPU h = wall hours of jobs that request a GPU"
          " (device: cuda), scaled from the reference's wall time." if rows else "")
    if on_gpu:
        print("The GPU speed-up is not modelled: GPU hours are the reference's timings scaled, so they are"
              " the CPU figure unless the reference benchmarks were measured on a GPU (then pass that run"
              " as --reference-dir/--reference-config).")
    print("Training hours assume every epoch runs (early stopping ends sooner); queueing and jobs"
          " competing for cores are not included.")
    if args.gpu_figures:
        gpu_table(args.gpu_figures, pending, target, rates)


def gpu_table(folder: str, pending: list[est.Job], target: est.Context, rates: dict) -> None:
    """The pending jobs with the torch rules on the GPU of the figures in ``folder``."""
    import json

    folder = Path(folder)
    checks, methods = (json.loads((folder / name).read_text()) for name in ("gpu_checks.json", "methods_gpu.json"))
    gpu = est.gpu_rates(checks, methods, target, rates)
    rows = est.estimate(pending, target, {**rates, **gpu}, gpu_rules_on_gpu=False, gpu_rules=est.GPU_RULES)
    machine = methods.get("machine") or checks.get("machine") or {}
    print(f"\nOn one {machine.get('gpu', 'GPU')} (figures of {folder}: methods measured {methods.get('date', '?')}, "
          f"{checks.get('size')} px training steps), torch jobs one at a time:\n")
    print(est.format_table(rows))
    gpu_rows = sorted((r for r in rows if r.gpu_hours), key=lambda r: -r.gpu_hours)
    if gpu_rows:
        total = sum(r.gpu_hours for r in gpu_rows)
        share = ", ".join(f"{r.rule} {r.gpu_hours:.2f} h ({r.gpu_hours / total:.0%})" for r in gpu_rows)
        print(f"\nGPU hours: {total:.2f} in all: {share}.")
        for key in sorted(k for k in gpu if k[0] in ("saliency", "train_localizer")):
            print(f"  {' '.join(key)}: {gpu[key]['basis']}")


if __name__ == "__main__":
    main(get_args_parser().parse_args())
