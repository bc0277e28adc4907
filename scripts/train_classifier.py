"""Train one classifier fold and write model.pt, metrics.json and predictions.csv.

    python scripts/train_classifier.py --data results/siim/data --splits results/siim/splits.csv \
        --arch inception_v3 --fold 0 --out results/siim/models/inception_v3/fold0

A checkpoint of the training state (train_state.pt in --out) is written after an epoch when
--checkpoint-seconds have passed since the last one (0: every epoch); rerunning an interrupted
job resumes after the last saved epoch. It is removed once
model.pt is written.
"""

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from salaudit import classifier, data, models, training


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder with images.npy and manifest.csv")
    parser.add_argument("--splits", required=True)
    parser.add_argument("--arch", required=True, help=f"one of {', '.join(models.ARCHITECTURES)}")
    parser.add_argument("--fold", type=int, required=True)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--patience", type=int, default=3, help="epochs without improvement before stopping")
    parser.add_argument("--no-augment", dest="augment", action="store_false")
    parser.add_argument("--seed", type=int, default=0, help="base seed (every draw: its stream of salaudit.seeds)")
    parser.add_argument("--pretrained", default=None, help="local weights file (nothing is downloaded)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    parser.add_argument("--memory-format", default="auto", choices=training.MEMORY_FORMATS,
                        help="auto: channels-last on CUDA, on a CPU where the architecture trains faster so")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--checkpoint-seconds", type=float, default=training.CHECKPOINT_SECONDS,
                        help="save the resumable training state after an epoch once this many seconds have passed "
                             "since the last save (0: after every epoch)")
    return parser


def main(args):
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = classifier.TrainSettings(
        arch=args.arch, fold=args.fold, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, patience=args.patience, augment=args.augment, seed=args.seed,
        pretrained=args.pretrained, memory_format=args.memory_format,
    )
    try:
        images, _, manifest, splits = data.load_converted(args.data, args.splits)
        device = training.resolve_device(args.device)
        model, metrics, test_probs = classifier.train_classifier(
            images, manifest["label"].to_numpy(), splits, settings, out / "train_state.pt", device,
            checkpoint_seconds=args.checkpoint_seconds,
        )
    except (models.ModelError, ValueError, RuntimeError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    models.save_checkpoint(out / "model.pt", model, args.arch, settings=asdict(settings),
                           image_size=int(images.shape[-1]), metrics={k: v for k, v in metrics.items() if k != "history"})
    metrics["versions"] = models.library_versions()
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    _, _, test_idx = classifier.fold_indices(splits, args.fold)
    pd.DataFrame({"image_id": manifest["image_id"].to_numpy()[test_idx],
                  "label": manifest["label"].to_numpy()[test_idx], "prob": test_probs}).to_csv(out / "predictions.csv", index=False)
    (out / "train_state.pt").unlink(missing_ok=True)
    print(f"best epoch {metrics['best_epoch']}: val AUROC {metrics['val_auroc']:.4f}, "
          f"test AUROC {metrics['test_auroc']:.4f}, {metrics['seconds']:.1f} s on {metrics['device']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
