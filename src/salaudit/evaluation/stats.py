"""Statistics of the four criteria: bootstrap CIs, one-sided paired Wilcoxon tests, Holm.

The unit of analysis is the evaluation image. A method's per-image value is the mean over
the maps (or map pairs) behind it - every architecture and fold for utility, every
randomized architecture and fold for randomization, every model pair for repeatability and
reproducibility - so the tests pair one number per image with one reference per image and
n is the number of images, not of maps (maps of one image from several models are not
independent observations).

* Means come with a percentile bootstrap CI that resamples images (seeded).
* Tests: Wilcoxon signed-rank on the per-image differences, one-sided, `scipy.stats.wilcoxon`
  (exact for n <= 50 without tied magnitudes, tie-corrected normal approximation otherwise;
  zero differences dropped, the ``wilcox`` rule, and so are differences within rounding,
  ``|d| <= 1e-12``). No differences left (all zero, or no
  images): p = 1.
* Holm's step-down correction across the methods of one dataset and criterion.
* Verdict: PASS when the Holm-adjusted p is below alpha *and* the means point the tested
  way (a significant Wilcoxon test with means the other way - possible with skewed
  differences - is not a pass).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from salaudit import seeds

ALTERNATIVES = ("greater", "less")
ROUNDING = 1e-12  # |difference| at or below it counts as zero (the values are of order 1)


def bootstrap_mean_ci(values, n_bootstrap: int, confidence: float, seed: int) -> tuple[float, float, float]:
    """Mean and percentile bootstrap CI of the mean, resampling the values (images) with replacement.

    NaN values must be removed by the caller (they are rejected here, never skipped silently).
    No values: ``(nan, nan, nan)``. One value: the CI is that value.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if np.isnan(v).any():
        raise ValueError("bootstrap_mean_ci got NaN values; drop (and count) them first")
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = seeds.rng(seed, "bootstrap")
    means = np.empty(n_bootstrap)
    chunk = max(1, 2_000_000 // len(v))  # bounded memory for large n
    for start in range(0, n_bootstrap, chunk):
        stop = min(start + chunk, n_bootstrap)
        means[start:stop] = v[rng.integers(0, len(v), size=(stop - start, len(v)))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(v.mean()), float(low), float(high)


def wilcoxon_p(differences, alternative: str) -> float:
    """One-sided Wilcoxon signed-rank p-value that the differences are ``greater``/``less`` than 0."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    d = np.asarray(differences, dtype=np.float64).ravel()
    if np.isnan(d).any():
        raise ValueError("wilcoxon_p got NaN differences; drop (and count) them first")
    # the "wilcox" rule: zero differences carry no sign - nor do differences at floating-point
    # rounding (a mean over models of equal values can differ from the value in its last bits)
    d = d[np.abs(d) > ROUNDING]
    if len(d) == 0:
        return 1.0  # nothing to rank: no evidence either way
    # Exact null distribution for small samples without tied magnitudes, the normal
    # approximation (tie-corrected) otherwise. Named explicitly: scipy's "auto" falls back to
    # a permutation test for small samples with ties, seconds per call and run-to-run noise.
    exact = len(d) <= 50 and len(np.unique(np.abs(d))) == len(d)
    return float(scipy_stats.wilcoxon(d, alternative=alternative, method="exact" if exact else "approx").pvalue)


def holm(pvalues) -> np.ndarray:
    """Holm step-down adjusted p-values; NaN entries stay NaN and do not count in the family."""
    p = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    if m == 0:
        return adjusted
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def paired_comparison(values, reference, alternative: str, n_bootstrap: int, confidence: float,
                      seed: int) -> dict:
    """Compare per-image ``values`` with a per-image ``reference`` (or a scalar threshold).

    Images where either side is NaN (an undefined score, e.g. AUPRC of an empty mask) are
    left out of the mean, CI and test and counted in ``n_excluded``. Returns ``value``,
    ``ci_low``, ``ci_high`` (of the values), ``baseline``, ``baseline_ci_low``,
    ``baseline_ci_high`` (of the reference), ``p`` (one-sided Wilcoxon of values - reference),
    ``n`` (images tested), ``n_excluded``.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    r = np.broadcast_to(np.asarray(reference, dtype=np.float64), v.shape)
    ok = ~(np.isnan(v) | np.isnan(r))
    value, low, high = bootstrap_mean_ci(v[ok], n_bootstrap, confidence, seed)
    base, base_low, base_high = bootstrap_mean_ci(r[ok], n_bootstrap, confidence, seed)
    p = wilcoxon_p(v[ok] - r[ok], alternative) if ok.any() else float("nan")
    return {"value": value, "ci_low": low, "ci_high": high, "baseline": base, "baseline_ci_low": base_low,
            "baseline_ci_high": base_high, "p": p, "n": int(ok.sum()), "n_excluded": int((~ok).sum())}


def verdicts(table: pd.DataFrame, alpha: float, family: list[str], passed: str = "PASS",
             failed: str = "FAIL") -> pd.DataFrame:
    """Add ``p_holm`` (Holm within each ``family`` group) and ``verdict`` to a table of comparisons.

    ``table`` needs ``p``, ``value``, ``baseline`` and ``alternative``. A row without a test
    (p NaN: no images, or a criterion that does not apply) gets the verdict ``NOT_APPLICABLE``.
    Rows with a ``p_null`` (and ``null``) must also beat their null: ``p_null_holm`` is added.
    """
    out = table.copy()
    out["p_holm"] = np.nan
    for _, rows in out.groupby(family, sort=False):
        out.loc[rows.index, "p_holm"] = holm(rows["p"].to_numpy())
    direction = np.where(out["alternative"] == "greater", out["value"] > out["baseline"],
                         out["value"] < out["baseline"])
    significant = out["p_holm"] < alpha
    out["verdict"] = np.where(out["p"].isna(), "NOT_APPLICABLE", np.where(significant & direction, passed, failed))
    if "p_null" in out:
        # A second test where a row has one (``p_null``: the values above their null, e.g. the
        # image-shuffled SSIM of consistency): Holm in the same families; a pass needs both.
        out["p_null_holm"] = np.nan
        for _, rows in out.groupby(family, sort=False):
            out.loc[rows.index, "p_null_holm"] = holm(rows["p_null"].to_numpy(dtype=np.float64))
        beats_null = (out["p_null_holm"] < alpha) & (out["value"] > out["null"])
        out["verdict"] = np.where(out["p_null"].notna() & (out["verdict"] == passed) & ~beats_null, failed,
                                  out["verdict"])
    return out
