import numpy as np
import pandas as pd
import pytest

from salaudit.evaluation.stats import bootstrap_mean_ci, holm, paired_comparison, verdicts, wilcoxon_p


def test_holm_hand_computed():
    # sorted 0.01, 0.03, 0.04 (m = 3): 3 * 0.01 = 0.03; 2 * 0.03 = 0.06; 1 * 0.04 -> running max 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, np.nan]), [0.03, 0.06, 0.06, np.nan])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])  # capped at 1
    assert np.isnan(holm([np.nan])).all()


def test_wilcoxon_exact_small_case():
    # three positive differences: only 1 of the 2**3 sign assignments has W+ = 6 -> p = 1/8
    assert wilcoxon_p([1.0, 2.0, 3.0], "greater") == pytest.approx(1 / 8)
    assert wilcoxon_p([1.0, 2.0, 3.0], "less") == pytest.approx(1.0)
    assert wilcoxon_p([0.0, 0.0], "greater") == 1.0  # nothing to rank
    with pytest.raises(ValueError):
        wilcoxon_p([1.0, np.nan], "greater")


def test_wilcoxon_holm_detect_a_known_effect_and_not_a_null_one():
    rng = np.random.default_rng(0)
    n = 40
    baseline = rng.random(n)
    effect = baseline + 0.1 + 0.05 * rng.standard_normal(n)  # clearly above, paired
    null = baseline + 0.05 * rng.standard_normal(n)  # same centre
    p = [wilcoxon_p(effect - baseline, "greater"), wilcoxon_p(null - baseline, "greater")]
    adjusted = holm(p)
    assert adjusted[0] < 1e-6
    assert adjusted[1] > 0.05
    # the same effect is not "less"
    assert wilcoxon_p(effect - baseline, "less") > 0.99


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    values = np.arange(20, dtype=float)
    mean, low, high = bootstrap_mean_ci(values, n_bootstrap=1000, confidence=0.95, seed=3)
    assert mean == pytest.approx(9.5)
    # normal theory: SE = 5.77 / sqrt(20) = 1.29, 95% CI about 9.5 ± 2.5
    assert 6.3 < low < 7.7 and 11.3 < high < 12.7
    assert (mean, low, high) == bootstrap_mean_ci(values, n_bootstrap=1000, confidence=0.95, seed=3)
    assert bootstrap_mean_ci([0.4] * 5, 200, 0.95, 0) == (pytest.approx(0.4), pytest.approx(0.4), pytest.approx(0.4))
    assert np.isnan(bootstrap_mean_ci([], 100, 0.95, 0)).all()
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_mean_ci([1.0, np.nan], 100, 0.95, 0)


def test_paired_comparison_counts_excluded_images():
    values = np.array([0.9, 0.8, np.nan, 0.7, 0.95])
    result = paired_comparison(values, 0.5, "greater", n_bootstrap=200, confidence=0.95, seed=0)
    assert result["n"] == 4 and result["n_excluded"] == 1
    assert result["value"] == pytest.approx(np.mean([0.9, 0.8, 0.7, 0.95]))
    assert result["baseline"] == pytest.approx(0.5)
    assert result["p"] == pytest.approx(1 / 16)  # four positive differences, distinct magnitudes


def test_verdicts_use_holm_within_families_and_the_direction_of_the_means():
    table = pd.DataFrame({
        "dataset": ["a", "a", "a", "b"],
        "criterion": ["utility"] * 4,
        "method": ["m1", "m2", "m3", "m1"],
        "p": [0.001, 0.002, np.nan, 0.004],
        "value": [0.6, 0.4, np.nan, 0.6],
        "baseline": [0.5, 0.5, 0.5, 0.5],
        "alternative": ["greater"] * 4,
    })
    out = verdicts(table, alpha=0.005, family=["dataset", "criterion"])
    np.testing.assert_allclose(out["p_holm"], [0.002, 0.002, np.nan, 0.004])
    # m2: significant but its mean is below the baseline -> not a pass; m3: no test -> NOT_APPLICABLE
    assert out["verdict"].tolist() == ["PASS", "FAIL", "NOT_APPLICABLE", "PASS"]


def test_a_row_with_a_null_must_beat_it_too():
    """Consistency rows: above the threshold *and* above the image-shuffled null (Holm in the
    same family); a row that beats the threshold but not its null fails."""
    table = pd.DataFrame({
        "dataset": ["a"] * 3, "criterion": ["repeatability"] * 3, "method": ["localizes", "prior", "noise"],
        "p": [0.001, 0.001, 0.9], "value": [0.9, 1.0, 0.2], "baseline": [0.5, 0.5, 0.5],
        "alternative": ["greater"] * 3,
        "p_null": [0.001, 1.0, 0.001], "null": [0.6, 1.0, 0.1],
    })
    out = verdicts(table, alpha=0.01, family=["dataset", "criterion"])
    np.testing.assert_allclose(out["p_null_holm"], [0.003, 1.0, 0.003])
    assert out["verdict"].tolist() == ["PASS", "FAIL", "FAIL"]
