"""Saliency maps of trained classifiers, for every configured method; optionally along each
model's weight randomization (every step, every method).

    python scripts/saliency_maps.py --dataset siim --data results/siim/data --eval-images results/siim/eval_images.csv \
        --segments results/siim/maps/xrai_segments.npz \
        --model results/siim/models/inception_v3/fold0/model.pt results/siim/models/inception_v3/fold1/model.pt \
        --out results/siim/maps/inception_v3/fold0 results/siim/maps/inception_v3/fold1 \
        --methods grad sg ig sig gcam gbp ggcam xrai random --set sg.samples=25

For each --model (and the --out folder at the same position) it writes ``{out}/{method}/trained.npy``
(float16 [n_eval, S, S] in [0, 1], rows in --eval-images order) and ``trained.flags.npy`` (bool
[n_eval], True = constant raw map, saved as zeros). With ``--randomize cascade`` (or
``independent``) it writes instead ``{out}/{method}/{mode}/{k:02d}_{block}.npy`` (+ ``.flags.npy``)
for every step k of the architecture's blocks (`salaudit.randomize`), randomized from ``--seed``.
Every random draw (SmoothGrad noise, random blocks, the random control) comes from a stream of
``--seed`` named by the model (``--dataset``, its architecture and fold, the step).
Several models per run share one start-up (imports, images, XRAI segments).
The last log line is ``TIMING {...}``: seconds of start-up, loading, computing and writing.
"""

import time

_START = time.perf_counter()

import argparse  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", required=True, help="model.pt of trained classifiers (one or more)")
    parser.add_argument("--dataset", required=True, help="dataset name (it names the models' random streams)")
    parser.add_argument("--data", required=True, help="folder with images.npy and manifest.csv")
    parser.add_argument("--eval-images", required=True, help="CSV index,image_id: the images to map, in order")
    parser.add_argument("--segments", default=None, help="XRAI segments of the evaluation images (.npz); "
                        "computed on the fly when not given")
    parser.add_argument("--out", nargs="+", required=True, help="folder of each model's maps, in --model order")
    parser.add_argument("--methods", nargs="+", required=True, help="method ids (salaudit.methods.METHODS)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="METHOD.NAME=VALUE",
                        help="a method setting, e.g. sg.samples=25 (repeatable; the paper's values otherwise)")
    parser.add_argument("--randomize", choices=["cascade", "independent"], default=None,
                        help="maps of the randomized models instead of the trained one")
    parser.add_argument("--seed", type=int, default=0, help="seed of SmoothGrad noise, random maps, randomization")
    parser.add_argument("--batch-size", type=int, default=16, help="images per batch")
    parser.add_argument("--max-batch", type=int, default=64, help="most model inputs in one forward+backward pass")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--allow-tf32", action="store_true",
                        help="let CUDA use TF32 (faster; gradients then differ visibly from float32)")
    return parser


def main(args):
    import torch

    from salaudit import data, maps, methods, models, randomize, training

    timer = maps.Timer(_START)
    timer.lap("startup")
    if args.threads:
        torch.set_num_threads(args.threads)
    # TF32 convolutions (cuDNN's default) change GPU gradients by ~3 % of the map range.
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = args.allow_tf32
    try:
        unknown = [m for m in args.methods if m not in methods.METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(methods.METHODS)}")
        settings = maps.parse_settings(args.settings)
        if len(args.model) != len(args.out):
            raise ValueError(f"{len(args.model)} --model files but {len(args.out)} --out folders")
        device = training.resolve_device(args.device)
        manifest = data.read_manifest(f"{args.data}/manifest.csv")
        index = data.read_eval_images(args.eval_images, manifest["image_id"].tolist())
        images = np.asarray(np.load(f"{args.data}/images.npy", mmap_mode="r")[index])
        cache = {}
        if args.segments and "xrai" in args.methods:
            seg_index, segments = maps.load_segments(args.segments)
            if not np.array_equal(seg_index, index):
                raise ValueError(f"{args.segments} was computed for other evaluation images than {args.eval_images}")
            cache = maps.segment_cache(images, segments)
    except (OSError, ValueError, RuntimeError, models.ModelError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    timer.lap("load")
    for path, out in zip(args.model, args.out):
        try:
            model, meta = models.load_checkpoint(path)
            if images.shape[-1] != meta.get("image_size", images.shape[-1]):
                raise ValueError(f"{path} was trained at {meta['image_size']} px, the images are {images.shape[-1]} px")
        except (OSError, ValueError, models.ModelError) as err:
            print(f"ERROR: {err}", file=sys.stderr)
            return 1
        timer.lap("load")
        # The model's name in the random streams; a checkpoint of ours records its fold.
        fold = meta.get("settings", {}).get("fold", out)
        _model_maps(model, meta["arch"], fold, out, images, settings, cache, device, args, timer, maps, randomize)
        print(f"{path} ({meta['arch']}) on {device}: {len(images)} images, {len(args.methods)} methods")
    print(timer.report())
    return 0


def _model_maps(model, arch, fold, out, images, settings, cache, device, args, timer, maps, randomize):
    """Every method's maps of one model (or of each of its randomization steps) into ``out``."""

    from salaudit import methods

    if {"gcam", "ggcam"} & set(args.methods):
        layer = settings.get("gcam", {}).get("layer")
        rows, cols = methods.gradcam_extent(model.to(device), arch, images.shape[-1], layer)
        name = methods.gradcam_layer_name(layer, arch)
        print(f"Grad-CAM layer {name} of {arch}: {rows}x{cols} at {images.shape[-1]} px")
        if rows * cols == 1:
            print(f"WARNING: Grad-CAM layer {name} of {arch} is 1x1 at {images.shape[-1]} px: every GCAM and GGCAM "
                  f"map is constant (flagged degenerate); set saliency.gcam.layer for {arch} (a layer with "
                  "spatial extent) or a larger image_size", file=sys.stderr)

    def run(net, stem):
        result = maps.compute_all(net, arch, images, args.methods, settings, seed=args.seed,
                                  batch_size=args.batch_size, max_batch=args.max_batch, device=device,
                                  segments=cache, model_key=(args.dataset, arch, fold, stem))
        timer.lap("compute")
        for method, (m, f) in result.items():
            maps.save_maps(out, method, stem, m, f)
            print(f"{out} {stem} {method}: {int(f.sum())} flagged of {len(f)}")
        timer.lap("write")

    if args.randomize is None:
        run(model, "trained")
    else:
        for step, net in randomize.randomized_models(model, arch, args.seed, args.randomize,
                                                     replicate=(args.dataset, fold)):
            timer.lap("randomize")
            run(net, f"{args.randomize}/{step.label}")


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
