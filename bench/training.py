"""Classifier training throughput per architecture and memory format (issue 13, item 5).

    python bench/training.py --size 96 --batch 16 --threads 1 --out results/bench/training.json

For each architecture and memory format (contiguous, channels-last): images/s of full training
steps (forward, cross-entropy, backward, Adam: `gpu_checks.train_steps`, the GPU checks' step,
here in full precision on the CPU), ``--steps`` steps after one warm-up, on one process with
``--threads`` torch threads: the demo's
training jobs run so, two at a time on 2 cores. ``classifiers.memory_format: auto`` takes the
faster format on a CPU from the registry (`salaudit.registry.ArchSpec.cpu_channels_last`);
this benchmark is what that choice rests on. Never a test: it reports, it does not judge.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

# bench/ is this script's folder, so its helpers import as modules
import benchlib as B
from gpu_checks import train_steps
from salaudit import registry

FORMATS = {"contiguous": False, "channels_last": True}  # name -> train_steps(channels_last=...)


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", nargs="+", default=["inception_v3", "densenet121"])
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=5, help="timed steps per architecture and format")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="results/bench/training.json")
    return p


def main(args) -> dict:
    torch.set_num_threads(args.threads)
    report = {"kind": "training", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": B.machine_info(), "size": args.size, "batch": args.batch, "threads": args.threads,
              "command": " ".join(["python"] + sys.argv), "archs": {}}
    for arch in args.arch:
        rates = {name: train_steps(arch, args.size, args.batch, args.steps, torch.device("cpu"), bf16=False,
                                   channels_last=channels_last)["images_per_s"]
                 for name, channels_last in FORMATS.items()}
        auto = "channels_last" if registry.get_spec(arch).cpu_channels_last else "contiguous"
        report["archs"][arch] = {"images_per_s": rates, "auto_on_cpu": auto,
                                 "channels_last_speedup": rates["channels_last"] / rates["contiguous"]}
        print(f"{arch}: " + ", ".join(f"{k} {v:.1f} img/s" for k, v in rates.items()) + f"; auto on CPU: {auto}",
              flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main(get_args_parser().parse_args())
