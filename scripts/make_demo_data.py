"""Write a synthetic demo dataset in the layout of the SIIM-ACR or RSNA Kaggle download, or of
format table (PNG images and masks listed in table.csv).

Example:
    python scripts/make_demo_data.py --format siim --out data/demo/siim --demo '{"n_images": 200, "seed": 1}'

See `salaudit.datasets.demo` for what is simulated and the files written.
"""

import sys
import time

from salaudit import config
from salaudit.datasets.demo import FORMATS, write_demo

REPORT_EVERY = 50


def get_args_parser(add_help=True):
    import argparse

    parser = argparse.ArgumentParser(description="Synthetic chest X-ray demo data", add_help=add_help)
    parser.add_argument("--format", required=True, choices=FORMATS, help="layout and lesion type to write")
    parser.add_argument("--out", required=True, help="dataset root folder (created if missing)")
    parser.add_argument("--demo", type=config.demo_block, default="{}", metavar="JSON",
                        help="the dataset's demo block: n_images, positive_fraction, seed (absent: the schema's "
                             "defaults); the same block gives byte-identical files")
    return parser


def main(args):
    start = time.perf_counter()

    def progress(done, total):
        if done % REPORT_EVERY == 0:
            elapsed = time.perf_counter() - start
            print(f"{args.format}: {done}/{total} images, {done / elapsed:.1f} images/s", flush=True)

    try:
        truth = write_demo(
            args.format, args.out, args.demo["n_images"], args.demo["positive_fraction"], args.demo["seed"],
            progress=progress
        )
    except ValueError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    n_positive = sum(item["label"] for item in truth)
    print(
        f"wrote {len(truth)} {args.format} images ({n_positive} positive) to {args.out} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
