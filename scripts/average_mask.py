"""The paper's average-mask baseline: mean mask of the positive training-pool images.

    python scripts/average_mask.py --data results/siim/data --splits results/siim/splits.csv \
        --out results/siim/baselines/average_mask.npy
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from salaudit import files, layout
from salaudit.datasets.tables import read_manifest
from salaudit.evaluation.baselines import average_mask


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder with masks.npy and manifest.csv")
    parser.add_argument("--splits", required=True)
    parser.add_argument("--out", required=True)
    return parser


def main(args):
    try:
        masks = files.load_npy(Path(args.data) / layout.file_name(layout.MASKS))
    except ValueError as err:  # a damaged masks.npy: one line naming it and the rule that remakes it
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    manifest = read_manifest(Path(args.data) / layout.file_name(layout.MANIFEST))
    splits = pd.read_csv(args.splits, dtype={"image_id": str})
    mean = average_mask(masks, manifest["label"].to_numpy(), splits)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, mean)
    print(f"average mask of {int(((splits.split == 'train') & (manifest.label == 1)).sum())} positive training "
          f"images: mean {mean.mean():.4f}, max {mean.max():.4f} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
