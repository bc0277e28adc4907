"""The scorecard and the study's tables from every dataset's per-image scores (rule ``aggregate``;
the work: `salaudit.evaluation.scorecard`).

    python scripts/aggregate.py --results results --classifier-table results/tables/classifiers.csv \\
        --scorecard results/scorecard.csv --scorecard-md results/tables/scorecard.md --tables results/tables \\
        --settings '{"seed": 0, "datasets": {...}, "saliency": {"methods": [...]}, "evaluation": {...}}'

``--settings``: the config's ``datasets`` and ``saliency.methods`` (table order), ``evaluation``
(alpha, the SSIM threshold, the bootstrap) and ``seed``. Reads
``{results}/{dataset}/scores/{utility,randomization,random_pairs,consistency}.csv``,
``{results}/{dataset}/data/rejected.csv`` and the classifier table; writes the scorecard (csv +
markdown) and, under ``--tables``: each table below also as ``.html`` (a page of the report), the
report's landing overview ``overview.html``, ``summary.csv`` (the verdicts, method x criterion), ``controls.csv``
(each control's verdicts against the ones it must get), ``utility.csv``, ``randomization.csv``,
``consistency.csv``, ``classifier_auroc.csv``, ``degenerate.csv`` (columns in the README). A control
whose verdict differs from the one it must get is reported on stderr (``WARNING: control ...``).
"""

import argparse
import sys
from pathlib import Path

from salaudit import config, layout
from salaudit.evaluation import report_html
from salaudit.evaluation import scorecard as sc

HTML_TABLES = {"summary": "Summary: every verdict", "controls": "Controls: the verdicts they must get",
               "utility": "Localization utility", "randomization": "Randomization curves",
               "consistency": "Repeatability and reproducibility", "classifier_auroc": "Classifier AUROC",
               "degenerate": "Degenerate maps and rejected inputs"}


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default=layout.RESULTS)
    parser.add_argument("--classifier-table", required=True, help=f"the classifier table ({layout.CLASSIFIERS_TABLE})")
    parser.add_argument("--scorecard", required=True, help="csv output")
    parser.add_argument("--scorecard-md", required=True, help="markdown output")
    parser.add_argument("--tables", required=True, help="folder of the result tables")
    config.settings_argument(parser)
    return parser


def main(args):
    settings = sc.Statistics.from_config(args.settings, list(args.settings.get("datasets", {})),
                                         args.settings["saliency"]["methods"])
    tables = sc.build_scorecard(settings, args.results, args.classifier_table)
    for path in (args.scorecard, args.scorecard_md):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(args.tables).mkdir(parents=True, exist_ok=True)
    tables["scorecard"].to_csv(args.scorecard, index=False)
    Path(args.scorecard_md).write_text(sc.markdown(tables["scorecard"], tables["classifier_auroc"], settings,
                                                   tables["summary"], tables["controls"]))
    for name in ("summary", "controls", "utility", "randomization", "consistency", "degenerate", "classifier_auroc"):
        tables[name].to_csv(Path(args.tables) / layout.file_name(layout.TABLE, name=name), index=False)
    # the same as pages of the report, and its landing page's overview
    for name in ("scorecard", *HTML_TABLES):
        Path(args.tables, layout.file_name(layout.TABLE_HTML, name=name)).write_text(
            report_html.table_html(tables[name], HTML_TABLES.get(name, "Scorecard: every test")))
    Path(args.tables, layout.file_name(layout.OVERVIEW)).write_text(report_html.overview_html(
        tables["summary"], tables["controls"], tables["utility"], tables["images"], settings))
    print(sc.verdict_summary(tables["scorecard"]))
    controls = tables["controls"]
    for _, r in controls[~controls["ok"]].iterrows():
        print(f"WARNING: control {r['method']} got {r['verdict']} on {r['dataset']} {r['criterion']}, must be "
              f"{r['must']}: that criterion cannot reject what it should (README, Controls)", file=sys.stderr)
    print(f"controls: {int(controls['ok'].sum())} of {len(controls)} verdicts as they must be")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
