"""Statistics over every dataset's per-image scores: the scorecard and the result tables.

    python scripts/aggregate.py --results results --datasets siim rsna \\
        --methods grad sg ig sig gcam gbp ggcam xrai random \\
        --alpha 0.005 --ssim-threshold 0.5 --n-bootstrap 2000 --confidence 0.95 --seed 0 \\
        --classifiers results/tables/classifiers.csv \\
        --scorecard results/scorecard.csv --scorecard-md results/tables/scorecard.md --tables results/tables

Reads ``{results}/{dataset}/scores/{utility,randomization,random_pairs,consistency}.csv``
(written by score.py), ``{results}/{dataset}/data/rejected.csv`` and the classifier table.
Writes the scorecard (csv + markdown) and, under ``--tables``: ``utility.csv``,
``randomization.csv``, ``consistency.csv``, ``classifier_auroc.csv``, ``degenerate.csv``.
The statistics are described in ``salaudit.stats``; columns in the README.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from salaudit import stats

CRITERIA = ("utility", "randomization", "repeatability", "reproducibility")
SCORECARD_COLUMNS = ["dataset", "method", "criterion", "value", "ci_low", "ci_high", "p", "verdict",
                     "baseline", "baseline_ci_low", "baseline_ci_high", "reference", "alternative", "p_holm", "alpha",
                     "n", "n_excluded", "n_degenerate"]
UTILITY_COLUMNS = ["dataset", "source", "method", "n_maps", "n_images", "mean_auprc", "ci_low", "ci_high",
                   "mean_average_precision", "n_degenerate"]
RANDOMIZATION_COLUMNS = ["dataset", "method", "arch", "mode", "step_index", "step", "n_replicates", "mean_ssim",
                         "std_ssim", "random_pair_ssim", "random_pair_std", "n_degenerate"]
CONSISTENCY_COLUMNS = ["dataset", "criterion", "method", "archs", "n_model_pairs", "n_images", "mean_ssim", "std_ssim",
                       "ci_low", "ci_high", "n_degenerate"]
CLASSIFIER_COLUMNS = ["dataset", "arch", "fold", "val_auroc", "test_auroc"]
DEGENERATE_COLUMNS = ["dataset", "table", "method", "n_rows", "n_degenerate", "reasons"]
SCORE_FILES = ("utility", "randomization", "random_pairs", "consistency")


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results")
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--methods", nargs="+", required=True, help="method ids, in table order")
    parser.add_argument("--alpha", type=float, default=0.005, help="significance level after Holm's correction")
    parser.add_argument("--ssim-threshold", type=float, default=0.5, help="repeatability/reproducibility pass mark")
    parser.add_argument("--n-bootstrap", type=int, default=2000)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classifiers", required=True, help="results/tables/classifiers.csv")
    parser.add_argument("--scorecard", required=True, help="csv output")
    parser.add_argument("--scorecard-md", required=True, help="markdown output")
    parser.add_argument("--tables", required=True, help="folder of the result tables")
    return parser


def read_scores(results: Path, dataset: str) -> dict[str, pd.DataFrame]:
    folder = results / dataset / "scores"
    frames = {name: pd.read_csv(folder / f"{name}.csv", dtype={"image_id": str, "reason": str})
              for name in SCORE_FILES}
    for frame in frames.values():
        frame["reason"] = frame["reason"].fillna("")  # empty reason: not degenerate
    return frames


def per_image(rows: pd.DataFrame, value: str, images: list[str]) -> np.ndarray:
    """Mean over the maps of each image (NaN where an image has no defined value), in eval order."""
    return rows.groupby("image_id")[value].mean().reindex(images).to_numpy(dtype=np.float64)


def degenerate(rows: pd.DataFrame) -> int:
    return int((rows["reason"] != "").sum())


class Scorer:
    def __init__(self, args):
        self.args = args
        self.records = []

    def compare(self, dataset, method, criterion, values, reference, reference_name, alternative, n_degenerate):
        a = self.args
        result = stats.paired_comparison(values, reference, alternative, a.n_bootstrap, a.confidence, a.seed)
        self.records.append({"dataset": dataset, "method": method, "criterion": criterion, **result,
                             "reference": reference_name, "alternative": alternative, "alpha": a.alpha,
                             "n_degenerate": n_degenerate})

    def dataset(self, dataset: str, scores: dict[str, pd.DataFrame]):
        utility, randomization = scores["utility"], scores["randomization"]
        pairs, consistency = scores["random_pairs"], scores["consistency"]
        images = list(dict.fromkeys(utility["image_id"]))
        baseline = utility[utility["source"] == "average_mask"]
        localizer = utility[utility["source"] == "localizer"]
        localizer_name = localizer["method"].iloc[0] if len(localizer) else "localizer"
        loc_rep = consistency[(consistency["criterion"] == "repeatability") & (consistency["method"] == localizer_name)]
        threshold = self.args.ssim_threshold
        for method in self.args.methods:
            rows = utility[(utility["source"] == "trained") & (utility["method"] == method)]
            values = per_image(rows, "auprc", images)
            self.compare(dataset, method, "utility", values, per_image(baseline, "auprc", images), "average_mask",
                         "greater", degenerate(rows) + degenerate(baseline))
            self.compare(dataset, method, "utility_vs_localizer", values, per_image(localizer, "auprc", images),
                         localizer_name, "greater", degenerate(rows) + degenerate(localizer))

            rows = randomization[(randomization["method"] == method) & (randomization["mode"] == "cascade")
                                 & (randomization["last_step"].astype(str) == "True")]
            ref = pairs[pairs["method"] == method]
            self.compare(dataset, method, "randomization", per_image(rows, "ssim", images),
                         per_image(ref, "ssim", images), "random_pairs", "less", degenerate(rows) + degenerate(ref))

            for criterion in ("repeatability", "reproducibility"):
                rows = consistency[(consistency["criterion"] == criterion) & (consistency["method"] == method)]
                values = per_image(rows, "ssim", images)
                self.compare(dataset, method, criterion, values, threshold, f"threshold {threshold:g}", "greater",
                             degenerate(rows))
                self.compare(dataset, method, f"{criterion}_vs_localizer", values, per_image(loc_rep, "ssim", images),
                             f"{localizer_name} repeatability", "greater", degenerate(rows) + degenerate(loc_rep))

    def scorecard(self) -> pd.DataFrame:
        table = pd.DataFrame(self.records)
        main = table["criterion"].isin(CRITERIA)
        # Holm across methods within one dataset and criterion; comparisons with the
        # localizer are reported (ABOVE / NOT_ABOVE), corrected in their own families.
        scored = pd.concat([
            stats.verdicts(table[main], self.args.alpha, ["dataset", "criterion"]),
            stats.verdicts(table[~main], self.args.alpha, ["dataset", "criterion"], passed="ABOVE", failed="NOT_ABOVE"),
        ]).sort_index()
        return scored[SCORECARD_COLUMNS]


def utility_table(dataset, utility, args) -> list[dict]:
    out = []
    images = list(dict.fromkeys(utility["image_id"]))
    for (source, method), rows in utility.groupby(["source", "method"], sort=False):
        values = per_image(rows, "auprc", images)
        ok = ~np.isnan(values)
        mean, low, high = stats.bootstrap_mean_ci(values[ok], args.n_bootstrap, args.confidence, args.seed)
        out.append({"dataset": dataset, "source": source, "method": method, "n_maps": len(rows),
                    "n_images": int(ok.sum()), "mean_auprc": mean, "ci_low": low, "ci_high": high,
                    "mean_average_precision": float(np.nanmean(per_image(rows, "average_precision", images)))
                    if ok.any() else np.nan, "n_degenerate": degenerate(rows)})
    return out


def randomization_table(dataset, randomization, pairs) -> list[dict]:
    out = []
    keys = ["method", "arch", "mode", "step_index", "step"]
    for key, rows in randomization.groupby(keys, sort=False):
        per_fold = rows.groupby("fold")["ssim"].mean()  # one replicate = one trained model
        ref = pairs[(pairs["method"] == key[0]) & (pairs["arch"] == key[1])].groupby("fold")["ssim"].mean()
        out.append({"dataset": dataset, **dict(zip(keys, key)), "n_replicates": len(per_fold),
                    "mean_ssim": per_fold.mean(), "std_ssim": per_fold.std(ddof=1) if len(per_fold) > 1 else 0.0,
                    "random_pair_ssim": ref.mean(), "random_pair_std": ref.std(ddof=1) if len(ref) > 1 else 0.0,
                    "n_degenerate": degenerate(rows)})
    return out


def consistency_table(dataset, consistency, args) -> list[dict]:
    out = []
    consistency = consistency.assign(archs=np.where(consistency["arch_a"] == consistency["arch_b"],
                                                    consistency["arch_a"],
                                                    consistency["arch_a"] + "~" + consistency["arch_b"]))
    images = list(dict.fromkeys(consistency["image_id"]))
    for (criterion, method, archs), rows in consistency.groupby(["criterion", "method", "archs"], sort=False):
        per_pair = rows.groupby(["arch_a", "fold_a", "arch_b", "fold_b"])["ssim"].mean()
        values = per_image(rows, "ssim", images)
        ok = ~np.isnan(values)
        mean, low, high = stats.bootstrap_mean_ci(values[ok], args.n_bootstrap, args.confidence, args.seed)
        out.append({"dataset": dataset, "criterion": criterion, "method": method, "archs": archs,
                    "n_model_pairs": len(per_pair), "n_images": int(ok.sum()), "mean_ssim": mean,
                    "std_ssim": per_pair.std(ddof=1) if len(per_pair) > 1 else 0.0, "ci_low": low, "ci_high": high,
                    "n_degenerate": degenerate(rows)})
    return out


def reason_counts(rows: pd.DataFrame) -> str:
    counts = rows.loc[rows["reason"] != "", "reason"].value_counts()
    return "; ".join(f"{reason} {count}" for reason, count in counts.items())


def degenerate_table(dataset, scores, rejected) -> list[dict]:
    out = []
    for name in SCORE_FILES:
        for method, rows in scores[name].groupby("method", sort=False):
            out.append({"dataset": dataset, "table": name, "method": method, "n_rows": len(rows),
                        "n_degenerate": degenerate(rows), "reasons": reason_counts(rows)})
    out.append({"dataset": dataset, "table": "rejected_inputs", "method": "-", "n_rows": len(rejected),
                "n_degenerate": len(rejected),
                "reasons": "; ".join(f"{r} {c}" for r, c in rejected["reason"].value_counts().items())})
    return out


def fmt(x, digits=3):
    return "–" if pd.isna(x) else f"{x:.{digits}f}"


def display(method: str) -> str:
    # salaudit.methods.DISPLAY_NAMES is every id upper-cased (a unit test keeps them equal);
    # importing it here would pull torch into the report environment.
    return method.upper()


def markdown(scorecard: pd.DataFrame, classifiers: pd.DataFrame, args) -> str:
    lines = ["# Scorecard", "",
             f"One-sided paired Wilcoxon signed-rank tests over evaluation images, Holm-corrected across methods "
             f"per dataset and criterion, alpha = {args.alpha:g}. Utility: AUPRC above the average-mask baseline; "
             f"randomization: SSIM at full cascading randomization below the random-pair baseline; repeatability and "
             f"reproducibility: SSIM above {args.ssim_threshold:g}. A cell reads `verdict (mean)`; RANDOM is a "
             f"control that must fail everything.", ""]
    main = scorecard[scorecard["criterion"].isin(CRITERIA)]
    header = ["method"] + [f"{d} {c}" for d in args.datasets for c in CRITERIA]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method in args.methods:
        cells = [display(method)]
        for dataset in args.datasets:
            for criterion in CRITERIA:
                row = main[(main["dataset"] == dataset) & (main["method"] == method) & (main["criterion"] == criterion)]
                cells.append("–" if row.empty else f"{row['verdict'].iloc[0]} ({fmt(row['value'].iloc[0])})")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Details", "",
              "| dataset | method | criterion | mean [95% CI] | reference | reference mean | p (Holm) | verdict | n | "
              "degenerate |", "|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in scorecard.iterrows():
        lines.append(f"| {r['dataset']} | {display(r['method'])} | {r['criterion']} | {fmt(r['value'])} "
                     f"[{fmt(r['ci_low'])}, {fmt(r['ci_high'])}] | {r['reference']} | {fmt(r['baseline'])} | "
                     f"{fmt(r['p_holm'], 4)} | {r['verdict']} | {r['n']} | {r['n_degenerate']} |")
    if not classifiers.empty:
        lines += ["", "## Classifiers (test AUROC over folds)", "", "| dataset | arch | folds | mean | std |",
                  "|---|---|---|---|---|"]
        for (dataset, arch), rows in classifiers.groupby(["dataset", "arch"], sort=False):
            lines.append(f"| {dataset} | {arch} | {len(rows)} | {fmt(rows['test_auroc'].mean())} | "
                         f"{fmt(rows['test_auroc'].std(ddof=1) if len(rows) > 1 else 0.0)} |")
    return "\n".join(lines) + "\n"


def main(args):
    results, tables = Path(args.results), Path(args.tables)
    tables.mkdir(parents=True, exist_ok=True)
    scorer = Scorer(args)
    utility_rows, randomization_rows, consistency_rows, degenerate_rows = [], [], [], []
    for dataset in args.datasets:
        scores = read_scores(results, dataset)
        rejected = pd.read_csv(results / dataset / "data" / "rejected.csv", dtype=str, keep_default_na=False)
        scorer.dataset(dataset, scores)
        utility_rows += utility_table(dataset, scores["utility"], args)
        randomization_rows += randomization_table(dataset, scores["randomization"], scores["random_pairs"])
        consistency_rows += consistency_table(dataset, scores["consistency"], args)
        degenerate_rows += degenerate_table(dataset, scores, rejected)
    scorecard = scorer.scorecard()
    classifiers = pd.read_csv(args.classifiers)
    classifiers = classifiers[classifiers["dataset"].isin(args.datasets)][CLASSIFIER_COLUMNS]
    for path in (args.scorecard, args.scorecard_md):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    scorecard.to_csv(args.scorecard, index=False)
    Path(args.scorecard_md).write_text(markdown(scorecard, classifiers, args))
    for name, rows, columns in (("utility", utility_rows, UTILITY_COLUMNS),
                                ("randomization", randomization_rows, RANDOMIZATION_COLUMNS),
                                ("consistency", consistency_rows, CONSISTENCY_COLUMNS),
                                ("degenerate", degenerate_rows, DEGENERATE_COLUMNS)):
        pd.DataFrame(rows, columns=columns).to_csv(tables / f"{name}.csv", index=False)
    classifiers.to_csv(tables / "classifier_auroc.csv", index=False)
    main_rows = scorecard[scorecard["criterion"].isin(CRITERIA)]
    print(main_rows.pivot_table(index="method", columns=["dataset", "criterion"], values="verdict",
                                aggfunc="first").to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
