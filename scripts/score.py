"""Per-image scores of one dataset's maps: utility (AUPRC), randomization and consistency (SSIM).

    python scripts/score.py --results results --dataset siim \\
        --methods grad sg ig sig gcam gbp ggcam xrai random --archs inception_v3 densenet121 \\
        --folds 0 1 2 3 4 --localizer unet \\
        --steps inception_v3=01_fc,02_Mixed_7c,...,11_Mixed_5c --random-folds 0 1 2 3 4 --modes cascade \\
        --ssim-window 7 --ssim-data-range 2.0 --random-pairs 50 --seed 0 --out results/siim/scores

Reads (paths under ``--results``, the README's contracts): ``{dataset}/data/masks.npy``,
``{dataset}/eval_images.csv``, ``{dataset}/baselines/average_mask.npy``,
``{dataset}/localizers/{localizer}/fold{k}/maps.npy``,
``{dataset}/maps/{arch}/fold{k}/{method}/trained.npy`` and, for the ``--steps`` architectures
and ``--random-folds``, ``.../{method}/{mode}/{step}.npy`` (each with its ``.flags.npy``).

Writes to ``--out``: ``utility.csv``, ``randomization.csv``, ``random_pairs.csv``,
``consistency.csv`` (columns in the README). Degenerate maps (constant) and images (empty
mask) are kept as rows with a ``reason``; nothing is dropped.
"""

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from salaudit import metrics

UTILITY_COLUMNS = ["dataset", "source", "method", "arch", "fold", "image_id", "auprc", "average_precision",
                   "positive_fraction", "reason"]
RANDOMIZATION_COLUMNS = ["dataset", "method", "arch", "fold", "mode", "step_index", "step", "last_step", "image_id",
                         "ssim", "reason"]
RANDOM_PAIR_COLUMNS = ["dataset", "method", "arch", "fold", "image_id", "ssim", "n_pairs", "n_degenerate_partners",
                       "reason"]
CONSISTENCY_COLUMNS = ["dataset", "criterion", "method", "arch_a", "fold_a", "arch_b", "fold_b", "image_id", "ssim",
                       "reason"]

CONSTANT = "constant_map"
EMPTY_MASK = "empty_mask"
CHUNK = 16  # images per SSIM batch: bounded memory at any n_eval


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results", help="root of the results tree")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--methods", nargs="+", required=True)
    parser.add_argument("--archs", nargs="+", required=True)
    parser.add_argument("--folds", nargs="+", type=int, required=True)
    parser.add_argument("--localizer", required=True, help="unet or retinanet")
    parser.add_argument("--steps", nargs="*", default=[], metavar="ARCH=STEP,STEP,...",
                        help="randomized architectures and their step labels, top-down (last = untrained)")
    parser.add_argument("--random-folds", nargs="*", type=int, default=[], help="folds with randomized maps")
    parser.add_argument("--modes", nargs="*", default=["cascade"], choices=["cascade", "independent"])
    parser.add_argument("--ssim-window", type=int, default=metrics.SSIM_WINDOW)
    parser.add_argument("--ssim-data-range", type=float, default=metrics.SSIM_DATA_RANGE)
    parser.add_argument("--random-pairs", type=int, default=50, help="partners per image of the random-pair baseline")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random-pair draw")
    parser.add_argument("--out", required=True, help="output folder (results/{dataset}/scores)")
    return parser


def parse_steps(entries: list[str]) -> dict[str, list[str]]:
    steps = {}
    for entry in entries:
        arch, sep, labels = entry.partition("=")
        if not sep or not labels:
            raise SystemExit(f"--steps {entry!r}: expected ARCH=STEP,STEP,...")
        steps[arch] = labels.split(",")
    return steps


def reason(*parts) -> str:
    """'' when nothing is degenerate, else the reasons joined by '+'."""
    return "+".join(dict.fromkeys(p for p in parts if p))


class MapReader:
    """Loads a map file with its flags and checks it against the evaluation list."""

    def __init__(self, n_eval: int, side: tuple[int, int]):
        self.shape = (n_eval, *side)

    def __call__(self, path: Path, flags: bool = True) -> tuple[np.ndarray, np.ndarray]:
        maps = np.load(path, mmap_mode="r")
        if maps.shape != self.shape:
            raise SystemExit(f"{path}: shape {maps.shape}, expected {self.shape} (eval_images.csv order)")
        if flags:
            constant = np.load(path.with_suffix(".flags.npy")).astype(bool)
            if constant.shape != (self.shape[0],):
                raise SystemExit(f"{path.with_suffix('.flags.npy')}: shape {constant.shape}, expected ({self.shape[0]},)")
        else:  # localizer maps carry no flags: a constant map (e.g. nothing painted) is degenerate
            constant = metrics.constant_maps(maps)
        return maps, constant


def utility_rows(dataset, source, method, arch, fold, maps, constant, truth, image_ids, fractions):
    for i, image_id in enumerate(image_ids):
        area, ap = metrics.precision_recall_areas(maps[i], truth[i])
        if constant[i] and fractions[i] > 0:
            # A constant map ranks no pixel above another: score it at chance, the positive
            # fraction (its average precision), not the trapezoid's (1 + fraction) / 2, which
            # sklearn's (recall 0, precision 1) end point would credit it with.
            area = ap = float(fractions[i])
        yield (dataset, source, method, arch, fold, image_id, area, ap, fractions[i],
               reason(CONSTANT if constant[i] else "", EMPTY_MASK if fractions[i] == 0 else ""))


def paired_ssim(a, b, window, data_range, moments_a=None):
    """SSIM of a[i] with b[i] for every image, in chunks."""
    out = np.empty(len(a))
    for start in range(0, len(a), CHUNK):
        part = slice(start, start + CHUNK)
        ma = None if moments_a is None else (moments_a[0][part], moments_a[1][part])
        out[part] = metrics.ssim_batch(a[part], b[part], window, data_range, moments_a=ma)
    return out


def main(args):
    started = time.time()
    root = Path(args.results) / args.dataset
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    steps = parse_steps(args.steps)
    eval_images = pd.read_csv(root / "eval_images.csv", dtype={"image_id": str})
    image_ids = eval_images["image_id"].tolist()
    n = len(image_ids)
    masks = np.load(root / "data" / "masks.npy", mmap_mode="r")
    truth = np.asarray(masks[eval_images["index"].to_numpy()]) > 0
    fractions = truth.reshape(n, -1).mean(axis=1)
    read = MapReader(n, truth.shape[1:])
    window, data_range = args.ssim_window, args.ssim_data_range
    print(f"{args.dataset}: {n} evaluation images, {int((fractions == 0).sum())} with an empty mask; "
          f"SSIM window {window}, data_range {data_range}", flush=True)

    def trained_path(arch, fold, method):
        return root / "maps" / arch / f"fold{fold}" / method / "trained.npy"

    def step_path(arch, fold, method, mode, step):
        return root / "maps" / arch / f"fold{fold}" / method / mode / f"{step}.npy"

    def localizer_path(fold):
        return root / "localizers" / args.localizer / f"fold{fold}" / "maps.npy"

    # ---------------------------------------------------------------- utility
    rows = []
    average = np.load(root / "baselines" / "average_mask.npy").astype(np.float32)
    average_maps = np.broadcast_to(average, (n, *average.shape))
    rows += utility_rows(args.dataset, "average_mask", "average_mask", "-", -1, average_maps,
                         np.full(n, metrics.constant_maps(average[None])[0]), truth, image_ids, fractions)
    for fold in args.folds:
        maps, constant = read(localizer_path(fold), flags=False)
        rows += utility_rows(args.dataset, "localizer", args.localizer, args.localizer, fold, maps, constant, truth,
                             image_ids, fractions)
    for method, arch, fold in itertools.product(args.methods, args.archs, args.folds):
        rows += utility_rows(args.dataset, "trained", method, arch, fold, *read(trained_path(arch, fold, method)),
                             truth, image_ids, fractions)
    # The fully randomized ("untrained") model is the cascade's last step: none without a cascade.
    untrained_folds = args.random_folds if "cascade" in args.modes else []
    for method, arch, fold in itertools.product(args.methods, steps, untrained_folds):
        last = step_path(arch, fold, method, "cascade", steps[arch][-1])
        rows += utility_rows(args.dataset, "untrained", method, arch, fold, *read(last), truth, image_ids, fractions)
    utility = pd.DataFrame(rows, columns=UTILITY_COLUMNS)
    utility.to_csv(out / "utility.csv", index=False)
    print(f"utility: {len(utility)} maps scored, {int((utility['reason'] != '').sum())} degenerate "
          f"({time.time() - started:.0f} s)", flush=True)

    # ---------------------------------------------------------------- randomization + random pairs
    rand_rows, pair_rows = [], []
    partners = metrics.random_partners(n, args.random_pairs, args.seed) if n >= 2 else None
    for method, arch, fold in itertools.product(args.methods, steps, args.random_folds):
        trained, trained_constant = read(trained_path(arch, fold, method))
        trained = np.asarray(trained, dtype=np.float64)
        moments = metrics.local_moments(trained, window)
        for mode in args.modes:
            for index, step in enumerate(steps[arch], start=1):
                maps, constant = read(step_path(arch, fold, method, mode, step))
                values = paired_ssim(trained, maps, window, data_range, moments)
                last = index == len(steps[arch])
                rand_rows += [(args.dataset, method, arch, fold, mode, index, step, last, image_ids[i], values[i],
                               reason(CONSTANT if trained_constant[i] or constant[i] else ""))
                              for i in range(n)]
        for i in range(n):
            if partners is None:
                pair_rows.append((args.dataset, method, arch, fold, image_ids[i], np.nan, 0, 0, "single_image"))
                continue
            js = partners[i]
            values = metrics.ssim_batch(np.broadcast_to(trained[i], (len(js), *trained.shape[1:])), trained[js],
                                        window, data_range,
                                        moments_a=(np.broadcast_to(moments[0][i], (len(js), *trained.shape[1:])),
                                                   np.broadcast_to(moments[1][i], (len(js), *trained.shape[1:]))),
                                        moments_b=(moments[0][js], moments[1][js]))
            pair_rows.append((args.dataset, method, arch, fold, image_ids[i], float(values.mean()), len(js),
                              int(trained_constant[js].sum()), reason(CONSTANT if trained_constant[i] else "")))
    randomization = pd.DataFrame(rand_rows, columns=RANDOMIZATION_COLUMNS)
    randomization.to_csv(out / "randomization.csv", index=False)
    pd.DataFrame(pair_rows, columns=RANDOM_PAIR_COLUMNS).to_csv(out / "random_pairs.csv", index=False)
    print(f"randomization: {len(randomization)} map pairs, random pairs: {len(pair_rows)} images x models "
          f"({time.time() - started:.0f} s)", flush=True)

    # ---------------------------------------------------------------- repeatability + reproducibility
    cons_rows = []

    def add_pairs(criterion, method, a, b, maps_a, maps_b):
        (ma, ca), (mb, cb) = maps_a, maps_b
        values = paired_ssim(ma, mb, window, data_range)
        # A constant (blank) map shows no location, so it agrees with nothing: SSIM 0. As it
        # is, two blank maps would score SSIM 1 and make a method look repeatable.
        values = np.where(ca | cb, 0.0, values)
        cons_rows.extend((args.dataset, criterion, method, a[0], a[1], b[0], b[1], image_ids[i], values[i],
                          reason(CONSTANT if ca[i] or cb[i] else "")) for i in range(n))

    for fa, fb in itertools.combinations(args.folds, 2):
        add_pairs("repeatability", args.localizer, (args.localizer, fa), (args.localizer, fb),
                  read(localizer_path(fa), flags=False), read(localizer_path(fb), flags=False))
    for method in args.methods:
        for arch in args.archs:  # same architecture, every pair of folds
            for fa, fb in itertools.combinations(args.folds, 2):
                add_pairs("repeatability", method, (arch, fa), (arch, fb),
                          read(trained_path(arch, fa, method)), read(trained_path(arch, fb, method)))
        for aa, ab in itertools.combinations(args.archs, 2):  # different architectures, same fold
            for fold in args.folds:
                add_pairs("reproducibility", method, (aa, fold), (ab, fold),
                          read(trained_path(aa, fold, method)), read(trained_path(ab, fold, method)))
    consistency = pd.DataFrame(cons_rows, columns=CONSISTENCY_COLUMNS)
    consistency.to_csv(out / "consistency.csv", index=False)
    print(f"consistency: {len(consistency)} map pairs ({time.time() - started:.0f} s)", flush=True)
    for name, table in (("utility", utility), ("randomization", randomization), ("consistency", consistency)):
        counts = table.loc[table["reason"] != "", "reason"].value_counts()
        print(f"degenerate rows in {name}: " + (", ".join(f"{r} {c}" for r, c in counts.items()) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
