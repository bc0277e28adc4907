"""Train one classifier fold and write model.pt, metrics.json and predictions.csv (rule
``train_classifier``; the work: `salaudit.models.classifier.train_classifier`).

    python scripts/train_classifier.py --data results/siim/data --splits results/siim/splits.csv \\
        --arch inception_v3 --fold 0 --out results/siim/models/inception_v3/fold0 \\
        --settings '{"seed": 0, "device": "auto", "classifiers": {"epochs": 10}}'

``--settings``: the config's ``seed``, ``device`` and ``classifiers`` block (absent keys: the
schema's defaults). ``--permute-labels`` (rule ``train_label_randomized``): the labels of the fold
pool (train and validation rows) are permuted before training, the test labels kept: Adebayo et
al.'s data randomization test. A checkpoint of the training state (train_state.pt in --out) is written after
an epoch when --checkpoint-seconds have passed since the last one (0: every epoch); rerunning an
interrupted job resumes after the last saved epoch. It is removed once model.pt is written.
A finished job's outputs are kept in --out/.salaudit-cache (`salaudit.jobcache`): rerunning it
with the same code, arguments and input bytes restores them instead of training again.
"""

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from salaudit import jobcache, layout, models
from salaudit.datasets.splits import fold_indices
from salaudit.datasets.tables import converted_files, load_converted
from salaudit.models import classifier, training


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder with images.npy, masks.npy and manifest.csv")
    parser.add_argument("--splits", required=True)
    parser.add_argument("--arch", required=True, help=f"one of {', '.join(models.ARCHITECTURES)}")
    parser.add_argument("--permute-labels", action="store_true",
                        help="train on permuted labels (the data randomization test; same seeds, epochs, selection)")
    training.add_training_arguments(parser)
    return parser


def main(args):
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = classifier.TrainSettings.from_config(args.settings, args.arch, args.fold, args.permute_labels)
    state = out / layout.TRAIN_STATE
    outputs = [out / layout.file_name(t) for t in (layout.CLASSIFIER_MODEL, layout.CLASSIFIER_METRICS, layout.PREDICTIONS)]
    try:
        images, _, manifest, splits = load_converted(args.data, args.splits)
        inputs = converted_files(args.data) + [args.splits] + ([settings.pretrained] if settings.pretrained else [])
        cache = jobcache.JobCache(__file__, vars(args), inputs, [out], "train")
        if cache.restore():
            state.unlink(missing_ok=True)
            return 0
        device = training.resolve_device(args.settings["device"])
        model, metrics, test_probs = classifier.train_classifier(
            images, manifest["label"].to_numpy(), splits, settings, state, device, log=print,
            checkpoint_seconds=args.checkpoint_seconds,
        )
    except (models.ModelError, OSError, ValueError, RuntimeError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    models.save_checkpoint(outputs[0], model, "classifier", args.arch,
                           asdict(settings), images.shape[-1], metrics={k: v for k, v in metrics.items() if k != "history"})
    metrics["versions"] = models.library_versions()
    outputs[1].write_text(json.dumps(metrics, indent=2))
    _, _, test_idx = fold_indices(splits, args.fold)
    predictions = pd.DataFrame({"image_id": manifest["image_id"].to_numpy()[test_idx],
                                "label": manifest["label"].to_numpy()[test_idx], "prob": test_probs})
    predictions.to_csv(outputs[2], index=False)
    cache.store(outputs)
    state.unlink(missing_ok=True)
    print(f"best epoch {metrics['best_epoch']}: val AUROC {metrics['val_auroc']:.4f}, "
          f"test AUROC {metrics['test_auroc']:.4f}, {metrics['seconds']:.1f} s on {metrics['device']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
