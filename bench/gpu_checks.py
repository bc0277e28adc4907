"""CUDA path checks (run by bench/gpu.sh before the GPU timings).

    python bench/gpu_checks.py --device cuda --size 320 --out results/bench/gpu_checks.json

* a classifier training step (forward, loss, backward, Adam) in full precision, under the
  project's bfloat16 autocast (`salaudit.models.training.autocast`), and bf16 in channels-last
  memory format (what `classifiers.memory_format: auto` trains with on CUDA): finite loss,
  weights changed; images/s of a few steps;
* every saliency method on the device (reduced settings): shape, finite, range [0, 1];
* GRAD maps on the device match the CPU maps of the same model and images (TF32 convolutions
  on the GPU: compared with a tolerance, mean |diff| <= 0.02 and Pearson r >= 0.98).

Each check is recorded on its own (``ok``, numbers, or ``error``); the JSON is written after each.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

import benchlib as B  # bench/benchlib.py (bench/ is this script's folder)
from salaudit.saliency import methods as M
from salaudit import models
from salaudit.models import training

FAST = {"sg": {"samples": 4}, "ig": {"steps": 4}, "sig": {"samples": 2, "steps": 3}, "xrai": {"steps": 4}}


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--size", type=int, default=320)
    p.add_argument("--archs", nargs="+", default=["inception_v3", "densenet121"])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=5, help="training steps per precision")
    p.add_argument("--out", default="results/bench/gpu_checks.json")
    return p


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_steps(arch, size, batch, steps, device, bf16: bool, channels_last: bool = False) -> dict:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(0)
    model = models.build_model(arch).to(device, memory_format=fmt).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = models.preprocess(B.demo_like_images(batch, size, seed=1)).to(device, memory_format=fmt)
    y = (torch.arange(batch) % 2).to(device)
    before = [p.detach().clone() for p in model.parameters()]
    ctx = training.autocast(device) if bf16 else torch.autocast(device.type, enabled=False)
    losses, t0 = [], None
    for i in range(steps + 1):
        if i == 1:  # the first step warms up (cuDNN algorithm choice)
            _sync(device)
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with ctx:
            loss = loss_fn(model(x).float(), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    _sync(device)
    dt = time.perf_counter() - t0
    changed = sum(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters()))
    ok = all(np.isfinite(losses)) and changed > 0
    return {"ok": bool(ok), "losses": losses, "params_changed": changed, "images_per_s": steps * batch / dt,
            "autocast_bf16": bf16, "channels_last": channels_last, "batch": batch, "size": size}


def method_on_device(method, model, images, arch, device) -> dict:
    _sync(device)
    t0 = time.perf_counter()
    maps, flags = M.compute_maps(method, model, images, FAST.get(method, {}), arch)
    _sync(device)
    ok = maps.shape == tuple(images.shape[:1]) + tuple(images.shape[-2:]) and np.isfinite(maps).all() \
        and maps.min() >= 0 and maps.max() <= 1
    return {"ok": bool(ok), "seconds": time.perf_counter() - t0, "flags": flags.tolist(),
            "model_on_device": next(model.parameters()).device.type == device.type}


def _compare(a, b) -> dict:
    diff = np.abs(a - b)
    return {"mean_abs_diff": float(diff.mean()), "max_abs_diff": float(diff.max()),
            "pearson_r": float(np.corrcoef(a.ravel(), b.ravel())[0, 1])}


def grad_matches_cpu(arch, size, device) -> dict:
    """Pass: with TF32 off the device maps equal the CPU maps (mean |diff| <= 1e-3, r >= 0.999).
    With TF32 on (PyTorch's cuDNN default) the difference is reported: through ~100 layers of an
    untrained network TF32's 10-bit mantissa moves the 99th-percentile clip visibly."""
    torch.manual_seed(0)
    model = models.build_model(arch).eval()
    x = models.preprocess(B.demo_like_images(2, size, seed=2))
    cpu_maps, _ = M.compute_maps("grad", model, x)
    model = model.to(device)
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        tf32 = _compare(cpu_maps, M.compute_maps("grad", model, x.to(device))[0])
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        fp32 = _compare(cpu_maps, M.compute_maps("grad", model, x.to(device))[0])
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
    return {"ok": bool(fp32["mean_abs_diff"] <= 1e-3 and fp32["pearson_r"] >= 0.999), "fp32": fp32, "tf32": tf32}


def main(args):
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"kind": "gpu_checks", "machine": B.machine_info(), "device": str(device), "size": args.size,
              "command": " ".join(["python"] + sys.argv), "checks": {}}

    def record(name, fn):
        t0 = time.perf_counter()
        try:
            result = fn()
        except Exception as err:  # noqa: BLE001 - one failed check must not hide the others
            result = {"ok": False, "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc(limit=4)}
        result["wall_s"] = time.perf_counter() - t0
        report["checks"][name] = result
        print(f"{'OK  ' if result.get('ok') else 'FAIL'} {name}: " + json.dumps(
            {k: v for k, v in result.items() if k != "traceback"}, default=float)[:300], flush=True)
        out.write_text(json.dumps(report, indent=2, default=float))

    # what the workflow trains with on a GPU: bf16 autocast, channels-last (memory_format: auto)
    for arch in args.archs:
        for bf16, channels_last in ((False, False), (True, False), (True, True)):
            name = ("bf16" if bf16 else "fp32") + ("_channels_last" if channels_last else "")
            record(f"train_step/{arch}/{name}",
                   lambda: train_steps(arch, args.size, args.batch, args.steps, device, bf16, channels_last))
    arch = args.archs[0]
    torch.manual_seed(0)
    model = models.build_model(arch).to(device).eval()
    images = models.preprocess(B.demo_like_images(2, args.size, seed=3)).to(device)
    for method in ("grad", "sg", "ig", "sig", "gcam", "gbp", "ggcam", "xrai", "random"):
        record(f"method/{arch}/{method}", lambda: method_on_device(method, model, images, arch, device))
    for a in args.archs:
        record(f"grad_matches_cpu/{a}", lambda: grad_matches_cpu(a, args.size, device))
    report["all_ok"] = all(c.get("ok") for c in report["checks"].values())
    out.write_text(json.dumps(report, indent=2, default=float))
    print("ALL CHECKS OK" if report["all_ok"] else "SOME CHECKS FAILED", flush=True)
    return report


if __name__ == "__main__":
    main(get_args_parser().parse_args())
