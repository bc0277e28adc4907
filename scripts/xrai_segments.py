"""XRAI's segments of every evaluation image, computed once for all models.

    python scripts/xrai_segments.py --data results/siim/data --eval-images results/siim/eval_images.csv \
        --out results/siim/maps/xrai_segments.npz --workers 2

They depend only on the image (PAIR's Felzenszwalb segmentation at several scales, dilated),
so every saliency job of the dataset reads them from this file (`salaudit.maps.load_segments`).
"""

import argparse
import sys
import time

import numpy as np

from salaudit import maps


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder with images.npy and manifest.csv")
    parser.add_argument("--eval-images", required=True, help="CSV index,image_id: the evaluation images")
    parser.add_argument("--out", required=True, help="the .npz to write")
    parser.add_argument("--workers", type=int, default=1, help="processes segmenting in parallel")
    return parser


def main(args):
    from salaudit import data

    start = time.perf_counter()
    try:
        manifest = data.read_manifest(f"{args.data}/manifest.csv")
        index = data.read_eval_images(args.eval_images, manifest["image_id"].tolist())
    except (OSError, ValueError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    images = np.load(f"{args.data}/images.npy", mmap_mode="r")[index]
    segments = maps.compute_segments(images, workers=args.workers)
    maps.save_segments(args.out, index, segments)
    counts = [len(s) for s in segments]
    print(f"{len(index)} images, {min(counts)}-{max(counts)} segments each, "
          f"{time.perf_counter() - start:.1f} s with {args.workers} worker(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
