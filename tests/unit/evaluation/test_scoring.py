"""score.py, aggregate.py and figures.py on a synthetic results tree (tests/helpers/eval_tree.py)."""

import shutil

import numpy as np
import pandas as pd
import pytest

import aggregate
import score
from helpers import eval_tree
from salaudit.evaluation import report_html, scorecard, scoring
from salaudit.registry import CONTROL_MUST_FAIL, CONTROLS, CRITERIA, display

N_EVAL = 12
GOOD, RANDOM = eval_tree.GOOD, "random"
MODES = ("cascade", "bottom_up", "independent")
ARCH_A, ARCH_B = eval_tree.ARCHS  # ARCH_A: the randomized one
N_STEPS = len(eval_tree.STEPS[ARCH_A])
# dataset -> localizer (its format in the settings)
DATASETS = {"clean": "retinanet", "dirty": "unet"}


NUMERIC = ("auprc", "average_precision", "pointing_game", "iou_otsu", "ssim", "spearman", "entropy", "entropy_trained",
           "null_ssim", "p", "p_holm", "null", "null_ci_low", "null_ci_high", "p_null", "p_null_holm")


def run_score(results, dataset, localizer, modes=MODES, **kwargs):
    args = eval_tree.score_args(results, dataset, localizer, modes=modes, **kwargs)
    assert score.main(score.get_args_parser().parse_args(args)) == 0
    folder = results / dataset / "scores"
    return {name: pd.read_csv(folder / f"{name}.csv", dtype={"image_id": str, "reason": str}, keep_default_na=False,
                              na_values={c: [""] for c in NUMERIC})
            for name in ("utility", "randomization", "random_pairs", "consistency")}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    results = tmp_path_factory.mktemp("eval") / "results"
    # clean: no degenerate cases; dirty: one constant map and one image with an empty mask
    eval_tree.write_tree(results, "clean", n_eval=N_EVAL, localizer="retinanet", seed=1, modes=MODES)
    dirty = eval_tree.write_tree(results, "dirty", n_eval=N_EVAL, localizer="unet", seed=0, empty_mask=True,
                                 constant_map=True, modes=MODES)
    scores = {"clean": run_score(results, "clean", "retinanet"), "dirty": run_score(results, "dirty", "unet")}
    classifiers = results / "tables" / "classifiers.csv"
    classifiers.parent.mkdir(parents=True)
    pd.DataFrame({"dataset": ["clean", "clean"], "arch": [ARCH_A, ARCH_B], "fold": [0, 0], "val_auroc": [0.9, 0.8],
                  "test_auroc": [0.91, 0.85], "seconds": [1, 1]}).to_csv(classifiers, index=False)
    args = aggregate.get_args_parser().parse_args(eval_tree.aggregate_args(results, DATASETS, classifiers, modes=MODES,
                                                                           n_bootstrap=300))
    assert aggregate.main(args) == 0
    return {"results": results, "scores": scores, "dirty": dirty,
            "scorecard": pd.read_csv(results / "scorecard.csv", keep_default_na=False,
                                         na_values={c: [""] for c in NUMERIC})}


def test_score_columns_and_row_counts(tree):
    s = tree["scores"]["clean"]
    assert list(s["utility"].columns) == scoring.UTILITY_COLUMNS == [
        "dataset", "source", "method", "arch", "fold", "image_id", "auprc", "average_precision", "pointing_game",
        "iou_otsu", "positive_fraction", "reason"]
    assert list(s["randomization"].columns) == ["dataset", "method", "arch", "fold", "mode", "step_index", "step",
                                                "last_step", "image_id", "ssim", "spearman", "entropy",
                                                "entropy_trained", "reason"]
    assert list(s["random_pairs"].columns) == ["dataset", "method", "arch", "fold", "image_id", "ssim", "spearman",
                                               "n_pairs", "n_degenerate_partners", "reason"]
    assert list(s["consistency"].columns) == ["dataset", "criterion", "method", "arch_a", "fold_a", "arch_b", "fold_b",
                                              "image_id", "ssim", "null_ssim", "reason"]
    n_methods, n_archs, n_folds, n_steps, n_modes = len(eval_tree.METHODS), 2, 3, N_STEPS, len(MODES)
    counts = s["utility"]["source"].value_counts()
    assert counts.to_dict() == {"trained": N_EVAL * n_methods * n_archs * n_folds, "untrained": N_EVAL * n_methods * n_folds,
                                "localizer": N_EVAL * n_folds, "average_mask": N_EVAL}
    r = s["randomization"]
    # every step of every mode of the randomized arch's folds, and one step of the label-randomized replicate
    assert (r["mode"] == "labels").sum() == N_EVAL * n_methods
    assert len(r) == N_EVAL * n_methods * (n_folds * n_steps * n_modes + 1)
    assert r["last_step"].astype(str).eq("True").sum() == N_EVAL * n_methods * (n_folds * n_modes + 1)
    # bottom-up randomizes the bottom block first and ends with the top one: the fully random model
    bottom_up = r[(r["mode"] == "bottom_up") & (r["method"] == GOOD) & (r["fold"] == 0) & (r["image_id"] == r["image_id"][0])]
    assert bottom_up.sort_values("step_index")["step"].tolist() == eval_tree.STEPS[ARCH_A][::-1]
    assert (s["random_pairs"]["n_pairs"] == 10).all() and len(s["random_pairs"]) == N_EVAL * n_methods * n_folds
    rep = s["consistency"][s["consistency"]["criterion"] == "repeatability"]
    # localizer 3 fold pairs + per method 2 archs x 3 fold pairs; reproducibility: per method 3 folds
    assert len(rep) == N_EVAL * (3 + n_methods * 2 * 3)
    assert (s["consistency"]["criterion"] == "reproducibility").sum() == N_EVAL * n_methods * 3
    assert (s["utility"]["reason"] == "").all()


def test_score_values_follow_the_maps(tree):
    u = tree["scores"]["clean"]["utility"]
    good = u[(u["source"] == "trained") & (u["method"] == GOOD)]
    random = u[(u["source"] == "trained") & (u["method"] == RANDOM)]
    assert good["auprc"].min() > 0.9  # the blurred mask ranks the mask pixels first
    # uniform noise: AUPRC near the positive fraction
    assert abs(random["auprc"].mean() - random["positive_fraction"].mean()) < 0.03
    r = tree["scores"]["clean"]["randomization"]
    assert r.loc[r["method"] == GOOD, "ssim"].max() < 0.1  # noise vs the trained map
    assert r.loc[r["method"] == GOOD, "spearman"].abs().max() < 0.3
    # noise is more complex than the blurred mask (eMPRT's entropy); an unchanged map is as complex
    good = r[r["method"] == GOOD]
    assert (good["entropy"] > good["entropy_trained"]).all()
    edge = r[r["method"] == "edge"]
    assert np.allclose(edge["ssim"], 1) and np.allclose(edge["spearman"], 1) and np.allclose(edge["entropy"], edge["entropy_trained"])
    pairs = tree["scores"]["clean"]["random_pairs"]
    assert pairs.loc[pairs["method"] == GOOD, "ssim"].min() > 0.2  # two mask-like maps share the background
    assert pairs.loc[pairs["method"] == GOOD, "spearman"].min() > 0.2  # ... and their shared structure
    # the image-shuffled null: other images agree less than the same image; the prior agrees everywhere
    c = tree["scores"]["clean"]["consistency"]
    assert (c.loc[c["method"] == GOOD, "ssim"] > c.loc[c["method"] == GOOD, "null_ssim"]).mean() > 0.9
    assert np.allclose(c.loc[c["method"] == "prior", ["ssim", "null_ssim"]], 1)
    # utility: the good map hits the lesion with its maximum; a constant map scores chance in each metric
    good = u[(u["source"] == "trained") & (u["method"] == GOOD)]
    assert good["pointing_game"].min() == 1 and good["iou_otsu"].mean() > 0.6


def test_random_pair_baseline_is_reproducible(tree, tmp_path):
    results = tree["results"]
    again = run_score(results, "clean", "retinanet")
    pd.testing.assert_frame_equal(again["random_pairs"], tree["scores"]["clean"]["random_pairs"])
    other = run_score(results, "clean", "retinanet", seed=5)
    assert not np.allclose(other["random_pairs"]["ssim"], again["random_pairs"]["ssim"])


def test_degenerate_rows_are_kept_counted_and_scored_at_chance(tree):
    u = tree["scores"]["dirty"]["utility"]
    empty_id = tree["dirty"]["ids"][1]
    constant = u[u["reason"].str.contains("constant_map")]
    assert len(constant) == 1
    row = constant.iloc[0]
    assert (row["method"], row["arch"], row["fold"], row["image_id"]) == (GOOD, ARCH_A, 0, tree["dirty"]["ids"][0])
    # a constant map is scored at chance (positive fraction), not the trapezoid's (1 + p) / 2
    assert row["auprc"] == pytest.approx(row["positive_fraction"]) and row["auprc"] < 0.3
    assert row["pointing_game"] == pytest.approx(row["positive_fraction"]) == row["iou_otsu"]
    empty = u[u["image_id"] == empty_id]
    assert len(empty) == len(u) // N_EVAL  # every map keeps its row for that image
    assert (empty["reason"] == "empty_mask").all() and empty["auprc"].isna().all()
    card = tree["scorecard"].set_index(["dataset", "method", "criterion"])
    utility = card.loc[("dirty", GOOD, "utility")]
    assert utility["n"] == N_EVAL - 1 and utility["n_excluded"] == 1
    # 6 good maps + 1 average-mask map of the empty-mask image, and the constant map
    assert utility["n_degenerate"] == 6 + 1 + 1
    degenerate = pd.read_csv(tree["results"] / "tables" / "degenerate.csv", keep_default_na=False)
    good = degenerate[(degenerate["dataset"] == "dirty") & (degenerate["table"] == "utility")
                      & (degenerate["method"] == GOOD)].iloc[0]
    assert good["n_degenerate"] == 9 + 1 and "constant_map 1" in good["reasons"] and "empty_mask 9" in good["reasons"]
    # a pair with a constant map agrees with nothing: SSIM 0 in repeatability/reproducibility
    c = tree["scores"]["dirty"]["consistency"]
    blank = c[c["reason"].str.contains("constant_map")]
    assert len(blank) > 0 and (blank["ssim"] == 0).all()
    assert (c.loc[c["reason"] == "", "ssim"] > 0).any()
    rejected = degenerate[(degenerate["dataset"] == "dirty") & (degenerate["table"] == "rejected_inputs")].iloc[0]
    assert rejected["n_rows"] == 1 and rejected["reasons"] == "truncated 1"


def test_scorecard_columns_and_verdicts(tree):
    card = tree["scorecard"]
    assert list(card.columns) == scorecard.SCORECARD_COLUMNS
    assert list(card.columns[:8]) == ["dataset", "method", "criterion", "value", "ci_low", "ci_high", "p", "verdict"]
    main = card[card["criterion"].isin(CRITERIA)].set_index(["dataset", "method", "criterion"])["verdict"]
    # every criterion is configured in this tree, and the method that localizes passes each one
    assert set(card.loc[card["criterion"].isin(CRITERIA), "criterion"]) == set(CRITERIA)
    for criterion in CRITERIA:
        assert main[("clean", GOOD, criterion)] == "PASS", criterion
        for dataset in ("clean", "dirty"):
            assert main[(dataset, RANDOM, criterion)] == "FAIL", (dataset, criterion)
    assert main[("dirty", GOOD, "utility")] == "PASS"
    clean_good = card[(card["dataset"] == "clean") & (card["method"] == GOOD)].set_index("criterion")
    assert clean_good.loc["utility", "baseline"] < 0.2 < clean_good.loc["utility", "value"]
    assert clean_good.loc["randomization", "value"] < clean_good.loc["randomization", "baseline"]
    assert clean_good.loc["repeatability", "baseline"] == 0.5 and clean_good.loc["repeatability", "n"] == N_EVAL
    assert (clean_good.loc["utility", "ci_low"] <= clean_good.loc["utility", "value"] <= clean_good.loc["utility", "ci_high"])
    assert set(card.loc[card["criterion"].str.endswith("_vs_localizer"), "verdict"]) <= {"ABOVE", "NOT_ABOVE"}
    assert (card["p_holm"] >= card["p"]).all()
    # the consistency rows carry their null; the others none
    consistency = card["criterion"].isin(["repeatability", "reproducibility"])
    assert card.loc[consistency, ["null", "null_ci_low", "null_ci_high", "p_null", "p_null_holm"]].notna().all().all()
    assert card.loc[~consistency, "null"].isna().all()
    assert card["control"].astype(str).eq("True").sum() == (card["method"].isin(CONTROLS)).sum() > 0
    markdown = (tree["results"] / "tables" / "scorecard.md").read_text()
    assert f"| {display(RANDOM)} * | FAIL" in markdown and f"| {display(GOOD)} | PASS" in markdown
    assert "verdicts of the controls checked against the ones they must get: all as they must be" in markdown


def test_every_control_gets_exactly_its_documented_verdicts(tree):
    """The controls of the README's table: each fails what it must, on both datasets."""
    controls = pd.read_csv(tree["results"] / "tables" / "controls.csv")
    assert list(controls.columns) == scorecard.CONTROLS_COLUMNS
    expected = {(d, m, c) for d in DATASETS for m in CONTROLS for c in CONTROL_MUST_FAIL[m]}
    assert set(zip(controls["dataset"], controls["method"], controls["criterion"])) == expected
    assert controls["ok"].all(), controls[~controls["ok"]]
    summary = pd.read_csv(tree["results"] / "tables" / "summary.csv", keep_default_na=False)
    assert list(summary.columns) == ["dataset", "method", "control", *CRITERIA]
    assert summary["control"].astype(str).eq("True").sum() == len(CONTROLS) * len(DATASETS)
    # smooth and image-independent maps agree across models as much as a method that localizes...
    card = tree["scorecard"].set_index(["dataset", "method", "criterion"])
    for control in ("prior", "edge"):
        assert card.loc[("clean", control, "repeatability"), "value"] > card.loc[("clean", GOOD, "repeatability"), "value"] - 0.1
    # ...but only the prior fails, on its null: the edge map differs per image, so it agrees on where
    assert card.loc[("clean", "prior", "repeatability"), "p_null"] == 1.0


def test_without_the_null_the_prior_control_passes_and_the_check_says_so(tree, tmp_path, capsys):
    """The consistency null is what rejects an image-independent map: drop it and the prior
    passes repeatability - which the controls table and the aggregate log report."""
    results = tmp_path / "results"
    for name in ("clean",):
        shutil.copytree(tree["results"] / name, results / name)
        consistency = results / name / "scores" / "consistency.csv"
        frame = pd.read_csv(consistency, keep_default_na=False)
        frame["null_ssim"] = 0.0  # a null that never rejects
        frame.to_csv(consistency, index=False)
    classifiers = tree["results"] / "tables" / "classifiers.csv"
    args = aggregate.get_args_parser().parse_args(eval_tree.aggregate_args(results, {"clean": "retinanet"}, classifiers,
                                                                           modes=MODES, n_bootstrap=300))
    assert aggregate.main(args) == 0
    controls = pd.read_csv(results / "tables" / "controls.csv")
    broken = controls[~controls["ok"]]
    assert set(zip(broken["method"], broken["criterion"])) == {("prior", "repeatability"), ("prior", "reproducibility")}
    assert set(broken["verdict"]) == {"PASS"}
    err = capsys.readouterr().err
    assert "WARNING: control prior got PASS on clean repeatability, must be FAIL" in err


def test_tables(tree):
    tables = tree["results"] / "tables"
    assert list(pd.read_csv(tables / "summary.csv").columns[:3]) == scorecard.SUMMARY_INDEX
    utility = pd.read_csv(tables / "utility.csv")
    assert list(utility.columns) == scorecard.UTILITY_COLUMNS
    row = utility[(utility["dataset"] == "clean") & (utility["source"] == "untrained") & (utility["method"] == GOOD)]
    assert row["n_images"].item() == N_EVAL and row["mean_auprc"].item() < 0.2
    randomization = pd.read_csv(tables / "randomization.csv")
    assert list(randomization.columns) == scorecard.RANDOMIZATION_COLUMNS
    clean = randomization[randomization["dataset"] == "clean"]
    # each method: every step of every mode (3 replicates), and the label-randomized replicate
    assert len(clean) == len(eval_tree.METHODS) * (len(MODES) * N_STEPS + 1)
    assert (clean.loc[clean["mode"] != "labels", "n_replicates"] == 3).all()
    assert (clean.loc[clean["mode"] == "labels", "n_replicates"] == 1).all()
    consistency = pd.read_csv(tables / "consistency.csv")
    assert list(consistency.columns) == scorecard.CONSISTENCY_COLUMNS
    assert set(consistency.loc[consistency["dataset"] == "clean", "archs"]) == {"retinanet", ARCH_A, ARCH_B,
                                                                               f"{ARCH_A}~{ARCH_B}"}
    classifiers = pd.read_csv(tables / "classifier_auroc.csv")
    assert list(classifiers.columns) == ["dataset", "arch", "fold", "val_auroc", "test_auroc"] and len(classifiers) == 2
    # the report's pages: each table as HTML, verdicts coloured, the controls' rows in italics
    for name in ("scorecard", "summary", "controls", "utility", "randomization", "consistency", "classifier_auroc",
                 "degenerate"):
        page = (tables / f"{name}.html").read_text()
        assert page.startswith("<!DOCTYPE html>") and "<table" in page, name
    summary = (tables / "summary.html").read_text()
    assert f"background:{report_html.COLOURS['PASS']}" in summary and 'style="font-style:italic"' in summary
    # the landing overview: images, headline, every verdict, the controls checked
    overview = (tables / "overview.html").read_text()
    assert f'<div id="{report_html.OVERVIEW_ID}"' in overview
    assert f"<b>clean</b>: {N_EVAL + 8} images (1 rejected, 1 excluded), {N_EVAL} in the test set, {N_EVAL} evaluated" in overview
    # n_eval is the schema's 100 here: fewer evaluation images is said where the reader looks
    assert f"(n_eval 100: <b>only {N_EVAL} positive test images</b>)" in overview
    assert "Controls</b>: all " in overview and "verdicts as they must be" in overview
    assert overview.count("<tr><td>GRAD</td>") == 2 and "RANDOM *" in overview


def test_figures_are_written(tree):
    import matplotlib.image

    import figures

    results = tree["results"]
    out = results / "figures"
    args = figures.get_args_parser().parse_args(eval_tree.figures_args(results, DATASETS, out))
    assert figures.main(args) == 0
    names = ["utility", "cascade", "consistency", "consistency_null", "roc"] + [f"{kind}_{d}" for kind in ("examples", "cascade_strip")
                                                            for d in ("clean", "dirty")]
    for name in names:
        image = matplotlib.image.imread(out / f"{name}.png")
        assert image.shape[0] > 40 and image.shape[1] > 100, name


def test_independent_randomization_alone(tmp_path):
    """saliency.randomization.modes: [independent] (no cascade, no label randomization): scores,
    scorecard and figures are made; no fully randomized ("untrained") model exists, so the criteria
    that need one are absent, as is every criterion not configured."""
    import figures

    results = tmp_path / "results"
    eval_tree.write_tree(results, "solo", n_eval=6, seed=2, modes=("independent",), label_models=())
    scores = run_score(results, "solo", "unet", modes=("independent",), label_models=())
    assert set(scores["randomization"]["mode"]) == {"independent"}
    assert "untrained" not in set(scores["utility"]["source"])
    classifiers = results / "tables" / "classifiers.csv"
    classifiers.parent.mkdir(parents=True)
    pd.DataFrame({"dataset": ["solo"], "arch": [ARCH_A], "fold": [0], "val_auroc": [0.9], "test_auroc": [0.9],
                  "seconds": [1]}).to_csv(classifiers, index=False)
    # n_bootstrap 100: the least the schema allows
    assert aggregate.main(aggregate.get_args_parser().parse_args(eval_tree.aggregate_args(
        results, {"solo": "unet"}, classifiers, modes=("independent",), label_models=(), n_bootstrap=100,
        alpha=0.05))) == 0
    card = pd.read_csv(results / "scorecard.csv", keep_default_na=False)
    main = set(card.loc[card["criterion"].isin(CRITERIA), "criterion"])
    assert main == {"utility", "utility_ap", "pointing_game", "iou_otsu", "randomization_independent",
                    "repeatability", "reproducibility"}
    assert set(card.loc[card["criterion"] == "utility", "verdict"]) == {"PASS", "FAIL"}
    table = pd.read_csv(results / "tables" / "randomization.csv")
    assert set(table["mode"]) == {"independent"} and len(table) == len(eval_tree.METHODS) * N_STEPS
    assert figures.main(figures.get_args_parser().parse_args(eval_tree.figures_args(
        results, {"solo": "unet"}, results / "figures", modes=("independent",), label_models=()))) == 0
    assert (results / "figures" / "cascade_strip_solo.png").stat().st_size > 1000


def test_a_truncated_map_is_one_line_naming_it_and_its_rule(tmp_path, capsys):
    """Before: a 20-line traceback from numpy; now the file, its damage and the rule that remakes it,
    and no score file written."""
    results = tmp_path / "results"
    eval_tree.write_tree(results, "clean", n_eval=N_EVAL, localizer="retinanet", seed=1, modes=MODES)
    victim = results / "clean" / "maps" / ARCH_B / "fold0" / GOOD / "trained.npy"
    data = victim.read_bytes()
    victim.write_bytes(data[:-100])
    args = eval_tree.score_args(results, "clean", "retinanet", modes=MODES)
    assert score.main(score.get_args_parser().parse_args(args)) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"ERROR: {victim}: damaged ({len(data) - 100} of {len(data)} bytes); "
                   "remake it: snakemake --forcerun saliency")
    assert not (results / "clean" / "scores").exists()
