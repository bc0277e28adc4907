"""The study's answer as HTML, for `snakemake --report` (which shows HTML inline and offers CSV
only as a download): every table as a page (`table_html`, PASS/FAIL coloured, controls marked)
and the landing page's overview (`overview_html`: what was run, the images, the headline, the
verdicts of every method on every criterion). No styles from outside: the report is one file.
"""

from __future__ import annotations

import html

import pandas as pd

from salaudit.registry import display, is_control

# Verdict colours (also the colours the report test looks for in its screenshot).
COLOURS = {"PASS": "#1b7837", "ABOVE": "#1b7837", "FAIL": "#b2182b", "NOT_ABOVE": "#b2182b",
           "NOT_APPLICABLE": "#8c8c8c"}
# Column headings of the overview: criterion id -> short label (the legend spells them out).
SHORT = {"utility": "U", "utility_ap": "AP", "pointing_game": "PG", "iou_otsu": "IoU", "randomization": "R",
         "randomization_spearman": "Rρ", "randomization_bottom_up": "R↑", "randomization_independent": "R1",
         "randomization_entropy": "H", "label_randomization": "L", "label_randomization_spearman": "Lρ",
         "repeatability": "Rep", "reproducibility": "Rpr"}
OVERVIEW_ID = "saliency-audit-scorecard"


def _cell(value) -> str:
    if isinstance(value, str) and value in COLOURS:
        return (f'<td style="background:{COLOURS[value]};color:white;text-align:center;padding:1px 4px">'
                f"{html.escape(value)}</td>")
    if isinstance(value, float):
        return "<td>–</td>" if pd.isna(value) else f'<td style="text-align:right">{value:.3g}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def table_html(frame: pd.DataFrame, title: str, note: str = "") -> str:
    """A whole table as a page: verdict cells coloured, the rows of a control in italics."""
    rows = []
    for _, row in frame.iterrows():
        control = "method" in frame and is_control(str(row["method"]))
        style = ' style="font-style:italic"' if control else ""
        rows.append(f"<tr{style}>" + "".join(_cell(v) for v in row.tolist()) + "</tr>")
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
            f'<body style="font-family:sans-serif;font-size:13px"><h2>{html.escape(title)}</h2>'
            f"<p>{html.escape(note)}</p>"
            f'<table style="border-collapse:collapse" border="1" cellpadding="2"><tr>{head}</tr>'
            + "".join(rows) + "</table></body></html>\n")


def overview_html(summary: pd.DataFrame, controls: pd.DataFrame, utility: pd.DataFrame, images: pd.DataFrame,
                  settings) -> str:
    """The landing page's answer: per dataset the images, the headline (localizer, average mask
    and best method's AUPRC) and every method's verdict on every criterion (P / F, coloured),
    the controls marked and checked. ``images``: one row per dataset (`image_counts`)."""
    criteria = [c for c in summary.columns if c not in ("dataset", "method", "control")]
    broken = controls[~controls["ok"].astype(bool)] if len(controls) else controls
    parts = [f'<div id="{OVERVIEW_ID}" style="font-size:12px">',
             "<p><b>Controls</b>: " + (f"all {len(controls)} verdicts as they must be."
                                       if broken.empty else
                                       f"{len(broken)} of {len(controls)} differ from what they must be - "
                                       "a bug in those criteria (tables/controls.csv).") + "</p>"]
    for dataset in settings.datasets:
        counts = images[images["dataset"] == dataset].iloc[0] if (images["dataset"] == dataset).any() else None
        mean = utility[utility["dataset"] == dataset].set_index(["source", "method"])["mean_auprc"]
        trained = {m: v for (s, m), v in mean.items() if s == "trained" and not is_control(m)}
        best = max(trained, key=trained.get) if trained else None
        localizer = next((v for (s, _), v in mean.items() if s == "localizer"), float("nan"))
        average = mean.get(("average_mask", "average_mask"), float("nan"))
        line = f"<p><b>{html.escape(dataset)}</b>"
        if counts is not None:
            line += (f": {counts['images']} images ({counts['rejected']} rejected, {counts['excluded']} excluded), "
                     f"{counts['test']} in the test set, {counts['evaluated']} evaluated")
            if counts["evaluated"] < counts["n_eval"]:
                line += f' (n_eval {counts["n_eval"]}: <b>only {counts["evaluated"]} positive test images</b>)'
        line += (f". Mean AUPRC: localizer {localizer:.2f}, average mask {average:.2f}"
                 + (f", best method {display(best)} {trained[best]:.2f}" if best else "") + ".</p>")
        parts.append(line)
        head = "".join(f'<th title="{c}">{SHORT.get(c, c)}</th>' for c in criteria)
        rows = []
        for _, row in summary[summary["dataset"] == dataset].iterrows():
            name = display(row["method"]) + (" *" if str(row["control"]) == "True" else "")
            cells = "".join(
                f'<td style="background:{COLOURS.get(row[c], "#ffffff")};color:white;text-align:center">'
                f'{ {"PASS": "P", "FAIL": "F", "NOT_APPLICABLE": "–"}.get(row[c], "")}</td>' for c in criteria)
            rows.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
        parts.append('<table style="border-collapse:collapse;font-size:10px" border="1" cellpadding="1">'
                     f"<tr><th>method</th>{head}</tr>" + "".join(rows) + "</table>")
    legend = "; ".join(f"{SHORT.get(c, c)}: {c}" for c in criteria)
    parts.append(f'<p style="font-size:10px">P: PASS, F: FAIL (Holm-corrected one-sided Wilcoxon, alpha '
                 f"{settings.alpha:g}); *: a control with known answers. {html.escape(legend)}.</p></div>")
    return "\n".join(parts) + "\n"


def image_counts(dataset: str, manifest: pd.DataFrame, splits: pd.DataFrame, eval_images: pd.DataFrame,
                 rejected: pd.DataFrame, excluded: pd.DataFrame, n_eval: int) -> dict:
    """One row of the overview's image counts."""
    return {"dataset": dataset, "images": len(manifest), "rejected": len(rejected), "excluded": len(excluded),
            "test": int((splits["split"] == "test").sum()), "evaluated": len(eval_images), "n_eval": int(n_eval)}
