"""Per-image scores of one dataset's maps (rule ``score``; the work: `salaudit.evaluation.scoring`).

    python scripts/score.py --results results --dataset siim --out results/siim/scores \\
        --settings '{"seed": 0, "folds": 5, "classifiers": {...}, "saliency": {...}, "evaluation": {...},
                     "datasets": {"siim": {"format": "siim", ...}}}'

``--settings``: the config keys that say which maps exist (``folds``, ``classifiers.archs``,
``saliency.methods`` and ``saliency.randomization``, ``datasets``), how to score them
(``evaluation``) and ``seed`` (the random-pair draw). Reads the maps, masks, evaluation list,
average mask and localizer maps of ``--dataset`` under ``--results`` (`salaudit.layout`) and
writes ``utility.csv``, ``randomization.csv``, ``random_pairs.csv`` and ``consistency.csv`` to
``--out`` (columns in the README).
"""

import argparse
import sys

from salaudit import config, layout
from salaudit.evaluation import scoring
from salaudit.study import study


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default=layout.RESULTS, help="root of the results tree")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--out", required=True, help="output folder (results/{dataset}/scores)")
    config.settings_argument(parser)
    return parser


def main(args):
    s = study(args.settings)
    if args.dataset not in s.datasets:
        print(f"ERROR: --dataset {args.dataset} is not in the settings' datasets ({', '.join(s.datasets)})",
              file=sys.stderr)
        return 1
    plan = scoring.ScorePlan(
        dataset=args.dataset, methods=s.methods, archs=s.archs, folds=s.folds, localizer=s.localizer(args.dataset),
        steps=s.randomized_steps(), random_folds=s.randomized_folds if s.randomized_archs else [], modes=s.modes,
        label_models=s.label_models())
    try:
        scoring.score_dataset(plan, args.settings["evaluation"], args.settings["seed"], args.results, args.out,
                              log=lambda line: print(line, flush=True))
    except (OSError, ValueError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
