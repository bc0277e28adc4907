"""Bring one classifier replicate as weights (classifiers.weights.<arch>[fold]) and write
model.pt, metrics.json and predictions.csv as a trained fold has them (rule
``import_classifier``; the work: `salaudit.models.imported`).

    python scripts/import_classifier.py --file my/resnet34_a.pt --arch resnet34 --fold 0 \\
        --data results/mine/data --splits results/mine/splits.csv --out results/mine/models/resnet34/fold0 \\
        --settings '{"seed": 0, "device": "auto", "classifiers": {"preprocess": {}}}'

The file is checked against the architecture (one line naming it when its keys, shapes or output
classes do not match), evaluated on the fold's validation rows and the test split of the study
(AUROC in metrics.json, never trained), and saved in the project's checkpoint format with what it
takes as input (``classifiers.preprocess.<arch>``) and the file's sha256.
"""

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from salaudit import config, jobcache, layout, models
from salaudit.datasets.splits import fold_indices
from salaudit.datasets.tables import load_converted
from salaudit.models import imported, training


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", required=True, help="the replicate's weights file")
    parser.add_argument("--arch", required=True)
    parser.add_argument("--fold", required=True, type=int, help="replicate index (= fold)")
    parser.add_argument("--data", required=True, help="folder with images.npy, masks.npy and manifest.csv")
    parser.add_argument("--splits", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=0)
    config.settings_argument(parser)
    return parser


def main(args):
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    spec = models.input_spec(args.settings["classifiers"]["preprocess"].get(args.arch))
    try:
        images, _, manifest, splits = load_converted(args.data, args.splits)
        models.check_image_size(args.arch, images.shape[-1])
        model = imported.load_weights(args.file, args.arch, spec["channels"])
        device = training.resolve_device(args.settings["device"])
        metrics, test_probs = imported.evaluate(model, images, manifest["label"].to_numpy(), splits, args.fold, spec,
                                                device, args.settings["classifiers"]["batch_size"])
    except (models.ModelError, OSError, ValueError, RuntimeError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    metrics = {"arch": args.arch, "fold": args.fold, **metrics}
    source = {"file": str(Path(args.file).resolve()), "sha256": jobcache.sha256(args.file)}
    out.mkdir(parents=True, exist_ok=True)
    models.save_checkpoint(out / layout.file_name(layout.CLASSIFIER_MODEL), model.cpu(), "classifier", args.arch,
                           {"arch": args.arch, "fold": args.fold, "seed": args.settings["seed"]}, images.shape[-1],
                           metrics=metrics, imported=source,
                           **({"input": spec} if spec != models.DEFAULT_INPUT else {}))
    metrics.update(imported=source, versions=models.library_versions())
    (out / layout.file_name(layout.CLASSIFIER_METRICS)).write_text(json.dumps(metrics, indent=2))
    _, _, test_idx = fold_indices(splits, args.fold)
    pd.DataFrame({"image_id": manifest["image_id"].to_numpy()[test_idx],
                  "label": manifest["label"].to_numpy()[test_idx], "prob": test_probs}).to_csv(
        out / layout.file_name(layout.PREDICTIONS), index=False)
    print(f"{args.file}: {args.arch} replicate {args.fold}, val AUROC {metrics['val_auroc']:.4f}, "
          f"test AUROC {metrics['test_auroc']:.4f} on {device}")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
