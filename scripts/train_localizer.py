"""Train one localizer fold and write model.pt, maps.npy and metrics.json.

    python scripts/train_localizer.py --data results/siim/data --splits results/siim/splits.csv \
        --eval-images results/siim/eval_images.csv --localizer unet --fold 0 \
        --out results/siim/localizers/unet/fold0

maps.npy: float16 [n_eval, S, S] in [0, 1], one map per row of --eval-images, in its order
(unet: sigmoid probability; retinanet: detection scores painted over their boxes).
A checkpoint of the training state (train_state.pt in --out) is written after an epoch when
--checkpoint-seconds have passed since the last one (0: every epoch); rerunning an interrupted
job resumes after the last saved epoch. It is removed once
the outputs are written.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from salaudit import data, localizers, models, training


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder with images.npy, masks.npy, manifest.csv, boxes.csv")
    parser.add_argument("--splits", required=True)
    parser.add_argument("--eval-images", required=True, help="CSV index,image_id: the images to write maps for")
    parser.add_argument("--localizer", required=True, help=f"one of {', '.join(localizers.LOCALIZERS)}")
    parser.add_argument("--fold", type=int, required=True)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=None, help="default: 1e-3 for unet, 1e-4 for retinanet")
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--patience", type=int, default=3, help="epochs without improvement before stopping")
    parser.add_argument("--no-augment", dest="augment", action="store_false")
    parser.add_argument("--seed", type=int, default=0, help="base seed (every draw: its stream of salaudit.seeds)")
    parser.add_argument("--base-channels", type=int, default=16, help="unet: width of the first level")
    parser.add_argument("--depth", type=int, default=4, help="unet: poolings; image_size must divide by 2**depth")
    parser.add_argument("--backbone", default="resnet18", help=f"retinanet: one of {', '.join(localizers.BACKBONES)}")
    parser.add_argument("--score-threshold", type=float, default=0.001, help="retinanet: lowest detection score painted")
    parser.add_argument("--fpn-channels", type=int, default=256, help="retinanet: FPN and head width")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--checkpoint-seconds", type=float, default=training.CHECKPOINT_SECONDS,
                        help="save the resumable training state after an epoch once this many seconds have passed "
                             "since the last save (0: after every epoch)")
    return parser


def _load(args):
    """Inputs, checked; raises ValueError/ModelError with a one-line reason."""
    folder = Path(args.data)
    if not (folder / "boxes.csv").is_file() or not Path(args.eval_images).is_file():
        raise ValueError(f"{folder / 'boxes.csv'} or {args.eval_images} does not exist")
    images, masks, manifest, splits = data.load_converted(folder, args.splits)
    ids = manifest["image_id"].tolist()
    boxes = localizers.read_boxes(folder / "boxes.csv", ids)
    eval_idx = localizers.read_eval_images(args.eval_images, ids)
    return images, masks, boxes, splits, eval_idx


def main(args):
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    try:
        settings = localizers.LocalizerSettings(
            localizer=args.localizer, fold=args.fold, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            weight_decay=args.weight_decay, patience=args.patience, augment=args.augment, seed=args.seed,
            base_channels=args.base_channels, depth=args.depth, backbone=args.backbone,
            score_threshold=args.score_threshold, fpn_channels=args.fpn_channels,
        )
        images, masks, boxes, splits, eval_idx = _load(args)
        size = images.shape[-1]
        localizers.check_settings(settings, size)
        device = training.resolve_device(args.device)
        out.mkdir(parents=True, exist_ok=True)
        model, metrics = localizers.train_localizer(
            images, masks, boxes, splits, settings, out / "train_state.pt", device,
            checkpoint_seconds=args.checkpoint_seconds,
        )
    except (models.ModelError, ValueError, RuntimeError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    maps = localizers.predict_maps(model, args.localizer, images, eval_idx, args.batch_size, device)
    metrics["n_eval"] = len(eval_idx)
    metrics["eval_mean_auprc"] = localizers.mean_auprc(maps, masks[eval_idx])
    localizers.save_localizer(out / "model.pt", model, settings, size,
                              metrics={k: v for k, v in metrics.items() if k != "history"})
    np.save(out / "maps.npy", maps)
    metrics["versions"] = models.library_versions()
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "train_state.pt").unlink(missing_ok=True)
    print(f"best epoch {metrics['best_epoch']}: {metrics['score_name']} {metrics['val_score']:.4f}, "
          f"eval mean AUPRC {metrics['eval_mean_auprc']:.4f} on {len(eval_idx)} images, "
          f"{metrics['seconds']:.1f} s on {metrics['device']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
