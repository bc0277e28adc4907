"""Figures of the evaluation (rule ``figures``; the work: `salaudit.evaluation.figures.write_figures`).

    python scripts/figures.py --results results --tables results/tables --out results/figures \\
        --settings '{"folds": 5, "classifiers": {...}, "saliency": {...}, "evaluation": {...}, "datasets": {...}}'

``--settings``: the config keys that say which models and methods there are (``folds``,
``classifiers.archs``, ``saliency.methods``, ``saliency.randomization``, ``datasets``) and
``evaluation`` (the example image, the SSIM pass mark). Writes to ``--out``: ``utility.png``,
``cascade.png``, ``consistency.png``, ``roc.png`` and per dataset ``examples_{dataset}.png`` and
``cascade_strip_{dataset}.png``. Reads the per-image scores, ``{tables}/randomization.csv``, the
images, masks, average mask, localizer and saliency maps of the example image, and the
classifiers' ``predictions.csv``.
"""

import argparse
import sys

from salaudit import config, layout
from salaudit.evaluation import figures


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default=layout.RESULTS)
    parser.add_argument("--tables", required=True, help="folder with randomization.csv (aggregate.py)")
    parser.add_argument("--out", required=True)
    config.settings_argument(parser)
    return parser


def main(args):
    try:
        figures.write_figures(figures.FigureSettings.from_config(args.settings), args.results, args.tables, args.out)
    except ValueError as err:  # a damaged map or array: one line naming it and the rule that remakes it
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
