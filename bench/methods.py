"""Saliency method throughput (issue 7, items 1-3): efficiency, speed-up over the usual way, XRAI cache.

    python bench/methods.py --arch inception_v3 densenet121 --size 96 --batch 16 --n-images 16 \
        --device auto --out results/bench/methods.json

Per architecture (untrained model from the registry, eval mode, demo-like images):

* reference: the median time of one batched forward+backward pass (gradient of the sum of the
  predicted-class logits wrt the input) at ``--batch`` images;
* project path: `salaudit.saliency.methods.compute_maps` on batches of ``--batch`` images, the
  target classes given (as the workflow does: one forward pass per batch shared by every method, timed
  apart as ``shared_target_forward_s_per_map``); seconds per map, maps/s and efficiency = (P × reference pass / batch) / seconds per map, P =
  `passes_per_image`;
* usual way: one image at a time, batch 1; SG/IG/SIG/XRAI through PAIR's ``saliency.core``
  classes with a batch-1 ``call_model_function`` as in PAIR's README (IG steps passed
  ``--usual-batch`` at a time, PAIR's default 1), GRAD/GCAM/GBP/GGCAM through the project's
  own call on one image; speed-up = usual seconds per map / project seconds per map;
* XRAI: segmentation, IG passes (black + white baseline) and region selection timed
  separately; a second model (same architecture, other seed) on the same images with the
  segment cache the first one filled: cache ratio = second / first, at the run's settings and
  at ``config.yaml``'s ``saliency.xrai.steps`` (the cache saves only the segmentation, so the
  ratio depends on the number of IG passes).

Methods whose paper settings cost hundreds of passes per image (SIG 250, XRAI 200) run on
``--slow-images`` images (default: all on a GPU, 2 on a CPU); every method stops after the
batch that crosses ``--time-budget`` seconds. The JSON records what ran. Every step is
wrapped: one failure is recorded as ``error`` and the rest still runs; the JSON is rewritten
after every method, so an interrupted run keeps what it measured.

One script (about 370 lines) on purpose: each method's timing harness sits beside the others so
that every method is timed the same way; the pure helpers are in bench/benchlib.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

import benchlib as B  # bench/benchlib.py (bench/ is this script's folder)
from salaudit import models
from salaudit import seeds
from salaudit.saliency import methods as M
from salaudit.saliency import xrai as X
from salaudit.saliency.gradients import max_batch_of
from salaudit.saliency.postprocess import _postprocess_on_device

ALL_METHODS = ("grad", "sg", "ig", "sig", "gcam", "gbp", "ggcam", "xrai")
SLOW_METHODS = ("sig", "xrai")


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", nargs="+", default=["inception_v3", "densenet121"])
    p.add_argument("--methods", nargs="+", default=list(ALL_METHODS), choices=ALL_METHODS)
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--n-images", type=int, default=16, help="images per method (project path)")
    p.add_argument("--slow-images", type=int, default=None,
                   help="images for SIG and XRAI (default: --n-images on CUDA, 2 on CPU)")
    p.add_argument("--usual-images", type=int, default=None,
                   help="images for the one-at-a-time path (default: min(n, 4) on CPU, min(n, 8) on CUDA)")
    p.add_argument("--usual-batch", type=int, default=1,
                   help="PAIR batch_size for the IG steps of the usual way (PAIR's default: 1)")
    p.add_argument("--settings", nargs="*", default=[], metavar="METHOD.KEY=VALUE",
                   help="override the paper's settings, e.g. sg.samples=10 xrai.steps=20")
    p.add_argument("--time-budget", type=float, default=120.0, help="seconds per method and path (soft)")
    p.add_argument("--repeats", type=int, default=5, help="repeats of the reference pass")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-usual", action="store_true", help="skip the one-at-a-time comparison")
    p.add_argument("--tf32", action="store_true",
                   help="allow TF32 on CUDA (off by default, as in the workflow's saliency jobs)")
    p.add_argument("--out", default="results/bench/methods.json")
    return p


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device):
    _sync(device)
    t0 = time.perf_counter()
    result = fn()
    _sync(device)
    return result, time.perf_counter() - t0


def reference_pass(model, images, repeats: int, device) -> float:
    """Median seconds of one batched forward+backward: d(sum of predicted-class logits)/d(input)."""
    target = M.predicted_class(model, images)

    def one():
        x = images.detach().clone().requires_grad_(True)
        out = model(x)
        (g,) = torch.autograd.grad(out.gather(1, target.view(-1, 1)).sum(), x)
        return g

    timed(one, device)  # warm-up (allocator, cuDNN algorithm choice)
    return statistics.median(timed(one, device)[1] for _ in range(max(1, repeats)))


def warmup_settings(method, settings, batch) -> dict:
    """Settings for one untimed warm-up call (imports, allocator, cuDNN/oneDNN choices) that
    costs about one internal chunk of the timed call, with the same chunk shape where possible."""
    s = M.resolve_settings(method, settings)
    mb = max_batch_of(s.get("max_batch"))
    if method == "sg":  # one noisy sample of every image per pass
        return {**settings, "samples": 1}
    if method == "ig":
        return {**settings, "steps": max(2, min(int(s["steps"]), mb // batch))}
    if method == "sig":
        return {**settings, "samples": 1}
    if method == "xrai":
        return {**settings, "steps": 2}
    return settings


def warm_up(method, model, images, settings, arch, batch) -> None:
    n = 1 if method == "xrai" else batch
    M.compute_maps(method, model, images[:n], warmup_settings(method, settings, batch), arch)


def postprocess_cost(images, device, repeats: int = 3) -> dict:
    """Seconds per map of `salaudit.saliency.postprocess.postprocess` on the CPU path (float64
    numpy, the attributions copied to the host first) vs its on-device path (float32, what CUDA
    tensors get)."""
    attr = torch.randn(images.shape, generator=torch.Generator().manual_seed(0)).to(device)
    cur = statistics.median(timed(lambda: M.postprocess(attr.cpu()), device)[1] for _ in range(repeats))
    new = statistics.median(timed(lambda: _postprocess_on_device(attr, False), device)[1] for _ in range(repeats))
    diff = float(np.abs(M.postprocess(attr.cpu())[0] - _postprocess_on_device(attr, False)[0]).max())
    n = images.shape[0]
    return {"current_s_per_map": cur / n, "on_device_s_per_map": new / n, "max_abs_diff": diff}


def project_path(method, model, images, settings, arch, batch, n, budget, device) -> dict:
    """compute_maps on chunks of ``batch`` images until ``n`` maps or the time budget."""
    # As in the workflow (`salaudit.saliency.maps.compute_all`): the target classes of a batch come
    # from one forward pass shared by every method; it is timed apart and not charged to a method.
    done, total, forward = 0, 0.0, 0.0
    while done < n:
        chunk = images[done:min(n, done + batch)]
        target, dt_target = timed(lambda: M.predicted_class(model, chunk), device)
        forward += dt_target
        _, dt = timed(lambda: M.compute_maps(method, model, chunk, settings, arch, target=target), device)
        total += dt
        done += chunk.shape[0]
        if total > budget:
            break
    return {"n_maps": done, "seconds": total, "seconds_per_map": total / done, "maps_per_s": done / total,
            "shared_target_forward_s_per_map": forward / done}


# --------------------------------------------------------------------------- the usual way (PAIR)

def pair_call_model_function(model, device):
    """PAIR README style: a batch of HWC float images in, gradients of the target logit out."""
    from saliency.core import base as pair_base

    def call_model_function(x_batch, call_model_args=None, expected_keys=None):
        x = torch.as_tensor(np.asarray(x_batch), dtype=torch.float32, device=device)
        x = x.permute(0, 3, 1, 2).requires_grad_(True)
        out = model(x)
        (g,) = torch.autograd.grad(out[:, call_model_args["target"]].sum(), x)
        return {pair_base.INPUT_OUTPUT_GRADIENTS: g.permute(0, 2, 3, 1).detach().cpu().numpy()}

    return call_model_function


def usual_one(method, model, image, settings, arch, usual_batch, device):
    """One map the way most code does it: one image, batch 1."""
    if method in ("grad", "gcam", "gbp", "ggcam"):
        return M.compute_maps(method, model, image[None], settings, arch)
    from saliency.core import GradientSaliency, IntegratedGradients, XRAI
    from saliency.core.xrai import XRAIParameters

    s = M.resolve_settings(method, settings)
    cmf = pair_call_model_function(model, device)
    target = int(M.predicted_class(model, image[None])[0])
    x = image.detach().cpu().permute(1, 2, 0).numpy().astype(np.float64)
    args = {"target": target}
    if method == "sg":
        mask = GradientSaliency().GetSmoothedMask(x, cmf, args, stdev_spread=s["noise"], nsamples=int(s["samples"]),
                                                  magnitude=s["nt_type"] == "smoothgrad_sq")
    elif method == "ig":
        mask = IntegratedGradients().GetMask(x, cmf, args, x_baseline=np.full_like(x, s["baseline"]),
                                             x_steps=int(s["steps"]), batch_size=usual_batch)
    elif method == "sig":
        mask = IntegratedGradients().GetSmoothedMask(x, cmf, args, stdev_spread=s["noise"], nsamples=int(s["samples"]),
                                                     magnitude=s["nt_type"] == "smoothgrad_sq",
                                                     x_baseline=np.full_like(x, s["baseline"]),
                                                     x_steps=int(s["steps"]), batch_size=usual_batch)
    elif method == "xrai":
        mask = XRAI().GetMask(x, cmf, args, batch_size=usual_batch,
                              extra_parameters=XRAIParameters(steps=int(s["steps"]), algorithm=s["algorithm"],
                                                              area_threshold=float(s["area_threshold"])))
        return M.postprocess(mask[None], signed=True)
    else:
        raise ValueError(method)
    return M.postprocess(mask.transpose(2, 0, 1)[None])


def usual_path(method, model, images, settings, arch, n, usual_batch, budget, device) -> dict:
    done, total = 0, 0.0
    for i in range(n):
        _, dt = timed(lambda: usual_one(method, model, images[i], settings, arch, usual_batch, device), device)
        total += dt
        done += 1
        if total > budget:
            break
    return {"n_maps": done, "seconds": total, "seconds_per_map": total / done, "batch": 1,
            "pair_batch_size": usual_batch if method in ("ig", "sig", "xrai") else None}


# --------------------------------------------------------------------------- XRAI parts

def xrai_parts(model, second_model, images, settings, arch, n, device, config_steps=None) -> dict:
    """XRAI's three parts per image (`xrai_segments`, `xrai_attribution`, `xrai_regions`), and the
    segment cache: a second model on the same images with the cache the first one filled.
    The cache can only save the segmentation, so its ratio depends on how many IG passes the
    settings ask for: it is measured at the run's settings and, when ``config_steps`` differs,
    at the workflow's configured ``saliency.xrai.steps`` too."""
    s = M.resolve_settings("xrai", settings)
    imgs = images[:n]
    targets = M.predicted_class(second_model, imgs)
    segs, seg_t = [], []
    for im in imgs:
        seg, dt = timed(lambda: X.xrai_segments(im), device)
        segs.append(seg)
        seg_t.append(dt)
    attrs, passes = timed(lambda: X.xrai_attribution(second_model, imgs, targets, steps=s["steps"],
                                                     max_batch=s["max_batch"]), device)
    _, select = timed(lambda: [X.xrai_regions(a, sg, area_threshold=s["area_threshold"])
                               for a, sg in zip(attrs, segs)], device)

    def cache_ratio(run_settings: dict) -> dict:
        cache: dict = {}
        run_settings = {**run_settings, "segment_cache": cache}
        _, first = timed(lambda: M.compute_maps("xrai", model, imgs, run_settings, arch), device)
        _, second = timed(lambda: M.compute_maps("xrai", second_model, imgs, run_settings, arch), device)
        return {"steps": int(M.resolve_settings("xrai", run_settings)["steps"]), "first_model_s_per_map": first / n,
                "second_model_s_per_map": second / n, "cache_ratio": second / first,
                "verdict_cache": B.check("xrai_cache", second / first)}

    result = {"n_images": n, "segmentation_s_per_image": statistics.mean(seg_t), "passes_s_per_image": passes / n,
              "region_selection_s_per_image": select / n, **cache_ratio(settings or {})}
    if config_steps is not None and int(config_steps) != result["steps"]:
        result["configured"] = cache_ratio({**(settings or {}), "steps": int(config_steps)})
    return result


def configured_xrai_steps(path: Path = Path(__file__).resolve().parents[1] / "config.yaml") -> int | None:
    """``saliency.xrai.steps`` of the workflow's config (None when it does not set one)."""
    import yaml

    try:
        return yaml.safe_load(path.read_text()).get("saliency", {}).get("xrai", {}).get("steps")
    except (OSError, AttributeError):
        return None


# --------------------------------------------------------------------------- main

def _error(err: BaseException) -> dict:
    return {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc(limit=3)}


def write(out: Path, payload: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=float))
    tmp.replace(out)


def main(args) -> dict:
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    on_gpu = device.type == "cuda"
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = bool(args.tf32)
    overrides = B.parse_settings_overrides(args.settings)
    slow_n = args.slow_images or (args.n_images if on_gpu else min(2, args.n_images))
    usual_n = args.usual_images or min(args.n_images, 8 if on_gpu else 4)
    speed_key = "speedup_gpu" if on_gpu else "speedup_cpu"
    payload = {
        "kind": "methods", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": B.machine_info(), "device": str(device), "command": " ".join(["python"] + sys.argv),
        "size": args.size, "batch": args.batch, "n_images": args.n_images, "slow_images": slow_n,
        "usual_images": usual_n, "usual_batch": args.usual_batch, "settings_overrides": overrides,
        "torch_threads": torch.get_num_threads(), "tf32": bool(args.tf32), "archs": {},
    }
    out = Path(args.out)
    u8 = B.demo_like_images(max(args.n_images, slow_n, usual_n), args.size, seed=args.seed)
    images = models.preprocess(u8).to(device)
    for arch in args.arch:
        res: dict = {"methods": {}}
        payload["archs"][arch] = res
        try:
            torch.manual_seed(args.seed)
            model = models.build_model(arch).to(device).eval()
            torch.manual_seed(seeds.derive(args.seed, "bench_second_model"))
            second = models.build_model(arch).to(device).eval()
            ref = reference_pass(model, images[:args.batch], args.repeats, device)
            res["reference_pass_s"] = ref
            res["reference_pass_s_per_image"] = ref / min(args.batch, images.shape[0])
            res["postprocess"] = postprocess_cost(images[:args.batch], device)
        except Exception as err:  # noqa: BLE001 - record and go on with the next architecture
            res.update(_error(err))
            write(out, payload)
            continue
        for method in args.methods:
            settings = overrides.get(method, {})
            n = slow_n if method in SLOW_METHODS else args.n_images
            entry: dict = {"passes": M.passes_per_image(method, settings, image_size=args.size),
                           "settings": {k: v for k, v in M.resolve_settings(method, settings).items()
                                        if k != "segment_cache"}}
            res["methods"][method] = entry
            print(f"[{arch}] {method}: {n} images ...", flush=True)
            try:
                # The reference is re-measured next to each method: on a shared machine the
                # speed drifts, and the ratio must compare like with like.
                ref_m = reference_pass(model, images[:args.batch], max(3, args.repeats // 2), device)
                entry["reference_pass_s"] = ref_m
                warm_up(method, model, images, settings, arch, min(args.batch, n))
                proj = project_path(method, model, images, settings, arch, args.batch, n, args.time_budget, device)
                entry.update(proj)
                eff = B.efficiency_ratio(entry["passes"], ref_m, min(args.batch, images.shape[0]),
                                         proj["seconds_per_map"])
                entry["efficiency"] = eff
                if method in B.GRADIENT_METHODS:
                    entry["verdict_efficiency"] = B.check("efficiency", eff)
            except Exception as err:  # noqa: BLE001
                entry.update(_error(err))
            if not args.no_usual and "error" not in entry:
                try:
                    usual = usual_path(method, model, images, settings, arch, min(usual_n, n), args.usual_batch,
                                       args.time_budget, device)
                    entry["usual"] = usual
                    entry["speedup"] = B.speedup(usual["seconds_per_map"], entry["seconds_per_map"])
                    if not on_gpu or method in ("sg", "ig", "sig"):
                        entry["verdict_speedup"] = B.check(speed_key, entry["speedup"])
                except Exception as err:  # noqa: BLE001
                    entry["usual"] = _error(err)
            if method == "xrai":
                try:
                    # as many images as the project path managed inside its time budget
                    entry["parts"] = xrai_parts(model, second, images, settings, arch,
                                                max(1, entry.get("n_maps", n)), device, configured_xrai_steps())
                except Exception as err:  # noqa: BLE001
                    entry["parts"] = _error(err)
            print(f"[{arch}] {method}: " + json.dumps({k: entry.get(k) for k in
                  ("passes", "n_maps", "seconds_per_map", "efficiency", "speedup")}, default=float), flush=True)
            write(out, payload)
        write(out, payload)
    return payload


if __name__ == "__main__":
    main(get_args_parser().parse_args())
