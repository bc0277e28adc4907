"""Train one localizer fold and write model.pt, maps.npy and metrics.json (rule ``train_localizer``;
the work: `salaudit.models.localizers.training.train_localizer`).

    python scripts/train_localizer.py --data results/siim/data --splits results/siim/splits.csv \\
        --eval-images results/siim/eval_images.csv --localizer unet --fold 0 \\
        --out results/siim/localizers/unet/fold0 --settings '{"seed": 0, "localizers": {"epochs": 10}}'

``--settings``: the config's ``seed``, ``device`` and ``localizers`` block (absent keys: the
schema's defaults). maps.npy: float16 [n_eval, S, S] in [0, 1], one map per row of
--eval-images, in its order (unet: sigmoid probability; retinanet: detection scores painted over
their boxes). A checkpoint of the training state (train_state.pt in --out) is written after an
epoch when --checkpoint-seconds have passed since the last one (0: every epoch); rerunning an
interrupted job resumes after the last saved epoch. It is removed once the outputs are written.
A finished job's outputs are kept in --out/.salaudit-cache (`salaudit.jobcache`): rerunning it
with the same code, arguments and input bytes restores them instead of training again.
"""

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from salaudit import jobcache, layout, models
from salaudit.datasets.tables import converted_files, load_converted, read_eval_images
from salaudit.models import training
from salaudit.models.localizers import networks
from salaudit.models.localizers.io import read_boxes
from salaudit.models.localizers.training import predict_maps, train_localizer


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder with images.npy, masks.npy, manifest.csv, boxes.csv")
    parser.add_argument("--splits", required=True)
    parser.add_argument("--eval-images", required=True, help="CSV index,image_id: the images to write maps for")
    parser.add_argument("--localizer", required=True, help=f"one of {', '.join(networks.LOCALIZERS)}")
    training.add_training_arguments(parser)
    return parser


def _load(args):
    """Inputs, checked; raises ValueError/ModelError with a one-line reason."""
    folder = Path(args.data)
    boxes = folder / layout.file_name(layout.BOXES)
    if not boxes.is_file() or not Path(args.eval_images).is_file():
        raise ValueError(f"{boxes} or {args.eval_images} does not exist")
    images, masks, manifest, splits = load_converted(folder, args.splits)
    ids = manifest["image_id"].tolist()
    return images, masks, read_boxes(boxes, ids), splits, read_eval_images(args.eval_images, ids)


def main(args):
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    state = out / layout.TRAIN_STATE
    outputs = [out / layout.file_name(t) for t in (layout.LOCALIZER_MODEL, layout.LOCALIZER_MAPS, layout.LOCALIZER_METRICS)]
    try:
        settings = networks.LocalizerSettings.from_config(args.settings, args.localizer, args.fold)
        images, masks, boxes, splits, eval_idx = _load(args)
        size = images.shape[-1]
        networks.check_settings(settings, size)
        out.mkdir(parents=True, exist_ok=True)
        inputs = converted_files(args.data) + [Path(args.data) / layout.file_name(layout.BOXES), args.splits,
                                               args.eval_images]
        cache = jobcache.JobCache(__file__, vars(args), inputs, [out], "train")
        if cache.restore():
            state.unlink(missing_ok=True)
            return 0
        device = training.resolve_device(args.settings["device"])
        model, metrics = train_localizer(images, masks, boxes, splits, settings, state, device, log=print,
                                         checkpoint_seconds=args.checkpoint_seconds)
    except (models.ModelError, OSError, ValueError, RuntimeError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    maps = predict_maps(model, args.localizer, images, eval_idx, settings.batch_size, device)
    metrics["n_eval"] = len(eval_idx)
    metrics["eval_mean_auprc"] = networks.mean_auprc(maps, masks[eval_idx])
    models.save_checkpoint(outputs[0], model, "localizer", args.localizer, asdict(settings), size,
                           metrics={k: v for k, v in metrics.items() if k != "history"})
    np.save(outputs[1], maps)
    metrics["versions"] = models.library_versions()
    outputs[2].write_text(json.dumps(metrics, indent=2))
    cache.store(outputs)
    state.unlink(missing_ok=True)
    print(f"best epoch {metrics['best_epoch']}: {metrics['score_name']} {metrics['val_score']:.4f}, "
          f"eval mean AUPRC {metrics['eval_mean_auprc']:.4f} on {len(eval_idx)} images, "
          f"{metrics['seconds']:.1f} s on {metrics['device']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
