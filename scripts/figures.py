"""Figures of the evaluation (PNG): utility, examples, cascade, consistency, ROC.

    python scripts/figures.py --results results --datasets siim rsna \\
        --methods grad sg ig sig gcam gbp ggcam xrai random --archs inception_v3 densenet121 --folds 0 1 2 3 4 \\
        --example-arch inception_v3 --example-fold 0 --example-image 0 --ssim-threshold 0.5 \\
        --tables results/tables --out results/figures

Writes to ``--out``: ``utility.png``, ``cascade.png``, ``consistency.png``, ``roc.png`` and per
dataset ``examples_{dataset}.png`` and ``cascade_strip_{dataset}.png``. Reads the per-image
scores (``{results}/{dataset}/scores/``), ``{tables}/randomization.csv``, the images, masks,
average mask, localizer and saliency maps of the example image, and the classifiers'
``predictions.csv``.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from salaudit import plots


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results")
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--methods", nargs="+", required=True)
    parser.add_argument("--archs", nargs="+", required=True)
    parser.add_argument("--folds", nargs="+", type=int, required=True)
    parser.add_argument("--example-arch", required=True, help="model whose maps the example panels show")
    parser.add_argument("--example-fold", type=int, default=0)
    parser.add_argument("--example-image", type=int, default=0, help="row of eval_images.csv shown in the panels")
    parser.add_argument("--ssim-threshold", type=float, default=0.5)
    parser.add_argument("--tables", required=True, help="folder with randomization.csv (aggregate.py)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--dpi", type=int, default=120)
    return parser


def save(fig, path: Path, dpi: int):
    fig.savefig(path, dpi=dpi)
    plots.plt.close(fig)
    print(f"wrote {path}", flush=True)


def scores(results: Path, dataset: str, name: str) -> pd.DataFrame:
    frame = pd.read_csv(results / dataset / "scores" / f"{name}.csv", dtype={"image_id": str, "reason": str})
    frame["reason"] = frame["reason"].fillna("")
    return frame


def example_figures(args, results: Path, dataset: str, out: Path):
    root = results / dataset
    eval_images = pd.read_csv(root / "eval_images.csv", dtype={"image_id": str})
    row = min(args.example_image, len(eval_images) - 1)
    index, image_id = int(eval_images["index"].iloc[row]), eval_images["image_id"].iloc[row]
    image = np.load(root / "data" / "images.npy", mmap_mode="r")[index]
    mask = np.load(root / "data" / "masks.npy", mmap_mode="r")[index]
    utility = scores(results, dataset, "utility")
    utility = utility[utility["image_id"] == image_id]

    def score_of(source, method, arch, fold):
        hit = utility[(utility["source"] == source) & (utility["method"] == method) & (utility["arch"] == arch)
                      & (utility["fold"] == fold)]
        return float(hit["auprc"].iloc[0]) if len(hit) else float("nan")

    localizer = utility.loc[utility["source"] == "localizer", "method"].iloc[0]
    panels = [("average mask", np.load(root / "baselines" / "average_mask.npy"),
               score_of("average_mask", "average_mask", "-", -1)),
              (f"{localizer} (fold {args.example_fold})",
               np.load(root / "localizers" / localizer / f"fold{args.example_fold}" / "maps.npy", mmap_mode="r")[row],
               score_of("localizer", localizer, localizer, args.example_fold))]
    model = root / "maps" / args.example_arch / f"fold{args.example_fold}"
    for method in args.methods:
        panels.append((plots.display(method), np.load(model / method / "trained.npy", mmap_mode="r")[row],
                       score_of("trained", method, args.example_arch, args.example_fold)))
    save(plots.example_panel(dataset, image_id, image, mask, [(n, np.asarray(m, np.float32), s) for n, m, s in panels]),
         out / f"examples_{dataset}.png", args.dpi)

    randomization = scores(results, dataset, "randomization")
    mode = plots.randomization_mode(randomization["mode"])
    randomization = randomization[randomization["mode"] == mode]
    if randomization.empty:
        fig = plots.plt.figure(figsize=(4, 1))
        fig.text(0.5, 0.5, f"{dataset}: no randomized maps configured", ha="center")
        save(fig, out / f"cascade_strip_{dataset}.png", args.dpi)
        return
    arch = args.example_arch if args.example_arch in set(randomization["arch"]) else randomization["arch"].iloc[0]
    folds = sorted(set(randomization.loc[randomization["arch"] == arch, "fold"]))
    fold = args.example_fold if args.example_fold in folds else folds[0]
    steps = (randomization[randomization["arch"] == arch].drop_duplicates("step_index")
             .sort_values("step_index")["step"].tolist())
    model = root / "maps" / arch / f"fold{fold}"
    strip = {method: [np.asarray(np.load(model / method / "trained.npy", mmap_mode="r")[row], np.float32)]
             + [np.asarray(np.load(model / method / mode / f"{step}.npy", mmap_mode="r")[row], np.float32)
                for step in steps]
             for method in args.methods}
    save(plots.cascade_strip(dataset, image_id, f"{arch} fold {fold}", steps, strip, mode),
         out / f"cascade_strip_{dataset}.png", args.dpi)


def main(args):
    results, out = Path(args.results), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save(plots.utility_boxplots({d: scores(results, d, "utility") for d in args.datasets}, args.methods),
         out / "utility.png", args.dpi)
    save(plots.cascade_curves(pd.read_csv(Path(args.tables) / "randomization.csv"), args.methods),
         out / "cascade.png", args.dpi)
    save(plots.consistency_boxplots({d: scores(results, d, "consistency") for d in args.datasets}, args.methods,
                                    args.ssim_threshold), out / "consistency.png", args.dpi)
    predictions = {d: {(arch, fold): pd.read_csv(results / d / "models" / arch / f"fold{fold}" / "predictions.csv")
                       for arch in args.archs for fold in args.folds} for d in args.datasets}
    save(plots.roc_curves(predictions), out / "roc.png", args.dpi)
    for dataset in args.datasets:
        example_figures(args, results, dataset, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
