"""Independent check of saved saliency maps: recompute them with PAIR's `saliency` library (the one
the paper's scripts call, through its framework-agnostic core API) and the paper's post-processing,
and compare with the workflow's files.
One self-contained file (about 390 lines) on purpose: it must not share code with the method
modules it checks (it imports only `salaudit.seeds` and the checkpoint loader), so a reader can
audit it alone.

    python tools/verify_maps.py --results results --dataset siim --arch inception_v3 --fold 0 \\
        --configfile config.yaml     # the run's config: its method settings, batches, seed, threads

What it computes per method (the torch model behind a PAIR ``call_model_function``):

* grad: ``GradientSaliency.GetMask``;  sg: ``GradientSaliency.GetSmoothedMask``;
* ig: ``IntegratedGradients.GetMask(x_baseline, x_steps)``;  sig: its ``GetSmoothedMask``;
  SmoothGrad noise: PAIR draws it with ``np.random.normal(0, stdev, shape)``; here that call
  returns ``stdev ×`` the run's standard-normal draws (the stream of `salaudit.seeds` the
  workflow documents), so PAIR's loop sees the noise the workflow saw;
* gcam: ``GradCam.GetMask(should_resize=True, three_dims=True)`` on the activations the
  classifier head receives, written out here per architecture (DenseNet121: ReLU of
  ``features``, as torchvision's forward applies it; InceptionV3: ``Mixed_7c``), or on the
  module the run's ``saliency.gcam.layer`` names for the architecture;
* gbp: guided backpropagation written out here (a ``TorchFunctionMode`` that guides every ReLU
  call; PAIR's GuidedBackprop exists for TF1 only);
* ggcam: the product of the post-processed GBP and GCAM maps, min-max scaled (the paper's
  ``ggcam = gbp_mask * grad_mask_2d``);
* xrai: ``XRAI.GetMask`` (its own segmentation and IG loop), min-max of the signed map;
* then PAIR's ``VisualizeImageGrayscale`` and the min-max of the paper's ``saliency_ttest``
  (XRAI: min-max only; the published script's VisualizeImageGrayscale cannot run on PAIR's 2-D
  XRAI output).

Batches: on a CPU the kernels give a deep net's gradients different last bits for another batch
composition, and the 99th-percentile clip and XRAI's region ranking can turn those into visible
differences. PAIR runs one image at a time; here one PAIR call per image of a workflow batch runs
in its own thread, and their model calls meet and go through the model as one pass, image after
image: the passes the workflow makes (`salaudit.saliency.methods`, "Passes through the model").
Give the run's config (``--configfile``): batch size, ``max_batch`` and ``torch_threads`` come
from it.

Tolerance (``--tolerance``, default 2**-12 + 1e-5): the float16 rounding of the saved maps
(values in [0, 1]: at most 2**-12) plus float32-vs-float64 arithmetic. Uses nothing of
`salaudit.saliency.methods` or `salaudit.saliency.maps`; only `salaudit.models.load_checkpoint`
to read the model and `salaudit.seeds` for the documented noise stream. Prints one line per
method (largest and mean absolute difference, smallest Pearson r over the maps) and exits 1 if
any exceeds the tolerance.
"""

import argparse
import contextlib
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import yaml

from salaudit import seeds
from salaudit.models import load_checkpoint

REPO = Path(__file__).resolve().parents[1]

METHODS = ["grad", "sg", "ig", "sig", "gcam", "gbp", "ggcam", "xrai"]
# The layer whose output the classifier head receives directly (post-ReLU), by architecture.
HEAD_INPUT = {"inception_v3": "Mixed_7c", "tiny_cnn": "block3"}


# --------------------------------------------------------------------------- configuration

def run_settings(configfile):
    """The run's config with the schema's defaults filled in (as Snakemake validates it)."""
    from snakemake.utils import validate

    from salaudit.config import SCHEMA_PATH

    config = yaml.safe_load(Path(configfile).read_text()) or {}
    validate(config, SCHEMA_PATH, set_default=True)
    return config


# --------------------------------------------------------------------------- the model behind PAIR

def to_nchw(x_hwc_batch):
    """PAIR's NHWC numpy batch → the contiguous float32 NCHW tensor the workflow feeds the model."""
    return torch.tensor(np.asarray(x_hwc_batch), dtype=torch.float32).permute(0, 3, 1, 2).contiguous()


def to_nhwc(t):
    return t.detach().permute(0, 2, 3, 1).numpy()


def configured_layer(config, arch):
    """The run's ``saliency.gcam.layer`` for ``arch`` (a path, or a mapping architecture → path);
    None: the activations the head receives (`head_input_and_logits`)."""
    layer = config["saliency"]["gcam"]["layer"]
    return layer.get(arch) if isinstance(layer, dict) else layer


def head_input_and_logits(model, arch, x, layer=None):
    """(activations the classifier head receives, logits), written out per architecture; with
    ``layer``, that module's output instead of the head's input."""
    if arch == "densenet121" and layer is None:  # torchvision: F.relu(features(x)) -> average pool -> classifier
        acts = F.relu(model.features(x))
        return acts, model.classifier(torch.flatten(F.adaptive_avg_pool2d(acts, (1, 1)), 1))
    held = {}
    handle = model.get_submodule(layer or HEAD_INPUT[arch]).register_forward_hook(lambda m, i, o: held.setdefault("a", o))
    try:
        logits = model(x)
    finally:
        handle.remove()
    return held["a"], logits


def model_pass(model, arch, rows, targets, expected_keys, layer=None):
    """One pass of the rows of several images (image after image) → PAIR's outputs per image."""
    import saliency.core as pair

    sizes = [len(r) for r in rows]
    x = to_nchw(np.concatenate(rows)).requires_grad_(True)
    target = torch.as_tensor(np.repeat(targets, sizes))
    if pair.CONVOLUTION_LAYER_VALUES in expected_keys:
        acts, logits = head_input_and_logits(model, arch, x, layer)
        (grads,) = torch.autograd.grad(logits.gather(1, target.view(-1, 1)).sum(), acts)
        values = {pair.CONVOLUTION_LAYER_VALUES: to_nhwc(acts), pair.CONVOLUTION_OUTPUT_GRADIENTS: to_nhwc(grads)}
    else:
        logits = model(x)
        (grads,) = torch.autograd.grad(logits.gather(1, target.view(-1, 1)).sum(), x)
        values = {pair.INPUT_OUTPUT_GRADIENTS: to_nhwc(grads)}
    bounds = np.cumsum([0] + sizes)
    return [{k: v[a:b] for k, v in values.items()} for a, b in zip(bounds[:-1], bounds[1:])]


def lockstep(model, arch, targets, calls, layer=None):
    """Run ``calls[i](call_model_function)`` (one PAIR call per image) in threads whose model calls
    go through the model together, one pass per round. Returns their results in order."""
    n = len(calls)
    rows, keys, outputs, errors, results = [None] * n, [None], [None], [None] * n, [None] * n

    def one_pass():
        try:
            outputs[0] = model_pass(model, arch, rows, targets, keys[0], layer)
        except BaseException as err:  # noqa: BLE001 - re-raised in every thread
            outputs[0] = err

    barrier = threading.Barrier(n, action=one_pass)

    def worker(i):
        def call_model_function(x_batch, call_model_args=None, expected_keys=None):
            rows[i], keys[0] = x_batch, expected_keys
            barrier.wait()
            if isinstance(outputs[0], BaseException):
                raise outputs[0]
            return outputs[0][i]

        try:
            results[i] = calls[i](call_model_function)
        except BaseException as err:  # noqa: BLE001
            errors[i] = err
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first = next((e for e in errors if e is not None and not isinstance(e, threading.BrokenBarrierError)), None)
    if first is not None or any(e is not None for e in errors):
        raise first or errors[0]
    return results


@contextlib.contextmanager
def noise_from(draws):
    """PAIR's ``np.random.normal(0, stdev, shape)`` in GetSmoothedMask returns ``stdev × draws``:
    ``draws[thread name]`` is the list of standard-normal HWC arrays of that image, in order."""
    import saliency.core.base as pair_base

    counters = {}

    def normal(loc, scale, size):
        name = threading.current_thread().name
        k = counters.get(name, 0)
        counters[name] = k + 1
        eps = draws[name][k]
        if loc != 0 or tuple(size) != eps.shape:
            raise RuntimeError(f"unexpected noise request loc={loc} size={size}")
        return scale * eps

    proxy = SimpleNamespace(random=SimpleNamespace(normal=normal))
    original = pair_base.np

    class NumpyWithNoise:
        random = proxy.random

        def __getattr__(self, name):
            return getattr(original, name)

    pair_base.np = NumpyWithNoise()
    try:
        yield
    finally:
        pair_base.np = original


# --------------------------------------------------------------------------- guided backprop

class _GuidedReLURef(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad.clamp(min=0) * (x > 0)


class GuidedReLUMode(torch.overrides.TorchFunctionMode):
    """Every ReLU call (F.relu, torch.relu, Tensor.relu, nn.ReLU) as guided backprop's ReLU."""

    RELUS = {F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self.RELUS:
            return _GuidedReLURef.apply(args[0])
        return func(*args, **(kwargs or {}))


def guided_backprop(model, x, target):
    x = x.clone().requires_grad_(True)
    with GuidedReLUMode():
        logits = model(x)
    (grads,) = torch.autograd.grad(logits.gather(1, target.view(-1, 1)).sum(), x)
    return grads


# --------------------------------------------------------------------------- the paper's maps

def grayscale(mask_3d):
    """The paper's post-processing: PAIR's VisualizeImageGrayscale, then saliency_ttest's min-max."""
    import saliency.core as pair

    with np.errstate(invalid="ignore", divide="ignore"):  # degenerate maps: PAIR divides by zero
        return minmax(pair.VisualizeImageGrayscale(mask_3d))


def minmax(m):
    m = np.asarray(m, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (m - m.min()) / (m.max() - m.min())


def reference_maps(model, arch, x, method, config, dataset, fold):
    """Maps of ``x`` (float32 NCHW) by PAIR, batch by batch as the workflow computes them."""
    import saliency.core as pair

    sal = config["saliency"]
    batch_size, max_batch = sal["batch_size"], sal["max_batch"] or (1 << 30)
    out = []
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        with torch.no_grad():
            targets = model(xb).argmax(1).numpy()
        images = [xi.permute(1, 2, 0).double().numpy() for xi in xb]  # PAIR's HWC float64 inputs
        per_image = max(1, max_batch // len(xb))  # IG path points of each image in one pass
        if method in ("gbp", "ggcam"):
            gbp = to_nhwc(guided_backprop(model, xb, torch.as_tensor(targets)))
        if method in ("gcam", "ggcam"):
            cams = lockstep(model, arch, targets, [
                lambda cmf, im=im: pair.GradCam().GetMask(im, cmf, None, should_resize=True, three_dims=True)
                for im in images], layer=configured_layer(config, arch))
        if method == "grad":
            raw = lockstep(model, arch, targets, [lambda cmf, im=im: pair.GradientSaliency().GetMask(im, cmf)
                                                  for im in images])
        elif method in ("sg", "sig"):
            s = sal[method]
            g = torch.Generator().manual_seed(seeds.derive(config["seed"], "saliency", method, dataset, arch, fold,
                                                           "trained", start))
            eps = [torch.randn(xb.shape, generator=g) for _ in range(s["samples"])]
            names = [f"image{start + i}" for i in range(len(xb))]
            draws = {name: [e[i].permute(1, 2, 0).double().numpy() for e in eps] for i, name in enumerate(names)}
            common = dict(stdev_spread=s["noise"], nsamples=s["samples"], magnitude=s["nt_type"] == "smoothgrad_sq")
            if method == "sg":
                calls = [lambda cmf, im=im: pair.GradientSaliency().GetSmoothedMask(im, cmf, None, **common)
                         for im in images]
            else:
                if s["ig_method"] != "pair":
                    raise SystemExit("sig: PAIR has only its own integration rule (ig_method: pair)")
                calls = [lambda cmf, im=im: pair.IntegratedGradients().GetSmoothedMask(
                    im, cmf, None, x_steps=s["steps"], x_baseline=np.full_like(im, s["baseline"]),
                    batch_size=per_image, **common) for im in images]
            calls = [named(call, name) for call, name in zip(calls, names)]
            with noise_from(draws):
                raw = lockstep(model, arch, targets, calls)
        elif method == "ig":
            s = sal["ig"]
            if s["ig_method"] != "pair":
                raise SystemExit("ig: PAIR has only its own integration rule (ig_method: pair)")
            raw = lockstep(model, arch, targets, [lambda cmf, im=im: pair.IntegratedGradients().GetMask(
                im, cmf, None, x_baseline=np.full_like(im, s["baseline"]),
                x_steps=s["steps"], batch_size=per_image) for im in images])
        elif method == "xrai":
            s = sal["xrai"]
            params = pair.XRAIParameters(steps=s["steps"], area_threshold=s["area_threshold"], algorithm=s["algorithm"])
            out += [minmax(pair.XRAI().GetMask(im, lambda xs, call_model_args=None, expected_keys=None, t=t:
                                               model_pass(model, arch, [xs], [t], expected_keys)[0],
                                               batch_size=max_batch, extra_parameters=params))
                    for im, t in zip(images, targets)]
            continue
        if method == "gcam":
            raw = cams
        elif method == "gbp":
            raw = list(gbp)
        if method == "ggcam":
            out += [minmax(grayscale(b) * grayscale(c)) for b, c in zip(gbp, cams)]
        else:
            out += [grayscale(r) for r in raw]
    return np.stack(out)


def named(call, name):
    """``call`` run in a thread named ``name`` (the noise of an image is looked up by it)."""
    def run(cmf):
        threading.current_thread().name = name
        return call(cmf)

    return run


def compare(saved, flags, ref):
    """Agreement of the saved maps with PAIR's: ``max``/``mean`` |saved - reference| and the smallest
    Pearson ``r`` over the maps both scale, ``same16`` the fraction of their pixels equal to PAIR's
    value rounded to float16 as the workflow saves it; ``degenerate``: maps both call degenerate (flagged here;
    PAIR's constant or not finite); ``undefined``: maps PAIR cannot scale (its 99th percentile equals
    the minimum: 0/0) that the workflow scales by their maximum; ``disagree``: maps flagged here but
    well defined by PAIR (a failure)."""
    finite = np.isfinite(ref).all(axis=(1, 2))
    constant = finite & (ref.max(axis=(1, 2), initial=-np.inf, where=np.isfinite(ref))
                         == ref.min(axis=(1, 2), initial=np.inf, where=np.isfinite(ref)))
    degenerate = flags & (~finite | constant)
    undefined = ~flags & ~finite
    disagree = flags & finite & ~constant
    ok = ~flags & finite
    diffs = np.abs(saved[ok] - ref[ok])
    rs = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(saved[ok], ref[ok])]
    same = saved[ok] == ref[ok].astype(np.float16)  # what float16 rounding of PAIR's map gives
    return {"max": float(diffs.max()) if diffs.size else 0.0, "mean": float(diffs.mean()) if diffs.size else 0.0,
            "same16": float(same.mean()) if same.size else float("nan"),
            "r": float(min(rs)) if rs else float("nan"), "degenerate": int(degenerate.sum()),
            "undefined": int(undefined.sum()), "disagree": int(disagree.sum())}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results")
    p.add_argument("--dataset", required=True)
    p.add_argument("--arch", required=True)
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    p.add_argument("--configfile", default=str(REPO / "config.yaml"),
                   help="the run's config (method settings, saliency.batch_size, max_batch, seed, torch_threads)")
    p.add_argument("--tolerance", type=float, default=2.0 ** -12 + 1e-5)
    args = p.parse_args(argv)
    config = run_settings(args.configfile)
    torch.set_num_threads(config["torch_threads"])

    root = Path(args.results) / args.dataset
    eval_images = pd.read_csv(root / "eval_images.csv", dtype={"image_id": str})
    images = np.load(root / "data" / "images.npy", mmap_mode="r")[eval_images["index"].to_numpy()]
    x = torch.tensor(np.asarray(images), dtype=torch.float32).div(127.5).sub(1.0).unsqueeze(1).repeat(1, 3, 1, 1)
    model, _ = load_checkpoint(root / "models" / args.arch / f"fold{args.fold}" / "model.pt")
    failed = False
    for method in args.methods:
        folder = root / "maps" / args.arch / f"fold{args.fold}" / method
        saved = np.load(folder / "trained.npy").astype(np.float64)
        flags = np.load(folder / "trained.flags.npy")
        ref = reference_maps(model, args.arch, x, method, config, args.dataset, args.fold)
        c = compare(saved, flags, ref)
        ok = c["max"] <= args.tolerance and c["disagree"] == 0
        failed |= not ok
        print(f"{args.dataset} {args.arch} fold{args.fold} {method}: {len(ref)} maps, max |saved - PAIR| = "
              f"{c['max']:.2e}, mean {c['mean']:.2e}, min r {c['r']:.6f}, {100 * c['same16']:.2f} % of pixels equal "
              f"to PAIR's in float16; degenerate in both {c['degenerate']}, "
              f"undefined in PAIR {c['undefined']}, flagged here only {c['disagree']} ({'OK' if ok else 'MISMATCH'})",
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
