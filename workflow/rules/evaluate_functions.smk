# Input functions and settings of the evaluation rules (evaluate.smk includes this file; snakemake
# --lint wants functions and rules in separate files). Names are prefixed eval_ to avoid clashes.

EVAL_SCORE_FILES = list(layout.SCORE_NAMES)
EVAL_TABLES = ["summary", "controls", "utility", "randomization", "consistency", "classifier_auroc", "degenerate"]


def eval_methods():
    return list(METHOD_IDS)


def eval_randomization():
    """saliency.randomization resolved (common.smk): archs (classifier archs only), folds, modes."""
    return {"archs": RANDOMIZED_ARCHS, "folds": RANDOMIZED_FOLDS, "modes": RANDOMIZATION_MODES}


def eval_steps(arch):
    return step_labels(arch)


def eval_trained_maps(wildcards):
    return expand(
        TRAINED_MAP,
        dataset=wildcards.dataset,
        arch=ARCHS,
        fold=FOLDS,
        method=eval_methods(),
        stem=layout.TRAINED_STEM,
        suffix=["", layout.FLAGS_SUFFIX],
    )


def eval_randomized_maps(wildcards):
    r = eval_randomization()
    return [
        path
        for arch in r["archs"]
        for path in expand(
            RANDOMIZED_MAP,
            dataset=wildcards.dataset,
            arch=arch,
            fold=r["folds"],
            method=eval_methods(),
            stem=r["modes"],
            label=eval_steps(arch),
            suffix=["", layout.FLAGS_SUFFIX],
        )
    ]


def eval_label_randomized_maps(wildcards):
    return label_randomized_maps(wildcards.dataset, suffixes=("", layout.FLAGS_SUFFIX))


def eval_localizer_maps(wildcards):
    return expand(
        rules.train_localizer.output.maps,
        dataset=wildcards.dataset,
        localizer=localizer_of(wildcards.dataset),
        fold=FOLDS,
    )


def eval_all_maps(wildcards=None):
    """Every trained and randomized map of every dataset (the figures show some of each)."""
    return get_all_maps()


def eval_all_scores(wildcards=None):
    return expand(layout.SCORE, dataset=DATASETS, name=EVAL_SCORE_FILES)


def eval_all_predictions(wildcards=None):
    return expand(rules.train_classifier.output.predictions, dataset=DATASETS, arch=ARCHS, fold=FOLDS)


def eval_final_outputs():
    """Everything the evaluation produces: add to rule all."""
    return [str(f) for f in rules.aggregate.output] + [str(f) for f in rules.figures.output]
