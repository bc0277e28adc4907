"""Make the held-out test split and k cross-validation folds of one converted dataset.

    python scripts/split.py --manifest results/siim/data/manifest.csv --folds 5 \
        --test-fraction 0.2 --seed 0 --out results/siim/splits.csv

With --split-file (the paper's published ``,Image_ID,Split`` files) the test set is taken
from the file and its train+val images form the fold pool; --split-table (a dataset of format
table with a ``split`` column: its table) does the same with the table's column.
"""

import argparse
import sys

from salaudit import config
from salaudit.datasets import splits
from salaudit.datasets.tables import read_manifest


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--out", required=True)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--split-file", help="optional paper-format split file")
    group.add_argument("--split-table", help="optional table (format table) whose split column gives the splits")
    config.settings_argument(parser)
    return parser


def main(args):
    manifest = read_manifest(args.manifest)
    folds, seed = args.settings["folds"], args.settings["seed"]
    try:
        if args.split_file:
            table, notes = splits.splits_from_file(manifest, args.split_file, folds, seed)
        elif args.split_table:
            table, notes = splits.splits_from_table(manifest, args.split_table, folds, seed)
        else:
            table, notes = splits.make_splits(manifest, args.settings["test_fraction"], folds, seed), []
    except splits.SplitError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    for note in notes + splits.check_splits(manifest, table):
        print(f"NOTE: {note}")
    table.to_csv(args.out, index=False)
    merged = table.merge(manifest[["image_id", "label"]], on="image_id")
    summary = merged.groupby(["split", "fold"])["label"].agg(["size", "sum"])
    for (split, fold), row in summary.iterrows():
        print(f"{split:5s} fold {fold:2d}: {row['size']:5d} images, {row['sum']:5d} positive")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
