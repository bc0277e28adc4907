"""Recompute the scorecard's numbers from the saved maps and masks, independently of the
workflow's scoring code, with the published formulas, and compare with results/scorecard.csv.

    python tools/recompute_scorecard.py --results results [--alpha 0.05]

Uses only numpy, scikit-learn, scikit-image, scipy and quantus - nothing of `salaudit`'s scoring;
only `salaudit.seeds`, for the documented random stream of the random-pair partners. Models,
methods and randomization steps are read from the file tree (``results/{dataset}/maps/...``).
Per image a method's value is the mean over its maps (NaN values skipped); an image where the
value or its reference is undefined is left out of the test.

* utility, utility_ap, pointing_game, iou_otsu: per image ``auc(recall, precision)`` of
  ``precision_recall_curve(mask, map)``; ``average_precision_score``; the share of the map's
  maximal pixels inside the mask; the IoU of ``map > threshold_otsu(map)`` with the mask - over
  every architecture and fold (a constant map scores the image's positive fraction in each, the
  documented chance level); reference: the average mask's; Wilcoxon (greater).
* randomization, randomization_spearman: ``structural_similarity(last cascade step, trained,
  win_size=7, data_range=2.0)`` / ``spearmanr`` over the randomized models; reference: the same
  of the image's trained map with 50 partners drawn as documented (the stream ``(seed,
  "random_pairs")``, offsets 1..n-1 added modulo n); Wilcoxon (less).
  randomization_bottom_up / _independent: the SSIM over every step of that mode.
  label_randomization (+ _spearman): the maps of the replicates retrained on permuted labels
  (``label_randomized.npy``) against the trained ones, the random pairs of those replicates.
* randomization_entropy (eMPRT): ``quantus``' ``discrete_entropy`` (100 bins) of the fully
  randomized map over the trained map's; Wilcoxon of the ratio against 1 (greater).
* repeatability / reproducibility: SSIM over every pair of folds of one architecture / every
  pair of architectures at the same fold (0 when either map is constant), against the threshold;
  the null: the same with each image against its partners' maps in the other model (both ways,
  averaged); PASS needs both (Holm in the same families).
Holm's correction over the methods of a dataset and criterion, the controls (``random``,
``smooth_random``, ``edge``, ``prior``) in a family of their own; PASS = Holm p < alpha and the
mean on the tested side. Bootstrap confidence intervals are not recomputed.
Exit status 1 when a value, baseline, p, null or verdict differs (values to 1e-6).
"""

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from quantus.functions.complexity_func import discrete_entropy
from scipy.stats import spearmanr, wilcoxon
from skimage.filters import threshold_otsu
from skimage.metrics import structural_similarity
from sklearn.metrics import auc, average_precision_score, precision_recall_curve

from salaudit import seeds

CONTROLS = {"random", "smooth_random", "edge", "prior"}  # README, "Controls"


def constant(m):
    return m.max() == m.min()


def localization(score_map, mask):
    """(AUPRC, AP, pointing game, Otsu IoU) of one map; a constant map scores chance in each."""
    m = np.asarray(score_map, np.float64)
    y = np.asarray(mask) > 0
    if constant(m):
        return (y.mean(),) * 4
    precision, recall, _ = precision_recall_curve(y.ravel(), m.ravel())
    predicted = m > threshold_otsu(m)
    return (auc(recall, precision), average_precision_score(y.ravel(), m.ravel()), y[m == m.max()].mean(),
            (predicted & y).sum() / (predicted | y).sum())


def ssim(a, b, window, data_range):
    return structural_similarity(np.asarray(a, np.float64), np.asarray(b, np.float64), win_size=window,
                                 data_range=data_range)


def rho(a, b):
    if constant(a) or constant(b):
        return np.nan
    return spearmanr(np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel())[0]


def one_sided_p(differences, alternative):
    d = np.asarray(differences, np.float64)
    d = d[np.abs(d) > 1e-12]  # zero differences, and those within rounding, carry no sign
    if len(d) == 0:
        return 1.0
    exact = len(d) <= 50 and len(np.unique(np.abs(d))) == len(d)
    return float(wilcoxon(d, alternative=alternative, method="exact" if exact else "approx").pvalue)


def holm(p):
    p = np.asarray(p, float)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    running = 0.0
    for rank, i in enumerate(valid[np.argsort(p[valid], kind="stable")]):
        running = max(running, min(1.0, (len(valid) - rank) * p[i]))
        out[i] = running
    return out


def pair_ssim(a, b, window, data_range):
    """Repeatability/reproducibility SSIM of two maps; a constant (blank) map agrees with nothing: 0."""
    if constant(a) or constant(b):
        return 0.0
    return ssim(a, b, window, data_range)


def models_of(maps_dir):
    """{(arch, fold): folder} of every model with maps."""
    return {(a.name, int(f.name[4:])): f for a in sorted(maps_dir.iterdir()) if a.is_dir() and not hidden(a)
            for f in sorted(a.glob("fold*")) if f.is_dir()}


def hidden(path):
    """A folder no tool reads: the job caches (``.salaudit-cache``) among the maps."""
    return path.name.startswith(".")


def map_files(folder):
    return [p for p in sorted(folder.glob("*.npy")) if not p.name.endswith(".flags.npy")] if folder.is_dir() else []


def mean_over(per_model):
    """Per image, the mean over models of a [models, n] list, NaN skipped (NaN where all are)."""
    values = np.asarray(per_model, np.float64)
    counts = (~np.isnan(values)).sum(axis=0)
    return np.where(counts > 0, np.nansum(values, axis=0) / np.maximum(counts, 1), np.nan)


def recompute(results, dataset, args):
    root = results / dataset
    eval_images = pd.read_csv(root / "eval_images.csv", dtype={"image_id": str})
    masks = np.load(root / "data" / "masks.npy", mmap_mode="r")[eval_images["index"].to_numpy()]
    masks = [np.asarray(m) if np.asarray(m).any() else None for m in masks]  # None: empty, no value
    average = np.load(root / "baselines" / "average_mask.npy")
    models = models_of(root / "maps")
    methods = sorted({p.name for folder in models.values() for p in folder.iterdir() if p.is_dir() and not hidden(p)})
    n = len(eval_images)
    window, data_range = args.window, args.data_range
    rows = []  # (method, criterion, values, reference, alternative, null)
    names = ("utility", "utility_ap", "pointing_game", "iou_otsu")
    base = np.array([localization(average, m) if m is not None else (np.nan,) * 4 for m in masks]).T
    offsets = seeds.rng(args.seed, "random_pairs").integers(1, n, size=(n, args.random_pairs))  # the documented draw
    partners = (np.arange(n)[:, None] + offsets) % n
    archs = sorted({a for a, _ in models})

    def random_pairs(maps, measure):
        return [np.nanmean([measure(maps[i], maps[j]) for j in partners[i]]) for i in range(n)]

    for method in methods:
        trained = {key: np.load(folder / method / "trained.npy") for key, folder in models.items()}
        scores = np.array([[localization(m[i], masks[i]) if masks[i] is not None else (np.nan,) * 4
                            for i in range(n)] for m in trained.values()])  # [models, n, 4]
        for k, name in enumerate(names):
            rows.append((method, name, mean_over(scores[:, :, k]), base[k], "greater", None))

        def steps(mode):
            found = {key: map_files(folder / method / mode) for key, folder in models.items()}
            return {key: files for key, files in found.items() if files}

        def pair_baseline(keys, measure):
            return mean_over([random_pairs(trained[k], measure) for k in keys])

        cascade = steps("cascade")
        if cascade:
            last = {k: np.load(files[-1]) for k, files in cascade.items()}  # the bottom block: all random
            for name, measure in (("randomization", lambda a, b: ssim(a, b, window, data_range)),
                                  ("randomization_spearman", rho)):
                values = mean_over([[measure(last[k][i], trained[k][i]) for i in range(n)] for k in cascade])
                rows.append((method, name, values, pair_baseline(cascade, measure), "less", None))
        for mode in ("bottom_up", "independent"):
            found = steps(mode)
            if found:
                values = mean_over([[ssim(np.load(f)[i], trained[k][i], window, data_range) for i in range(n)]
                                    for k, files in found.items() for f in files])
                rows.append((method, f"randomization_{mode}", values,
                             pair_baseline(found, lambda a, b: ssim(a, b, window, data_range)), "less", None))
        bottom_up = steps("bottom_up")
        full = {k: np.load(files[-1]) for k, files in cascade.items()} if cascade else \
            {k: np.load(files[0]) for k, files in bottom_up.items()}  # bottom_up's last step: the top block
        if full:
            def entropy(m):
                return discrete_entropy(a=np.asarray(m, np.float64), x=m, n_bins=args.entropy_bins)

            ratios = [[entropy(full[k][i]) / entropy(trained[k][i]) if entropy(trained[k][i]) > 0 else np.nan
                       for i in range(n)] for k in full]
            rows.append((method, "randomization_entropy", mean_over(ratios), np.ones(n), "greater", None))
        labelled = {k: np.load(folder / method / "label_randomized.npy") for k, folder in models.items()
                    if (folder / method / "label_randomized.npy").exists()}
        if labelled:
            for name, measure in (("label_randomization", lambda a, b: ssim(a, b, window, data_range)),
                                  ("label_randomization_spearman", rho)):
                values = mean_over([[measure(labelled[k][i], trained[k][i]) for i in range(n)] for k in labelled])
                rows.append((method, name, values, pair_baseline(labelled, measure), "less", None))

        for name, pairs in (
            ("repeatability", [(a, b) for a, b in itertools.combinations(sorted(trained), 2) if a[0] == b[0]]),
            ("reproducibility", [((a1, f), (a2, f)) for a1, a2 in itertools.combinations(archs, 2)
                                 for f in sorted({f for _, f in trained}) if (a1, f) in trained and (a2, f) in trained]),
        ):
            if pairs:
                values = mean_over([[pair_ssim(trained[a][i], trained[b][i], window, data_range) for i in range(n)]
                                    for a, b in pairs])
                null = mean_over([[np.mean([pair_ssim(trained[x][i], trained[y][j], window, data_range)
                                            for x, y in ((a, b), (b, a)) for j in partners[i]]) for i in range(n)]
                                  for a, b in pairs])
                rows.append((method, name, values, np.full(n, args.threshold), "greater", null))

    records = []
    for method, criterion, values, reference, alternative, null in rows:
        ok = ~(np.isnan(values) | np.isnan(reference))
        tested = ok.any()  # no image with a value: no test (NOT_APPLICABLE)
        record = {"dataset": dataset, "method": method, "criterion": criterion,
                  "value": values[ok].mean() if tested else np.nan, "baseline": reference[ok].mean() if tested else np.nan,
                  "p": one_sided_p(values[ok] - reference[ok], alternative) if tested else np.nan,
                  "alternative": alternative, "control": method in CONTROLS}
        if null is not None:
            keep = ~(np.isnan(values) | np.isnan(null))
            record.update(null=null[keep].mean(), p_null=one_sided_p(values[keep] - null[keep], "greater"))
        records.append(record)
    table = pd.DataFrame(records)
    if "p_null" not in table:
        table["p_null"] = table["null"] = np.nan
    for _, group in table.groupby(["criterion", "control"]):
        table.loc[group.index, "p_holm"] = holm(group["p"].to_numpy())
        table.loc[group.index, "p_null_holm"] = holm(group["p_null"].to_numpy())
    side = np.where(table["alternative"] == "greater", table["value"] > table["baseline"],
                    table["value"] < table["baseline"])
    passed = (table["p_holm"] < args.alpha) & side
    beats_null = table["p_null"].isna() | ((table["p_null_holm"] < args.alpha) & (table["value"] > table["null"]))
    table["verdict"] = np.where(table["p"].isna(), "NOT_APPLICABLE", np.where(passed & beats_null, "PASS", "FAIL"))
    return table


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results")
    p.add_argument("--alpha", type=float, default=0.005)
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--window", type=int, default=7)
    p.add_argument("--data-range", type=float, default=2.0)
    p.add_argument("--random-pairs", type=int, default=50)
    p.add_argument("--entropy-bins", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tolerance", type=float, default=1e-6)
    args = p.parse_args(argv)
    results = Path(args.results)
    scorecard = pd.read_csv(results / "scorecard.csv", keep_default_na=False, na_values=[""])
    ours = pd.concat([recompute(results, d, args) for d in sorted(scorecard["dataset"].unique())])
    merged = ours.merge(scorecard, on=["dataset", "method", "criterion"], suffixes=("", "_saved"), how="left")
    bad = 0
    for row in merged.itertuples():
        diffs = [0.0 if np.isnan(x) and np.isnan(y) else abs(x - y) for x, y in
                 ((row.value, row.value_saved), (row.baseline, row.baseline_saved), (row.p, row.p_saved))]
        if not np.isnan(row.null):
            diffs += [abs(row.null - row.null_saved), abs(row.p_null - row.p_null_saved)]
        ok = max(diffs) <= args.tolerance and row.verdict == row.verdict_saved
        bad += not ok
        null = "" if np.isnan(row.null) else f" null {row.null:.4f} (saved {row.null_saved:.4f})"
        print(f"{row.dataset:6} {row.method:13} {row.criterion:28} value {row.value:.4f} (saved {row.value_saved:.4f}) "
              f"baseline {row.baseline:.4f} (saved {row.baseline_saved:.4f}){null} p {row.p:.3g} "
              f"(saved {row.p_saved:.3g}) {row.verdict}/{row.verdict_saved} {'OK' if ok else 'DIFFERENT'}")
    saved = scorecard[~scorecard["criterion"].str.endswith("_vs_localizer")]
    missing = len(saved) - len(merged)
    print(f"{len(merged) - bad} of {len(merged)} scorecard rows recomputed identically"
          + (f"; {missing} rows of the scorecard not recomputed" if missing else ""))
    return 1 if bad or missing or len(merged) == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
