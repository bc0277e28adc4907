"""Independent check of saved saliency maps: recompute GRAD, IG and GCAM with direct Captum
calls and the paper's post-processing written out here, and XRAI with PAIR's library called
directly (its own segmentation, its own IG loop), then compare with the workflow's files.

    python tools/verify_maps.py --results results --dataset siim --arch inception_v3 --fold 0 \
        --ig-steps 4 --xrai-steps 3 --batch-size 8 --max-batch 32 --threads 1   # the demo's config

Uses nothing of `salaudit.methods` or `salaudit.maps` (only `salaudit.models.load_checkpoint`
to read the checkpoint). Prints one line per method with the largest absolute difference and
exits 1 if any exceeds --tolerance (default: float16 rounding of values in [0, 1], 2**-11,
plus 1e-4 for float32 arithmetic).
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from salaudit.models import load_checkpoint  # noqa: E402

GCAM_LAYER = {"inception_v3": "Mixed_7c", "densenet121": "features", "tiny_cnn": "block3"}


def paper_postprocess(attr: np.ndarray, minmax: bool) -> np.ndarray:
    """|attribution| summed over channels; (m - min) / (p99 - min) clipped to [0, 1] (PAIR's
    VisualizeImageGrayscale); Grad-CAM and XRAI: (m - min) / (max - min)."""
    m = np.abs(attr).sum(axis=0) if attr.ndim == 3 else np.abs(attr)
    lo, top = m.min(), m.max()
    if top - lo <= 1e-5 * max(abs(top), abs(lo)):  # constant up to float32 rounding
        return np.zeros_like(m)
    hi = top if minmax else np.percentile(m, 99)
    if hi <= lo:
        hi = top
    return np.clip((m - lo) / (hi - lo), 0, 1)


def reference_maps(model, arch, x, method, ig_steps, xrai_steps, batch_size, max_batch=64):
    """Maps of ``x`` in batches of ``batch_size`` (the workflow's saliency.batch_size: on a CPU the
    convolution kernels, and with them the last bits of the gradients, depend on the batch); IG
    and XRAI path points ``max_batch`` at a time (the workflow's saliency.max_batch)."""
    from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Saliency

    out = []
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size].clone().requires_grad_(True)
        with torch.no_grad():
            target = model(xb).argmax(1)
        if method == "xrai":
            out += [pair_xrai(model, xb.detach()[i], int(target[i]), xrai_steps, max_batch) for i in range(len(xb))]
            continue
        if method == "grad":
            a = Saliency(model).attribute(xb, target=target, abs=False)
        elif method == "ig":
            a = IntegratedGradients(model).attribute(xb, baselines=torch.full_like(xb, -1.0), target=target,
                                                     n_steps=ig_steps, method="riemann_trapezoid",
                                                     internal_batch_size=max_batch)
        elif method == "gcam":
            layer = model.get_submodule(GCAM_LAYER[arch])
            cam = LayerGradCam(model, layer).attribute(xb, target=target, relu_attributions=True)
            a = LayerAttribution.interpolate(cam, tuple(xb.shape[-2:]), interpolate_mode="bilinear")
        else:
            raise ValueError(f"no reference for {method!r}")
        out += [paper_postprocess(ai.double().numpy(), minmax=method == "gcam") for ai in a.detach()]
    return np.stack(out)


def pair_xrai(model, image, target, steps, batch_size=64):
    """PAIR's XRAI exactly as its README shows, batch of IG steps through a PyTorch model."""
    import saliency.core as saliency

    def call_model_function(images, call_model_args=None, expected_keys=None):
        # contiguous NCHW, as the workflow feeds the model: in another memory layout CPU kernels
        # give gradients different in the last bits, which XRAI's region ranking can amplify.
        t = torch.tensor(np.asarray(images), dtype=torch.float32).permute(0, 3, 1, 2).contiguous().requires_grad_(True)
        logits = model(t)
        grads = torch.autograd.grad(logits[:, call_model_args["target"]].sum(), t)[0]
        return {saliency.INPUT_OUTPUT_GRADIENTS: grads.permute(0, 2, 3, 1).detach().numpy()}

    params = saliency.XRAIParameters(steps=steps)
    x = image.permute(1, 2, 0).numpy().astype(np.float64)
    mask = saliency.XRAI().GetMask(x, call_model_function, {"target": target}, batch_size=batch_size,
                                   extra_parameters=params)
    return paper_postprocess(mask, minmax=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results")
    p.add_argument("--dataset", required=True)
    p.add_argument("--arch", required=True)
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--methods", nargs="+", default=["grad", "ig", "gcam", "xrai"])
    p.add_argument("--ig-steps", type=int, default=10)
    p.add_argument("--xrai-steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=16, help="images per batch: the config's saliency.batch_size")
    p.add_argument("--max-batch", type=int, default=64,
                   help="IG and XRAI path points per model call: the config's saliency.max_batch")
    p.add_argument("--tolerance", type=float, default=2.0 ** -11 + 1e-4)
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads: those the maps were computed with (config torch_threads); on a CPU "
                        "the kernels differ with the thread count, and gradients of a deep net by up to ~1 %%")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    root = Path(args.results) / args.dataset
    eval_images = pd.read_csv(root / "eval_images.csv", dtype={"image_id": str})
    images = np.load(root / "data" / "images.npy", mmap_mode="r")[eval_images["index"].to_numpy()]
    x = torch.tensor(np.asarray(images), dtype=torch.float32).div(127.5).sub(1.0).unsqueeze(1).repeat(1, 3, 1, 1)
    model, _ = load_checkpoint(root / "models" / args.arch / f"fold{args.fold}" / "model.pt")
    worst = 0.0
    for method in args.methods:
        saved = np.load(root / "maps" / args.arch / f"fold{args.fold}" / method / "trained.npy").astype(np.float64)
        ref = reference_maps(model, args.arch, x, method, args.ig_steps, args.xrai_steps,
                             args.batch_size, args.max_batch)
        diff = float(np.abs(saved - ref).max())
        worst = max(worst, diff)
        print(f"{args.dataset} {args.arch} fold{args.fold} {method}: {len(ref)} maps, max |saved - reference| = "
              f"{diff:.2e} ({'OK' if diff <= args.tolerance else 'MISMATCH'})")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
