"""Convert one dataset (Kaggle DICOM download + label CSV) into the array contract.

    python scripts/convert.py --format siim --root results/demo_data/siim \
        --image-size 128 --out results/siim/data

Writes images.npy, masks.npy, manifest.csv, boxes.csv, rejected.csv and excluded.csv into
--out (see README, "Contracts"). With --on-bad-input fail (the default) any unusable input stops
the conversion after listing every problem, one line each; with skip they are left out and
listed in rejected.csv. --classes (e.g. the paper's RSNA cohort: Normal "Lung Opacity") and
--split-file (the paper's published splits: only the images it lists) choose the images of the
study; the others are listed in excluded.csv with their reason, and counted in the log.
"""

import argparse
import sys
import time

from salaudit import data, dicom


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", required=True, choices=sorted(data.FORMATS))
    parser.add_argument("--root", required=True, help="folder of the Kaggle download (or demo data)")
    parser.add_argument("--image-size", type=int, required=True, help="output side S in pixels")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--on-bad-input", choices=data.ON_BAD_INPUT, default="fail")
    parser.add_argument("--high-bit-depth", choices=dicom.HIGH_BIT_DEPTH_MODES, default="scale",
                        help="how images with more than 8 stored bits become uint8")
    parser.add_argument("--window-percentiles", type=float, nargs=2, default=(0.5, 99.5),
                        metavar=("LOW", "HIGH"), help="percentiles for --high-bit-depth percentile")
    parser.add_argument("--workers", type=int, default=data.default_workers(), help="decoding processes")
    parser.add_argument("--classes", nargs="+", default=None,
                        help="classes of the study (RSNA: of stage_2_detailed_class_info.csv); default: all")
    parser.add_argument("--split-file", default=None, help="split file in the paper's format: only its images")
    return parser


def main(args):
    start = time.time()
    try:
        converted = data.convert_dataset(
            args.format, args.root, args.image_size, args.high_bit_depth,
            tuple(args.window_percentiles), workers=args.workers, classes=args.classes, split_file=args.split_file,
        )
    except data.DatasetError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    for problem in converted.problems:
        print(f"BAD INPUT {problem}", file=sys.stderr)
    if converted.problems and args.on_bad_input == "fail":
        print(f"ERROR: {len(converted.problems)} unusable inputs (listed above, one per line); fix them "
              f"or set on_bad_input: skip to leave them out (they are then listed in rejected.csv)",
              file=sys.stderr)
        return 1
    data.write_converted(converted, args.out)
    labels = converted.manifest["label"]
    print(f"wrote {len(labels)} images ({int(labels.sum())} positive) of {args.image_size} px to {args.out}; "
          f"{len(converted.problems)} rejected; {len(converted.excluded)} excluded on purpose (excluded.csv); "
          f"{time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
