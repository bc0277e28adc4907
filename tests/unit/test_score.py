"""score.py and aggregate.py on a synthetic results tree (tests/unit/eval_tree.py)."""

import numpy as np
import pandas as pd
import pytest

import aggregate
import eval_tree
import score

N_EVAL = 12


def run_score(results, dataset, localizer, **kwargs):
    assert score.main(score.get_args_parser().parse_args(eval_tree.score_args(results, dataset, localizer, **kwargs))) == 0
    folder = results / dataset / "scores"
    return {name: pd.read_csv(folder / f"{name}.csv", dtype={"image_id": str, "reason": str}, keep_default_na=False,
                              na_values={"auprc": [""], "average_precision": [""], "ssim": [""]})
            for name in ("utility", "randomization", "random_pairs", "consistency")}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    results = tmp_path_factory.mktemp("eval") / "results"
    # clean: no degenerate cases; dirty: one constant map and one image with an empty mask
    eval_tree.write_tree(results, "clean", n_eval=N_EVAL, localizer="retinanet", seed=1)
    dirty = eval_tree.write_tree(results, "dirty", n_eval=N_EVAL, localizer="unet", seed=0, empty_mask=True,
                                 constant_map=True)
    scores = {"clean": run_score(results, "clean", "retinanet"), "dirty": run_score(results, "dirty", "unet")}
    classifiers = results / "tables" / "classifiers.csv"
    classifiers.parent.mkdir(parents=True)
    pd.DataFrame({"dataset": ["clean", "clean"], "arch": ["arch_a", "arch_b"], "fold": [0, 0], "val_auroc": [0.9, 0.8],
                  "test_auroc": [0.91, 0.85], "seconds": [1, 1]}).to_csv(classifiers, index=False)
    args = aggregate.get_args_parser().parse_args([
        "--results", str(results), "--datasets", "clean", "dirty", "--methods", *eval_tree.METHODS,
        "--n-bootstrap", "300", "--classifiers", str(classifiers), "--scorecard", str(results / "scorecard.csv"),
        "--scorecard-md", str(results / "tables" / "scorecard.md"), "--tables", str(results / "tables")])
    assert aggregate.main(args) == 0
    return {"results": results, "scores": scores, "dirty": dirty,
            "scorecard": pd.read_csv(results / "scorecard.csv", keep_default_na=False, na_values={"p": [""]})}


def test_score_columns_and_row_counts(tree):
    s = tree["scores"]["clean"]
    assert list(s["utility"].columns) == score.UTILITY_COLUMNS == [
        "dataset", "source", "method", "arch", "fold", "image_id", "auprc", "average_precision", "positive_fraction",
        "reason"]
    assert list(s["randomization"].columns) == ["dataset", "method", "arch", "fold", "mode", "step_index", "step",
                                                "last_step", "image_id", "ssim", "reason"]
    assert list(s["random_pairs"].columns) == ["dataset", "method", "arch", "fold", "image_id", "ssim", "n_pairs",
                                               "n_degenerate_partners", "reason"]
    assert list(s["consistency"].columns) == ["dataset", "criterion", "method", "arch_a", "fold_a", "arch_b", "fold_b",
                                              "image_id", "ssim", "reason"]
    n_methods, n_archs, n_folds, n_steps = 2, 2, 3, 3
    counts = s["utility"]["source"].value_counts()
    assert counts.to_dict() == {"trained": N_EVAL * n_methods * n_archs * n_folds, "untrained": N_EVAL * n_methods * n_folds,
                                "localizer": N_EVAL * n_folds, "average_mask": N_EVAL}
    assert len(s["randomization"]) == N_EVAL * n_methods * n_folds * n_steps
    assert s["randomization"]["last_step"].astype(str).eq("True").sum() == N_EVAL * n_methods * n_folds
    assert (s["random_pairs"]["n_pairs"] == 10).all() and len(s["random_pairs"]) == N_EVAL * n_methods * n_folds
    rep = s["consistency"][s["consistency"]["criterion"] == "repeatability"]
    # localizer 3 fold pairs + per method 2 archs x 3 fold pairs; reproducibility: per method 3 folds
    assert len(rep) == N_EVAL * (3 + n_methods * 2 * 3)
    assert (s["consistency"]["criterion"] == "reproducibility").sum() == N_EVAL * n_methods * 3
    assert (s["utility"]["reason"] == "").all()


def test_score_values_follow_the_maps(tree):
    u = tree["scores"]["clean"]["utility"]
    good = u[(u["source"] == "trained") & (u["method"] == "good")]
    random = u[(u["source"] == "trained") & (u["method"] == "random")]
    assert good["auprc"].min() > 0.9  # the blurred mask ranks the mask pixels first
    # uniform noise: AUPRC near the positive fraction
    assert abs(random["auprc"].mean() - random["positive_fraction"].mean()) < 0.03
    r = tree["scores"]["clean"]["randomization"]
    assert r.loc[r["method"] == "good", "ssim"].max() < 0.1  # noise vs the trained map
    pairs = tree["scores"]["clean"]["random_pairs"]
    assert pairs.loc[pairs["method"] == "good", "ssim"].min() > 0.2  # two mask-like maps share the background


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
    assert (row["method"], row["arch"], row["fold"], row["image_id"]) == ("good", "arch_a", 0, tree["dirty"]["ids"][0])
    # a constant map is scored at chance (positive fraction), not the trapezoid's (1 + p) / 2
    assert row["auprc"] == pytest.approx(row["positive_fraction"]) and row["auprc"] < 0.3
    empty = u[u["image_id"] == empty_id]
    assert len(empty) == len(u) // N_EVAL  # every map keeps its row for that image
    assert (empty["reason"] == "empty_mask").all() and empty["auprc"].isna().all()
    card = tree["scorecard"].set_index(["dataset", "method", "criterion"])
    utility = card.loc[("dirty", "good", "utility")]
    assert utility["n"] == N_EVAL - 1 and utility["n_excluded"] == 1
    # 6 good maps + 1 average-mask map of the empty-mask image, and the constant map
    assert utility["n_degenerate"] == 6 + 1 + 1
    degenerate = pd.read_csv(tree["results"] / "tables" / "degenerate.csv", keep_default_na=False)
    good = degenerate[(degenerate["dataset"] == "dirty") & (degenerate["table"] == "utility")
                      & (degenerate["method"] == "good")].iloc[0]
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
    assert list(card.columns[:8]) == ["dataset", "method", "criterion", "value", "ci_low", "ci_high", "p", "verdict"]
    main = card[card["criterion"].isin(aggregate.CRITERIA)].set_index(["dataset", "method", "criterion"])["verdict"]
    for criterion in aggregate.CRITERIA:
        assert main[("clean", "good", criterion)] == "PASS", criterion
        for dataset in ("clean", "dirty"):
            assert main[(dataset, "random", criterion)] == "FAIL", (dataset, criterion)
    assert main[("dirty", "good", "utility")] == "PASS"
    clean_good = card[(card["dataset"] == "clean") & (card["method"] == "good")].set_index("criterion")
    assert clean_good.loc["utility", "baseline"] < 0.2 < clean_good.loc["utility", "value"]
    assert clean_good.loc["randomization", "value"] < clean_good.loc["randomization", "baseline"]
    assert clean_good.loc["repeatability", "baseline"] == 0.5 and clean_good.loc["repeatability", "n"] == N_EVAL
    assert (clean_good.loc["utility", "ci_low"] <= clean_good.loc["utility", "value"] <= clean_good.loc["utility", "ci_high"])
    assert set(card.loc[card["criterion"].str.endswith("_vs_localizer"), "verdict"]) <= {"ABOVE", "NOT_ABOVE"}
    assert (card["p_holm"] >= card["p"]).all()
    markdown = (tree["results"] / "tables" / "scorecard.md").read_text()
    assert "| RANDOM | FAIL" in markdown and "| GOOD | PASS" in markdown


def test_tables(tree):
    tables = tree["results"] / "tables"
    utility = pd.read_csv(tables / "utility.csv")
    assert list(utility.columns) == aggregate.UTILITY_COLUMNS
    row = utility[(utility["dataset"] == "clean") & (utility["source"] == "untrained") & (utility["method"] == "good")]
    assert row["n_images"].item() == N_EVAL and row["mean_auprc"].item() < 0.2
    randomization = pd.read_csv(tables / "randomization.csv")
    assert list(randomization.columns) == aggregate.RANDOMIZATION_COLUMNS
    clean = randomization[randomization["dataset"] == "clean"]
    assert len(clean) == 2 * 3 and (clean["n_replicates"] == 3).all()
    consistency = pd.read_csv(tables / "consistency.csv")
    assert list(consistency.columns) == aggregate.CONSISTENCY_COLUMNS
    assert set(consistency.loc[consistency["dataset"] == "clean", "archs"]) == {"retinanet", "arch_a", "arch_b",
                                                                               "arch_a~arch_b"}
    classifiers = pd.read_csv(tables / "classifier_auroc.csv")
    assert list(classifiers.columns) == ["dataset", "arch", "fold", "val_auroc", "test_auroc"] and len(classifiers) == 2


def test_figures_are_written(tree):
    import matplotlib.image

    import figures

    results = tree["results"]
    out = results / "figures"
    args = figures.get_args_parser().parse_args([
        "--results", str(results), "--datasets", "clean", "dirty", "--methods", *eval_tree.METHODS,
        "--archs", *eval_tree.ARCHS, "--folds", *map(str, eval_tree.FOLDS), "--example-arch", "arch_a",
        "--tables", str(results / "tables"), "--out", str(out), "--dpi", "40"])
    assert figures.main(args) == 0
    names = ["utility", "cascade", "consistency", "roc"] + [f"{kind}_{d}" for kind in ("examples", "cascade_strip")
                                                            for d in ("clean", "dirty")]
    for name in names:
        image = matplotlib.image.imread(out / f"{name}.png")
        assert image.shape[0] > 40 and image.shape[1] > 100, name



def test_independent_randomization_alone(tmp_path):
    """saliency.randomization.modes: [independent] (no cascade): scores, scorecard and figures are
    made; no fully randomized ("untrained") model exists, so that criterion does not apply."""
    import figures

    results = tmp_path / "results"
    eval_tree.write_tree(results, "solo", n_eval=6, seed=2, modes=("independent",))
    scores = run_score(results, "solo", "unet", modes=("independent",))
    assert set(scores["randomization"]["mode"]) == {"independent"}
    assert "untrained" not in set(scores["utility"]["source"])
    classifiers = results / "tables" / "classifiers.csv"
    classifiers.parent.mkdir(parents=True)
    pd.DataFrame({"dataset": ["solo"], "arch": ["arch_a"], "fold": [0], "val_auroc": [0.9], "test_auroc": [0.9],
                  "seconds": [1]}).to_csv(classifiers, index=False)
    assert aggregate.main(aggregate.get_args_parser().parse_args([
        "--results", str(results), "--datasets", "solo", "--methods", *eval_tree.METHODS, "--n-bootstrap", "50",
        "--alpha", "0.05",
        "--classifiers", str(classifiers), "--scorecard", str(results / "scorecard.csv"),
        "--scorecard-md", str(results / "tables" / "scorecard.md"), "--tables", str(results / "tables")])) == 0
    card = pd.read_csv(results / "scorecard.csv", keep_default_na=False)
    assert set(card.loc[card["criterion"] == "randomization", "verdict"]) == {"NOT_APPLICABLE"}
    assert set(card.loc[card["criterion"] == "utility", "verdict"]) == {"PASS", "FAIL"}
    table = pd.read_csv(results / "tables" / "randomization.csv")
    assert set(table["mode"]) == {"independent"} and len(table) == 2 * 3
    assert figures.main(figures.get_args_parser().parse_args([
        "--results", str(results), "--datasets", "solo", "--methods", *eval_tree.METHODS, "--archs", *eval_tree.ARCHS,
        "--folds", *map(str, eval_tree.FOLDS), "--example-arch", "arch_a", "--tables", str(results / "tables"),
        "--out", str(results / "figures"), "--dpi", "40"])) == 0
    assert (results / "figures" / "cascade_strip_solo.png").stat().st_size > 1000
