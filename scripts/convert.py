"""Convert one dataset (Kaggle DICOM download + label CSV, or a table of images) into the array
contract (rule ``convert``; the work: `salaudit.datasets.convert`).

    python scripts/convert.py --format siim --root results/demo_data/siim --out results/siim/data \
        --workers 4 --settings '{"image_size": 128}'
    python scripts/convert.py --format table --table table.csv --root data/mine --out results/mine/data \
        --workers 4

``--settings``: the config's ``image_size``, ``on_bad_input``, ``high_bit_depth`` and
``window_percentiles`` (absent: the schema's defaults).
Writes images.npy, masks.npy, manifest.csv, boxes.csv, rejected.csv and excluded.csv into
--out (see README, "Contracts"). With on_bad_input fail (the default) any unusable input stops
the conversion after listing every problem, one line each; with skip they are left out and
listed in rejected.csv. --classes (e.g. the paper's RSNA cohort: Normal "Lung Opacity") and
--split-file (the paper's published splits: only the images it lists) choose the images of the
study; the others are listed in excluded.csv with their reason, and counted in the log. A
table's image used with a warning (RGB converted to grey) is one ``WARNING`` line each.
"""

import argparse
import sys
import time

from salaudit import config
from salaudit.datasets import convert
from salaudit.datasets.formats import FORMATS, DatasetError


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", required=True, choices=sorted(FORMATS))
    parser.add_argument("--root", required=True, help="folder of the Kaggle download (or demo data)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--workers", type=int, required=True, help="decoding processes")
    parser.add_argument("--classes", nargs="+", help="classes of the study (RSNA: of stage_2_detailed_class_info.csv); "
                        "default: all")
    parser.add_argument("--split-file", help="split file in the paper's format: only its images")
    parser.add_argument("--table", help="format table: its CSV, relative to --root")
    config.settings_argument(parser)
    return parser


def main(args):
    start = time.time()
    settings = args.settings
    try:
        converted = convert.convert_dataset(
            args.format, args.root, settings["image_size"], settings["high_bit_depth"],
            tuple(settings["window_percentiles"]), workers=args.workers, classes=args.classes,
            split_file=args.split_file, table_name=args.table,
        )
    except DatasetError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    for warning in converted.warnings:
        print(f"WARNING {warning}", file=sys.stderr)
    for problem in converted.problems:
        print(f"BAD INPUT {problem}", file=sys.stderr)
    if converted.problems and settings["on_bad_input"] == "fail":
        print(f"ERROR: {len(converted.problems)} unusable inputs (listed above, one per line); fix them "
              f"or set on_bad_input: skip to leave them out (they are then listed in rejected.csv)",
              file=sys.stderr)
        return 1
    convert.write_converted(converted, args.out)
    labels = converted.manifest["label"]
    print(f"wrote {len(labels)} images ({int(labels.sum())} positive) of {settings['image_size']} px to {args.out}; "
          f"{len(converted.problems)} rejected; {len(converted.excluded)} excluded on purpose (excluded.csv); "
          f"{time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
