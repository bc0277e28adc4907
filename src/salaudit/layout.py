"""Every path of the results tree, as one template each: the Snakemake rules (workflow/rules),
the scripts and the library build their paths from these and from nowhere else.

Templates use Snakemake's wildcard syntax and start at ``results/`` (the workflow's working
directory). `path` fills one in, optionally under another root (a script's ``--results``).
The files' contracts (dtypes, shapes, columns) are in the README. Torch-free.
"""

from __future__ import annotations

from pathlib import Path

RESULTS = "results"

# datasets: generated demo downloads, converted arrays, splits, the evaluation images
DEMO_DATA = "results/demo_data/{dataset}"
DATA = "results/{dataset}/data"
IMAGES = DATA + "/images.npy"
MASKS = DATA + "/masks.npy"
MANIFEST = DATA + "/manifest.csv"
BOXES = DATA + "/boxes.csv"
REJECTED = DATA + "/rejected.csv"
EXCLUDED = DATA + "/excluded.csv"
SPLITS = "results/{dataset}/splits.csv"
EVAL_IMAGES = "results/{dataset}/eval_images.csv"
AVERAGE_MASK = "results/{dataset}/baselines/average_mask.npy"

# models: one folder per (dataset, model, fold)
CLASSIFIER = "results/{dataset}/models/{arch}/fold{fold}"
CLASSIFIER_MODEL = CLASSIFIER + "/model.pt"
CLASSIFIER_METRICS = CLASSIFIER + "/metrics.json"
PREDICTIONS = CLASSIFIER + "/predictions.csv"
# the data randomization test: a replicate retrained on permuted labels (same seeds and epochs)
LABEL_CLASSIFIER = "results/{dataset}/label_randomization/{arch}/fold{fold}"
LABEL_CLASSIFIER_MODEL = LABEL_CLASSIFIER + "/model.pt"
LABEL_CLASSIFIER_METRICS = LABEL_CLASSIFIER + "/metrics.json"
LABEL_PREDICTIONS = LABEL_CLASSIFIER + "/predictions.csv"
LOCALIZER = "results/{dataset}/localizers/{localizer}/fold{fold}"
LOCALIZER_MODEL = LOCALIZER + "/model.pt"
LOCALIZER_MAPS = LOCALIZER + "/maps.npy"
LOCALIZER_METRICS = LOCALIZER + "/metrics.json"
TRAIN_STATE = "train_state.pt"  # in a model's folder while it trains (resumable), removed after
# a finished job's outputs, hard-linked, in the common folder of what it writes (salaudit.jobcache)
JOB_CACHE = ".salaudit-cache"
JOB_CACHE_MANIFEST = "manifest.json"  # in each job's folder under JOB_CACHE

# saliency: one folder per trained classifier; a map file per method and stem
XRAI_SEGMENTS = "results/{dataset}/maps/xrai_segments.npz"
MAPS_FOLDER = "results/{dataset}/maps/{arch}/fold{fold}"
MAP_FILE = "{method}/{stem}{suffix}.npy"  # in a maps folder; suffix "" (maps) or ".flags"
TRAINED_STEM = "trained"
LABEL_RANDOMIZED_STEM = "label_randomized"  # the maps of the replicate retrained on permuted labels
RANDOMIZED_STEM = "{mode}/{label}"  # the maps at one step (label) of one randomization mode
TRAINED_MAP = MAPS_FOLDER + "/" + MAP_FILE
RANDOMIZED_MAP = MAPS_FOLDER + "/{method}/{stem}/{label}{suffix}.npy"  # stem: the mode
FLAGS_SUFFIX = ".flags"

# evaluation: per-image scores per dataset, then the study's tables, scorecard and figures
SCORE_NAMES = ("utility", "randomization", "random_pairs", "consistency")
SCORES = "results/{dataset}/scores"
SCORE = SCORES + "/{name}.csv"
TABLES = "results/tables"
TABLE = TABLES + "/{name}.csv"
CLASSIFIERS_TABLE = TABLES + "/classifiers.csv"
TABLE_HTML = TABLES + "/{name}.html"  # each table as a page of the report
OVERVIEW = TABLES + "/overview.html"  # the report's landing page: images, headline, every verdict
SUMMARY_TABLE = TABLES + "/summary.csv"  # verdicts: (dataset, method) x criterion
CONTROLS_TABLE = TABLES + "/controls.csv"  # each control's verdicts against the ones it must get
LOCALIZERS_TABLE = TABLES + "/localizers.csv"
SCORECARD = "results/scorecard.csv"
SCORECARD_MD = TABLES + "/scorecard.md"
FIGURES = "results/figures"
FIGURE = FIGURES + "/{name}.png"
REPORT = "results/report.html"


def path(template: str, root: str | Path = RESULTS, **wildcards) -> Path:
    """``template`` with its wildcards filled in, under ``root`` instead of ``results/``.

    >>> path(MASKS, "/tmp/run/results", dataset="siim").as_posix()
    '/tmp/run/results/siim/data/masks.npy'
    """
    text = template.format(**{"suffix": "", **wildcards})
    rel = Path(text).relative_to(RESULTS) if text.startswith(RESULTS + "/") else Path(text)
    return Path(root) / rel


def file_name(template: str, **wildcards) -> str:
    """The file name of ``template`` (its last component, wildcards filled in), for a script that
    writes into a folder it was given: ``file_name(IMAGES) == "images.npy"``.

    >>> file_name(FIGURE, name="roc")
    'roc.png'
    """
    return template.rsplit("/", 1)[-1].format(**wildcards)


def map_file(folder: str | Path, method: str, stem: str, suffix: str = "") -> Path:
    """A map file in a maps folder (`MAPS_FOLDER`): ``{folder}/{method}/{stem}{suffix}.npy``."""
    return Path(folder) / MAP_FILE.format(method=method, stem=stem, suffix=suffix)


def randomized_stem(mode: str, label: str) -> str:
    return RANDOMIZED_STEM.format(mode=mode, label=label)
