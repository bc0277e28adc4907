"""XRAI's segments of every evaluation image, computed once for all models.

    python scripts/xrai_segments.py --data results/siim/data --eval-images results/siim/eval_images.csv \
        --out results/siim/maps/xrai_segments.npz --workers 2

They depend only on the image (PAIR's Felzenszwalb segmentation at several scales, dilated),
so every saliency job of the dataset reads them from this file (`salaudit.saliency.segments.load_segments`).
A finished job's file is kept in .salaudit-cache beside it (`salaudit.jobcache`): rerunning it with
the same code, arguments and input bytes restores it.
"""

import argparse
import sys
import time
from pathlib import Path

from salaudit import files, jobcache, layout
from salaudit.saliency import segments as xrai


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder with images.npy and manifest.csv")
    parser.add_argument("--eval-images", required=True, help="CSV index,image_id: the evaluation images")
    parser.add_argument("--out", required=True, help="the .npz to write")
    parser.add_argument("--workers", type=int, required=True, help="processes segmenting in parallel")
    return parser


def main(args):
    from salaudit.datasets import tables

    start = time.perf_counter()
    try:
        manifest = tables.read_manifest(Path(args.data) / layout.file_name(layout.MANIFEST))
        index = tables.read_eval_images(args.eval_images, manifest["image_id"].tolist())
        images = files.load_npy(Path(args.data) / layout.file_name(layout.IMAGES))[index]
        inputs = [Path(args.data) / layout.file_name(t) for t in (layout.IMAGES, layout.MANIFEST)] + [args.eval_images]
        job = jobcache.JobCache(__file__, vars(args), inputs, [Path(args.out).parent], "xrai_segments")
        if job.restore():
            return 0
    except (OSError, ValueError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    segments = xrai.compute_segments(images, workers=args.workers)
    xrai.save_segments(args.out, index, segments)
    job.store([args.out])
    counts = [len(s) for s in segments]
    print(f"{len(index)} images, {min(counts)}-{max(counts)} segments each, "
          f"{time.perf_counter() - start:.1f} s with {args.workers} worker(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
