"""Recompute the scorecard's numbers from the saved maps and masks, independently of the
workflow's scoring code, with the paper's formulas, and compare with results/scorecard.csv.

    python tools/recompute_scorecard.py --results results [--alpha 0.05]

Uses only numpy, scikit-learn, scikit-image and scipy - nothing of `salaudit`'s scoring; only
`salaudit.seeds`, for the documented random stream of the random-pair partners. Models, methods
and randomization steps are read from the file tree (``results/{dataset}/maps/...``).

* utility: per image, AUPRC = ``auc(recall, precision)`` of ``precision_recall_curve(mask,
  map)`` averaged over every architecture and fold (a constant map scores the image's positive
  fraction, the documented chance level); baseline: the average mask's AUPRC; one-sided
  Wilcoxon signed-rank (greater).
* randomization: per image, ``structural_similarity(last cascade step, trained, win_size=7,
  data_range=2.0)`` averaged over the randomized models; baseline: the mean SSIM of the image's
  trained map with 50 partners per image drawn as documented (the stream ``(seed,
  "random_pairs")``, offsets 1..n-1 added modulo n), averaged over the same models; Wilcoxon (less).
* repeatability / reproducibility: per image, SSIM averaged over every pair of folds of one
  architecture / every pair of architectures at the same fold (0 when either map is constant);
  Wilcoxon of SSIM - threshold (greater).
Holm's correction over the methods of a dataset and criterion; PASS = Holm p < alpha and the
mean on the tested side. Bootstrap confidence intervals are not recomputed.
Exit status 1 when a value, baseline, p or verdict differs (values to 1e-6).
"""

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon
from skimage.metrics import structural_similarity
from sklearn.metrics import auc, precision_recall_curve

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from salaudit import seeds  # noqa: E402


def auprc(score_map, mask):
    m = np.asarray(score_map, np.float64).ravel()
    y = np.asarray(mask).ravel() > 0
    if m.max() == m.min():
        return y.mean()
    precision, recall, _ = precision_recall_curve(y, m)
    return auc(recall, precision)


def ssim(a, b, window, data_range):
    return structural_similarity(np.asarray(a, np.float64), np.asarray(b, np.float64), win_size=window,
                                 data_range=data_range)


def one_sided_p(differences, alternative):
    d = np.asarray(differences, np.float64)
    d = d[d != 0]
    if len(d) == 0:
        return 1.0
    exact = len(d) <= 50 and len(np.unique(np.abs(d))) == len(d)
    return float(wilcoxon(d, alternative=alternative, method="exact" if exact else "approx").pvalue)


def holm(p):
    p = np.asarray(p, float)
    order = np.argsort(p, kind="stable")
    out, running = np.empty_like(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


def pair_ssim(a, b, window, data_range):
    """Repeatability/reproducibility SSIM of two maps; a constant (blank) map agrees with nothing: 0."""
    if a.max() == a.min() or b.max() == b.min():
        return 0.0
    return ssim(a, b, window, data_range)


def models_of(maps_dir):
    """{(arch, fold): folder} of every model with maps."""
    return {(a.name, int(f.name[4:])): f for a in sorted(maps_dir.iterdir()) if a.is_dir()
            for f in sorted(a.glob("fold*")) if f.is_dir()}


def recompute(results, dataset, args):
    root = results / dataset
    eval_images = pd.read_csv(root / "eval_images.csv", dtype={"image_id": str})
    masks = np.load(root / "data" / "masks.npy", mmap_mode="r")[eval_images["index"].to_numpy()]
    average = np.load(root / "baselines" / "average_mask.npy")
    models = models_of(root / "maps")
    methods = sorted({p.name for folder in models.values() for p in folder.iterdir() if p.is_dir()})
    n = len(eval_images)
    rows = []
    base_utility = np.array([auprc(average, masks[i]) for i in range(n)])
    offsets = seeds.rng(args.seed, "random_pairs").integers(1, n, size=(n, args.random_pairs))  # the documented draw
    partners = (np.arange(n)[:, None] + offsets) % n
    archs = sorted({a for a, _ in models})
    for method in methods:
        trained = {key: np.load(folder / method / "trained.npy") for key, folder in models.items()}
        value = np.mean([[auprc(m[i], masks[i]) for i in range(n)] for m in trained.values()], axis=0)
        rows.append((method, "utility", value, base_utility, "greater"))

        randomized = {key: sorted((folder / method / "cascade").glob("*.npy")) for key, folder in models.items()}
        randomized = {key: [p for p in files if not p.name.endswith(".flags.npy")]
                      for key, files in randomized.items()}
        randomized = {key: files for key, files in randomized.items() if files}
        if randomized:
            last = {key: np.load(files[-1]) for key, files in randomized.items()}
            value = np.mean([[ssim(last[k][i], trained[k][i], args.window, args.data_range) for i in range(n)]
                             for k in randomized], axis=0)
            base = np.mean([[np.mean([ssim(trained[k][i], trained[k][j], args.window, args.data_range)
                                      for j in partners[i]]) for i in range(n)] for k in randomized], axis=0)
            rows.append((method, "randomization", value, base, "less"))

        pairs = [(a, b) for a, b in itertools.combinations(sorted(trained), 2) if a[0] == b[0]]
        if pairs:
            value = np.mean([[pair_ssim(trained[a][i], trained[b][i], args.window, args.data_range) for i in range(n)]
                             for a, b in pairs], axis=0)
            rows.append((method, "repeatability", value, np.full(n, args.threshold), "greater"))
        pairs = [((a1, f), (a2, f)) for a1, a2 in itertools.combinations(archs, 2)
                 for f in sorted({f for _, f in trained}) if (a1, f) in trained and (a2, f) in trained]
        if pairs:
            value = np.mean([[pair_ssim(trained[a][i], trained[b][i], args.window, args.data_range) for i in range(n)]
                             for a, b in pairs], axis=0)
            rows.append((method, "reproducibility", value, np.full(n, args.threshold), "greater"))
    table = pd.DataFrame([{"dataset": dataset, "method": m, "criterion": c, "value": v.mean(),
                           "baseline": b.mean(), "p": one_sided_p(v - b, alt), "alternative": alt}
                          for m, c, v, b, alt in rows])
    for _, group in table.groupby("criterion"):
        table.loc[group.index, "p_holm"] = holm(group["p"].to_numpy())
    side = np.where(table["alternative"] == "greater", table["value"] > table["baseline"],
                    table["value"] < table["baseline"])
    table["verdict"] = np.where((table["p_holm"] < args.alpha) & side, "PASS", "FAIL")
    return table


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results")
    p.add_argument("--alpha", type=float, default=0.005)
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--window", type=int, default=7)
    p.add_argument("--data-range", type=float, default=2.0)
    p.add_argument("--random-pairs", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tolerance", type=float, default=1e-6)
    args = p.parse_args(argv)
    results = Path(args.results)
    scorecard = pd.read_csv(results / "scorecard.csv", keep_default_na=False, na_values=[""])
    ours = pd.concat([recompute(results, d, args) for d in sorted(scorecard["dataset"].unique())])
    merged = ours.merge(scorecard, on=["dataset", "method", "criterion"], suffixes=("", "_saved"), how="left")
    bad = 0
    for row in merged.itertuples():
        diffs = [abs(row.value - row.value_saved), abs(row.baseline - row.baseline_saved), abs(row.p - row.p_saved)]
        ok = max(diffs) <= args.tolerance and row.verdict == row.verdict_saved
        bad += not ok
        print(f"{row.dataset:6} {row.method:7} {row.criterion:16} value {row.value:.4f} (saved {row.value_saved:.4f}) "
              f"baseline {row.baseline:.4f} (saved {row.baseline_saved:.4f}) p {row.p:.3g} (saved {row.p_saved:.3g}) "
              f"{row.verdict}/{row.verdict_saved} {'OK' if ok else 'DIFFERENT'}")
    print(f"{len(merged) - bad} of {len(merged)} scorecard rows recomputed identically")
    return 1 if bad or len(merged) == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
