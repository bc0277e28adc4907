"""Saliency maps of trained classifiers, for every configured method; optionally along each
model's weight randomization (every step, every method). Rule ``saliency`` and the rules
``randomized_saliency_<arch>``; the work: `salaudit.saliency.maps.write_model_maps`.

    python scripts/saliency_maps.py --dataset siim --images results/siim/data/images.npy \\
        --manifest results/siim/data/manifest.csv --eval-images results/siim/eval_images.csv \\
        --segments results/siim/maps/xrai_segments.npz \\
        --model results/siim/models/inception_v3/fold0/model.pt results/siim/models/inception_v3/fold1/model.pt \\
        --out results/siim/maps/inception_v3/fold0 results/siim/maps/inception_v3/fold1 \\
        --settings '{"seed": 0, "device": "auto", "saliency": {"methods": ["grad", "sg"]}}'

``--settings``: the config's ``seed``, ``device`` and ``saliency`` block (methods, their settings,
batch sizes, TF32); absent keys take the schema's defaults (the paper's values).
For each --model (and the --out folder at the same position) it writes ``{out}/{method}/{stem}.npy``
(``--stem``: ``trained``, or ``label_randomized`` for a model trained on permuted labels)
(float16 [n_eval, S, S] in [0, 1], rows in --eval-images order) and ``trained.flags.npy`` (bool
[n_eval], True = constant raw map, saved as zeros). With ``--randomize cascade`` (or
``independent``, ``bottom_up``) it writes instead ``{out}/{method}/{mode}/{k:02d}_{block}.npy`` (+ ``.flags.npy``)
for every step k of the architecture's blocks (`salaudit.saliency.randomize`), randomized from the
seed. Every random draw (SmoothGrad noise, random blocks, the random control) comes from a stream
of the seed named by the model (``--dataset``, its architecture and fold, the step).
Several models per run share one start-up (imports, images, XRAI segments).
A finished job's maps are kept in the --out folders' common folder, under .salaudit-cache
(`salaudit.jobcache`): rerunning it with the same code, arguments and input bytes restores them.
The last log line is ``TIMING {...}``: seconds of start-up, loading, computing and writing.
"""

import time

_START = time.perf_counter()

import argparse  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

from salaudit import config, files, jobcache, layout, registry  # noqa: E402


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", required=True, help="model.pt of trained classifiers (one or more)")
    parser.add_argument("--dataset", required=True, help="dataset name (it names the models' random streams)")
    parser.add_argument("--images", required=True, help="images.npy of the dataset")
    parser.add_argument("--manifest", required=True, help="manifest.csv of the dataset")
    parser.add_argument("--eval-images", required=True, help="CSV index,image_id: the images to map, in order")
    parser.add_argument("--segments", help="XRAI segments of the evaluation images (.npz); computed on the fly "
                        "when not given")
    parser.add_argument("--average-mask", help="average training mask (.npy), the map of the prior control")
    parser.add_argument("--out", nargs="+", required=True, help="folder of each model's maps, in --model order")
    parser.add_argument("--stem", default=layout.TRAINED_STEM,
                        help=f"file stem of the maps in each folder (default {layout.TRAINED_STEM}; "
                             f"{layout.LABEL_RANDOMIZED_STEM} for a model trained on permuted labels)")
    parser.add_argument("--randomize", choices=registry.RANDOMIZATION_MODES,
                        help="maps of the randomized models (every step) instead of the model itself")
    parser.add_argument("--threads", type=int, help="CPU threads for torch")
    config.settings_argument(parser)
    return parser


def main(args):
    import torch

    from salaudit import models
    from salaudit.datasets import tables
    from salaudit.models import training
    from salaudit.saliency import maps

    timer = maps.Timer(_START)
    timer.lap("startup")
    settings = args.settings
    saliency = settings["saliency"]
    if args.threads:
        torch.set_num_threads(args.threads)
    # TF32 convolutions (cuDNN's default) change GPU gradients by ~3 % of the map range.
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = saliency["allow_tf32"]
    try:
        if len(args.model) != len(args.out):
            raise ValueError(f"{len(args.model)} --model files but {len(args.out)} --out folders")
        for path in args.model:  # every input checked before any map is written
            files.check_zip(path)
        inputs = [*args.model, args.images, args.manifest, args.eval_images, args.segments, args.average_mask]
        job = jobcache.JobCache(__file__, vars(args), [p for p in inputs if p], args.out, args.randomize or args.stem)
        if job.restore():
            return 0
        device = training.resolve_device(settings["device"])
        manifest = tables.read_manifest(args.manifest)
        index = tables.read_eval_images(args.eval_images, manifest["image_id"].tolist())
        images = np.asarray(files.load_npy(args.images)[index])
        cache, prior = {}, None
        if "prior" in saliency["methods"]:
            if not args.average_mask:
                raise ValueError("the prior control needs --average-mask (results/{dataset}/baselines/average_mask.npy)")
            prior = files.load_npy(args.average_mask, mmap=False)
        if args.segments and "xrai" in saliency["methods"]:
            seg_index, segments = maps.load_segments(args.segments)
            if not np.array_equal(seg_index, index):
                raise ValueError(f"{args.segments} was computed for other evaluation images than {args.eval_images}")
            cache = maps.segment_cache(images, segments)
    except (OSError, ValueError, RuntimeError, models.ModelError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    timer.lap("load")
    written = []
    for path, out in zip(args.model, args.out):
        try:
            model, meta = models.load_checkpoint(path)
            if meta["kind"] != "classifier":
                raise ValueError(f"{path} is a {meta['kind']}, not a classifier")
            if images.shape[-1] != meta.get("image_size", images.shape[-1]):
                raise ValueError(f"{path} was trained at {meta['image_size']} px, the images are {images.shape[-1]} px")
        except (OSError, ValueError, models.ModelError) as err:
            print(f"ERROR: {err}", file=sys.stderr)
            return 1
        timer.lap("load")
        # The model's name in the random streams; a checkpoint of ours records its fold.
        fold = meta.get("settings", {}).get("fold", out)
        written += maps.write_model_maps(model, meta["name"], fold, out, images, saliency, seed=settings["seed"],
                                         dataset=args.dataset, device=device, cache=cache, mode=args.randomize,
                                         timer=timer, prior=prior, stem=args.stem, input_spec=meta.get("input"))
        print(f"{path} ({meta['name']}) on {device}: {len(images)} images, {len(saliency['methods'])} methods")
    job.store(written)
    print(timer.report())
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
