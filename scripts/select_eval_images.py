"""Choose the evaluation images: positive test images whose mask is non-empty at the converted
size, the first --n-eval in a seeded order.

    python scripts/select_eval_images.py --manifest results/siim/data/manifest.csv \
        --splits results/siim/splits.csv --n-eval 100 --seed 0 --out results/siim/eval_images.csv
"""

import argparse
import sys

import pandas as pd

from salaudit import config
from salaudit.datasets import eval_images
from salaudit.datasets.tables import read_manifest


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--splits", required=True)
    parser.add_argument("--out", required=True)
    config.settings_argument(parser)
    return parser


def main(args):
    manifest = read_manifest(args.manifest)
    n_eval = args.settings["n_eval"]
    splits = pd.read_csv(args.splits, dtype={"image_id": str})
    table = eval_images.select_eval_images(manifest, splits, n_eval, args.settings["seed"])
    _, empty = eval_images.eval_candidates(manifest, splits)
    if len(empty):
        print(f"NOTE: {len(empty)} positive test images have an empty mask at the converted size (a lesion lost "
              f"in resizing) and cannot be evaluation images, e.g. {manifest['image_id'].iloc[empty[0]]}")
    if table.empty:
        print("ERROR: the test split has no positive images with a non-empty mask to evaluate maps on",
              file=sys.stderr)
        return 1
    if len(table) < n_eval:
        print(f"NOTE: n_eval is {n_eval} but the test split has only {len(table)} positive images with a "
              f"non-empty mask; using all")
    table.to_csv(args.out, index=False)
    print(f"{len(table)} evaluation images written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
