"""Statistics over every dataset's per-image scores (`salaudit.evaluation.scoring`): the
scorecard (a verdict per dataset, method and criterion) and the study's tables.

`build_scorecard` reads each dataset's score tables, its ``rejected.csv`` and the classifier
table and returns every table; the statistics (bootstrap intervals, one-sided paired Wilcoxon
tests, Holm's correction) are in `salaudit.evaluation.stats`; columns in the README.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from salaudit import layout
from salaudit.evaluation import report_html, stats
from salaudit.evaluation.scoring import read_scores
from salaudit.evaluation.scoring import LABEL_MODE
from salaudit.registry import CONTROL_MUST_FAIL, CONTROLS, CRITERIA, display, is_control

# The paper's four criteria (the scorecard's first table); every criterion id: registry.CRITERIA.
PAPER_CRITERIA = ("utility", "randomization", "repeatability", "reproducibility")
# Localization criteria: (criterion id, utility.csv column), each against the average mask and the localizer.
LOCALIZATION = (("utility", "auprc"), ("utility_ap", "average_precision"), ("pointing_game", "pointing_game"),
                ("iou_otsu", "iou_otsu"))
SCORECARD_COLUMNS = ["dataset", "method", "criterion", "value", "ci_low", "ci_high", "p", "verdict",
                     "baseline", "baseline_ci_low", "baseline_ci_high", "reference", "alternative", "p_holm", "alpha",
                     "n", "n_excluded", "n_degenerate", "null", "null_ci_low", "null_ci_high", "p_null", "p_null_holm",
                     "control"]
SUMMARY_INDEX = ["dataset", "method", "control"]
CONTROLS_COLUMNS = ["dataset", "method", "criterion", "must", "verdict", "ok"]
UTILITY_COLUMNS = ["dataset", "source", "method", "n_maps", "n_images", "mean_auprc", "ci_low", "ci_high",
                   "mean_average_precision", "n_degenerate", "mean_pointing_game", "mean_iou_otsu"]
RANDOMIZATION_COLUMNS = ["dataset", "method", "arch", "mode", "step_index", "step", "n_replicates", "mean_ssim",
                         "std_ssim", "random_pair_ssim", "random_pair_std", "n_degenerate", "mean_spearman",
                         "random_pair_spearman"]
CONSISTENCY_COLUMNS = ["dataset", "criterion", "method", "archs", "n_model_pairs", "n_images", "mean_ssim", "std_ssim",
                       "ci_low", "ci_high", "n_degenerate", "mean_null_ssim"]
CLASSIFIER_COLUMNS = ["dataset", "arch", "fold", "val_auroc", "test_auroc"]
DEGENERATE_COLUMNS = ["dataset", "table", "method", "n_rows", "n_degenerate", "reasons"]
SCORE_FILES = layout.SCORE_NAMES

@dataclass(frozen=True)
class Statistics:
    """How the scorecard is computed: the datasets and methods (table order), the config's
    ``evaluation`` values it uses and the bootstrap's seed."""

    datasets: list[str]
    methods: list[str]
    alpha: float
    ssim_threshold: float
    n_bootstrap: int
    confidence: float
    seed: int
    n_eval: int  # evaluation images asked for (fewer when a dataset has fewer positive test images)

    @classmethod
    def from_config(cls, config: dict, datasets: list[str], methods: list[str]) -> "Statistics":
        e = config["evaluation"]
        return cls(datasets=list(datasets), methods=list(methods), alpha=e["alpha"],
                   ssim_threshold=e["ssim_threshold"], n_bootstrap=e["n_bootstrap"], confidence=e["confidence"],
                   seed=config["seed"], n_eval=config["n_eval"])


def models_pairs(pairs: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The random-pair rows of the models (arch, fold) behind ``rows``: each comparison's own baseline."""
    models = set(zip(rows["arch"], rows["fold"]))
    return pairs[[(a, f) in models for a, f in zip(pairs["arch"], pairs["fold"])]]


def per_image(rows: pd.DataFrame, value: str, images: list[str]) -> np.ndarray:
    """Mean over the maps of each image (NaN where an image has no defined value), in eval order."""
    return rows.groupby("image_id")[value].mean().reindex(images).to_numpy(dtype=np.float64)


def degenerate(rows: pd.DataFrame) -> int:
    return int((rows["reason"] != "").sum())


class Scorer:
    def __init__(self, settings: Statistics):
        self.settings = settings
        self.records = []

    def compare(self, dataset, method, criterion, values, reference, reference_name, alternative, n_degenerate,
                null=None):
        """One test of ``values`` (per image) against ``reference`` (per image, or a threshold); with
        ``null`` (per image) a second one, that the values are above the null too."""
        a = self.settings
        result = stats.paired_comparison(values, reference, alternative, a.n_bootstrap, a.confidence, a.seed)
        record = {"dataset": dataset, "method": method, "criterion": criterion, **result,
                  "reference": reference_name, "alternative": alternative, "alpha": a.alpha,
                  "n_degenerate": n_degenerate, "control": is_control(method)}
        if null is not None:
            versus_null = stats.paired_comparison(values, null, "greater", a.n_bootstrap, a.confidence, a.seed)
            record.update(null=versus_null["baseline"], null_ci_low=versus_null["baseline_ci_low"],
                          null_ci_high=versus_null["baseline_ci_high"], p_null=versus_null["p"])
        self.records.append(record)

    def dataset(self, dataset: str, scores: dict[str, pd.DataFrame]):
        """Every configured criterion of every method of one dataset (a criterion whose scores are
        absent, e.g. a randomization mode not configured, gets no row)."""
        utility, randomization = scores["utility"], scores["randomization"]
        pairs, consistency = scores["random_pairs"], scores["consistency"]
        images = list(dict.fromkeys(utility["image_id"]))
        baseline = utility[utility["source"] == "average_mask"]
        localizer = utility[utility["source"] == "localizer"]
        localizer_name = localizer["method"].iloc[0] if len(localizer) else "localizer"
        loc_rep = consistency[(consistency["criterion"] == "repeatability") & (consistency["method"] == localizer_name)]
        threshold = self.settings.ssim_threshold
        last = randomization["last_step"].astype(str) == "True"
        modes = set(randomization["mode"])
        full = next((m for m in ("cascade", "bottom_up") if m in modes), None)  # the fully random model
        for method in self.settings.methods:
            rows = utility[(utility["source"] == "trained") & (utility["method"] == method)]
            for criterion, column in LOCALIZATION:
                values = per_image(rows, column, images)
                self.compare(dataset, method, criterion, values, per_image(baseline, column, images), "average_mask",
                             "greater", degenerate(rows) + degenerate(baseline))
                self.compare(dataset, method, f"{criterion}_vs_localizer", values, per_image(localizer, column, images),
                             localizer_name, "greater", degenerate(rows) + degenerate(localizer))

            mine = randomization[randomization["method"] == method]
            for criterion, mode, steps, column in (
                ("randomization", "cascade", "last", "ssim"),
                ("randomization_spearman", "cascade", "last", "spearman"),
                ("randomization_bottom_up", "bottom_up", "all", "ssim"),
                ("randomization_independent", "independent", "all", "ssim"),
                ("label_randomization", LABEL_MODE, "last", "ssim"),
                ("label_randomization_spearman", LABEL_MODE, "last", "spearman"),
            ):
                if mode not in modes:
                    continue
                rows = mine[(mine["mode"] == mode) & (last[mine.index] if steps == "last" else True)]
                ref = models_pairs(pairs[pairs["method"] == method], rows)
                self.compare(dataset, method, criterion, per_image(rows, column, images),
                             per_image(ref, column, images), "random_pairs", "less", degenerate(rows) + degenerate(ref))
            if full:  # eMPRT: the map's complexity after full randomization over the trained map's
                rows = mine[(mine["mode"] == full) & last[mine.index]]
                ratio = rows.assign(ratio=rows["entropy"] / rows["entropy_trained"].where(rows["entropy_trained"] > 0))
                self.compare(dataset, method, "randomization_entropy", per_image(ratio, "ratio", images), 1.0,
                             "1 (complexity unchanged)", "greater", degenerate(rows))

            for criterion in ("repeatability", "reproducibility"):
                rows = consistency[(consistency["criterion"] == criterion) & (consistency["method"] == method)]
                if rows.empty:  # reproducibility needs two architectures
                    continue
                values = per_image(rows, "ssim", images)
                self.compare(dataset, method, criterion, values, threshold, f"threshold {threshold:g}", "greater",
                             degenerate(rows), null=per_image(rows, "null_ssim", images))
                self.compare(dataset, method, f"{criterion}_vs_localizer", values, per_image(loc_rep, "ssim", images),
                             f"{localizer_name} repeatability", "greater", degenerate(rows) + degenerate(loc_rep))

    def scorecard(self) -> pd.DataFrame:
        table = pd.DataFrame(self.records)
        for column in SCORECARD_COLUMNS:
            if column not in table:
                table[column] = np.nan
        main = table["criterion"].isin(CRITERIA)
        # Holm across the study's methods within one dataset and criterion; the controls form a
        # family of their own (a control added must not change a method's verdict). Comparisons
        # with the localizer are reported (ABOVE / NOT_ABOVE), corrected in their own families.
        family = ["dataset", "criterion", "control"]
        scored = pd.concat([
            stats.verdicts(table[main], self.settings.alpha, family),
            stats.verdicts(table[~main], self.settings.alpha, family, passed="ABOVE", failed="NOT_ABOVE"),
        ]).sort_index()
        return scored[SCORECARD_COLUMNS]


def utility_table(dataset, utility, settings) -> list[dict]:
    out = []
    images = list(dict.fromkeys(utility["image_id"]))
    for (source, method), rows in utility.groupby(["source", "method"], sort=False):
        values = per_image(rows, "auprc", images)
        ok = ~np.isnan(values)
        mean, low, high = stats.bootstrap_mean_ci(values[ok], settings.n_bootstrap, settings.confidence, settings.seed)
        out.append({"dataset": dataset, "source": source, "method": method, "n_maps": len(rows),
                    "n_images": int(ok.sum()), "mean_auprc": mean, "ci_low": low, "ci_high": high,
                    "mean_average_precision": float(np.nanmean(per_image(rows, "average_precision", images)))
                    if ok.any() else np.nan, "n_degenerate": degenerate(rows),
                    **{f"mean_{c}": float(np.nanmean(per_image(rows, c, images))) if ok.any() else np.nan
                       for c in ("pointing_game", "iou_otsu")}})
    return out


def randomization_table(dataset, randomization, pairs) -> list[dict]:
    out = []
    keys = ["method", "arch", "mode", "step_index", "step"]
    for key, rows in randomization.groupby(keys, sort=False):
        per_fold = rows.groupby("fold")[["ssim", "spearman"]].mean()  # one replicate = one trained model
        ref = models_pairs(pairs[pairs["method"] == key[0]], rows).groupby("fold")[["ssim", "spearman"]].mean()
        out.append({"dataset": dataset, **dict(zip(keys, key)), "n_replicates": len(per_fold),
                    "mean_ssim": per_fold["ssim"].mean(),
                    "std_ssim": per_fold["ssim"].std(ddof=1) if len(per_fold) > 1 else 0.0,
                    "random_pair_ssim": ref["ssim"].mean(),
                    "random_pair_std": ref["ssim"].std(ddof=1) if len(ref) > 1 else 0.0,
                    "n_degenerate": degenerate(rows), "mean_spearman": per_fold["spearman"].mean(),
                    "random_pair_spearman": ref["spearman"].mean()})
    return out


def consistency_table(dataset, consistency, settings) -> list[dict]:
    out = []
    consistency = consistency.assign(archs=np.where(consistency["arch_a"] == consistency["arch_b"],
                                                    consistency["arch_a"],
                                                    consistency["arch_a"] + "~" + consistency["arch_b"]))
    images = list(dict.fromkeys(consistency["image_id"]))
    for (criterion, method, archs), rows in consistency.groupby(["criterion", "method", "archs"], sort=False):
        per_pair = rows.groupby(["arch_a", "fold_a", "arch_b", "fold_b"])["ssim"].mean()
        values = per_image(rows, "ssim", images)
        ok = ~np.isnan(values)
        mean, low, high = stats.bootstrap_mean_ci(values[ok], settings.n_bootstrap, settings.confidence, settings.seed)
        out.append({"dataset": dataset, "criterion": criterion, "method": method, "archs": archs,
                    "n_model_pairs": len(per_pair), "n_images": int(ok.sum()), "mean_ssim": mean,
                    "std_ssim": per_pair.std(ddof=1) if len(per_pair) > 1 else 0.0, "ci_low": low, "ci_high": high,
                    "n_degenerate": degenerate(rows), "mean_null_ssim": float(rows["null_ssim"].mean())})
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


def markdown(scorecard: pd.DataFrame, classifiers: pd.DataFrame, settings, summary: pd.DataFrame,
             controls: pd.DataFrame) -> str:
    lines = ["# Scorecard", "",
             f"One-sided paired Wilcoxon signed-rank tests over evaluation images, Holm-corrected across methods "
             f"per dataset and criterion (the controls in a family of their own), alpha = {settings.alpha:g}. "
             f"Utility: AUPRC above the average-mask baseline; randomization: SSIM at full cascading randomization "
             f"below the random-pair baseline; repeatability and reproducibility: SSIM above "
             f"{settings.ssim_threshold:g} and above the image-shuffled null. A cell reads `verdict (mean)`; the "
             f"controls (marked *) have known answers (README, Controls).", ""]
    main = scorecard[scorecard["criterion"].isin(PAPER_CRITERIA)]
    header = ["method"] + [f"{d} {c}" for d in settings.datasets for c in PAPER_CRITERIA]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method in settings.methods:
        cells = [display(method) + (" *" if is_control(method) else "")]
        for dataset in settings.datasets:
            for criterion in PAPER_CRITERIA:
                row = main[(main["dataset"] == dataset) & (main["method"] == method) & (main["criterion"] == criterion)]
                cells.append("–" if row.empty else f"{row['verdict'].iloc[0]} ({fmt(row['value'].iloc[0])})")
        lines.append("| " + " | ".join(cells) + " |")
    criteria = [c for c in summary.columns if c not in SUMMARY_INDEX]
    lines += ["", "## Summary: every criterion", "", "| dataset | method | " + " | ".join(criteria) + " |",
              "|" + "---|" * (len(criteria) + 2)]
    for _, r in summary.iterrows():
        lines.append(f"| {r['dataset']} | {display(r['method'])}{' *' if r['control'] else ''} | "
                     + " | ".join(r[c] or "–" for c in criteria) + " |")
    broken = controls[~controls["ok"]]
    lines += ["", "## Controls", "",
              f"{len(controls)} verdicts of the controls checked against the ones they must get: "
              + ("all as they must be." if broken.empty else f"{len(broken)} differ - a bug in those criteria:"), ""]
    lines += [f"- {r['dataset']} {display(r['method'])} {r['criterion']}: {r['verdict']}, must be {r['must']}"
              for _, r in broken.iterrows()]
    lines += ["", "## Details", "",
              "| dataset | method | criterion | mean [95% CI] | reference | reference mean | p (Holm) | null [95% CI] | "
              "p null (Holm) | verdict | n | degenerate |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in scorecard.iterrows():
        null = "–" if pd.isna(r["null"]) else f"{fmt(r['null'])} [{fmt(r['null_ci_low'])}, {fmt(r['null_ci_high'])}]"
        lines.append(f"| {r['dataset']} | {display(r['method'])} | {r['criterion']} | {fmt(r['value'])} "
                     f"[{fmt(r['ci_low'])}, {fmt(r['ci_high'])}] | {r['reference']} | {fmt(r['baseline'])} | "
                     f"{fmt(r['p_holm'], 4)} | {null} | {fmt(r['p_null_holm'], 4)} | {r['verdict']} | {r['n']} | "
                     f"{r['n_degenerate']} |")
    if not classifiers.empty:
        lines += ["", "## Classifiers (test AUROC over folds)", "", "| dataset | arch | folds | mean | std |",
                  "|---|---|---|---|---|"]
        for (dataset, arch), rows in classifiers.groupby(["dataset", "arch"], sort=False):
            lines.append(f"| {dataset} | {arch} | {len(rows)} | {fmt(rows['test_auroc'].mean())} | "
                         f"{fmt(rows['test_auroc'].std(ddof=1) if len(rows) > 1 else 0.0)} |")
    return "\n".join(lines) + "\n"


def summary_table(scorecard: pd.DataFrame, settings: Statistics) -> pd.DataFrame:
    """The paper's overview, every configured criterion: a row per dataset and method (controls
    marked), a column per criterion id (`registry.CRITERIA` order), the verdict in each cell."""
    main = scorecard[scorecard["criterion"].isin(CRITERIA)]
    criteria = [c for c in CRITERIA if c in set(main["criterion"])]
    verdict = main.set_index(["dataset", "method", "criterion"])["verdict"]
    rows = [{"dataset": d, "method": m, "control": is_control(m),
             **{c: verdict.get((d, m, c), "") for c in criteria}}
            for d in settings.datasets for m in settings.methods]
    return pd.DataFrame(rows, columns=SUMMARY_INDEX + criteria)


def controls_table(scorecard: pd.DataFrame) -> pd.DataFrame:
    """Each control's verdict on every configured criterion it must fail (`registry.CONTROL_MUST_FAIL`),
    with ``ok`` False where it does not: a bug in that criterion."""
    rows = [{"dataset": r["dataset"], "method": r["method"], "criterion": r["criterion"], "must": "FAIL",
             "verdict": r["verdict"], "ok": r["verdict"] == "FAIL"}
            for _, r in scorecard.iterrows()
            if r["method"] in CONTROLS and r["criterion"] in CONTROL_MUST_FAIL[r["method"]]]
    return pd.DataFrame(rows, columns=CONTROLS_COLUMNS)


def build_scorecard(settings: Statistics, root: str | Path, classifiers_table: str | Path) -> dict[str, pd.DataFrame]:
    """Every table of the evaluation, from the score tables of each dataset under the results
    ``root`` (`salaudit.layout`), its ``rejected.csv`` and the classifier table: ``scorecard``,
    ``summary``, ``controls``, ``utility``, ``randomization``, ``consistency``, ``degenerate``,
    ``classifier_auroc``, ``images`` (per dataset: converted, rejected, excluded, test and evaluated
    images; `report_html.image_counts`)."""
    scorer = Scorer(settings)
    utility_rows, randomization_rows, consistency_rows, degenerate_rows, image_rows = [], [], [], [], []
    for dataset in settings.datasets:
        scores = {name: read_scores(root, dataset, name) for name in SCORE_FILES}
        rejected = pd.read_csv(layout.path(layout.REJECTED, root, dataset=dataset), dtype=str, keep_default_na=False)
        image_rows.append(report_html.image_counts(
            dataset, *(pd.read_csv(layout.path(t, root, dataset=dataset), dtype=str, keep_default_na=False)
                       for t in (layout.MANIFEST, layout.SPLITS, layout.EVAL_IMAGES)),
            rejected, pd.read_csv(layout.path(layout.EXCLUDED, root, dataset=dataset), dtype=str), settings.n_eval))
        scorer.dataset(dataset, scores)
        utility_rows += utility_table(dataset, scores["utility"], settings)
        randomization_rows += randomization_table(dataset, scores["randomization"], scores["random_pairs"])
        consistency_rows += consistency_table(dataset, scores["consistency"], settings)
        degenerate_rows += degenerate_table(dataset, scores, rejected)
    classifiers = pd.read_csv(classifiers_table)
    scorecard = scorer.scorecard()
    return {
        "scorecard": scorecard,
        "summary": summary_table(scorecard, settings),
        "controls": controls_table(scorecard),
        "utility": pd.DataFrame(utility_rows, columns=UTILITY_COLUMNS),
        "randomization": pd.DataFrame(randomization_rows, columns=RANDOMIZATION_COLUMNS),
        "consistency": pd.DataFrame(consistency_rows, columns=CONSISTENCY_COLUMNS),
        "degenerate": pd.DataFrame(degenerate_rows, columns=DEGENERATE_COLUMNS),
        "images": pd.DataFrame(image_rows),
        "classifier_auroc": classifiers[classifiers["dataset"].isin(settings.datasets)][CLASSIFIER_COLUMNS],
    }


def verdict_summary(scorecard: pd.DataFrame) -> str:
    """The verdicts of the paper's four criteria, a row per method (the aggregate job's log)."""
    main = scorecard[scorecard["criterion"].isin(PAPER_CRITERIA)]
    return main.pivot_table(index="method", columns=["dataset", "criterion"], values="verdict",
                            aggfunc="first").to_string()
