# Input functions and settings of the evaluation rules (evaluate.smk includes this file; snakemake
# --lint wants functions and rules in separate files). Names are prefixed eval_ to avoid clashes.

EVAL = config["evaluation"]
EVAL_SCORE_FILES = ["utility", "randomization", "random_pairs", "consistency"]
EVAL_TABLES = ["utility", "randomization", "consistency", "classifier_auroc", "degenerate"]


def eval_methods():
    return list(METHOD_IDS)


def eval_randomization():
    """saliency.randomization resolved (common.smk): archs (classifier archs only), folds, modes."""
    return {"archs": RANDOMIZED_ARCHS, "folds": RANDOMIZED_FOLDS, "modes": RANDOMIZATION_MODES}


def eval_steps(arch):
    return step_labels(arch)


def eval_trained_maps(wildcards):
    return expand(TRAINED_MAP, dataset=wildcards.dataset, arch=ARCHS, fold=FOLDS, method=eval_methods(),
                  stem="trained", suffix=["", ".flags"])


def eval_randomized_maps(wildcards):
    r = eval_randomization()
    return [path for arch in r["archs"] for path in expand(
        RANDOMIZED_MAP, dataset=wildcards.dataset, arch=arch, fold=r["folds"], method=eval_methods(),
        stem=r["modes"], label=eval_steps(arch), suffix=["", ".flags"])]


def eval_localizer_maps(wildcards):
    return expand(rules.train_localizer.output.maps, dataset=wildcards.dataset,
                  localizer=localizer_of(wildcards.dataset), fold=FOLDS)


def eval_score_options(wildcards):
    """Flags of score.py: models, randomized steps (ARCH=STEP,...), SSIM settings, seed."""
    r = eval_randomization()
    steps = " ".join(f"{arch}={','.join(eval_steps(arch))}" for arch in r["archs"])
    return " ".join([
        f"--methods {' '.join(eval_methods())} --archs {' '.join(ARCHS)} --folds {' '.join(map(str, FOLDS))}",
        f"--localizer {localizer_of(wildcards.dataset)}",
        f"--steps {steps}" if steps else "",
        f"--random-folds {' '.join(map(str, r['folds']))}" if r["archs"] else "",
        f"--modes {' '.join(r['modes'])}",
        f"--ssim-window {EVAL['ssim_window']} --ssim-data-range {EVAL['ssim_data_range']}",
        f"--random-pairs {EVAL['random_pairs']} --seed {config['seed']}",
    ])


def eval_statistics_options():
    return (f"--alpha {EVAL['alpha']} --ssim-threshold {EVAL['ssim_threshold']}"
            f" --n-bootstrap {EVAL['n_bootstrap']} --confidence {EVAL['confidence']} --seed {config['seed']}")


def eval_figure_options():
    r = eval_randomization()
    example_arch = r["archs"][0] if r["archs"] else ARCHS[0]
    return (f"--methods {' '.join(eval_methods())} --archs {' '.join(ARCHS)} --folds {' '.join(map(str, FOLDS))}"
            f" --example-arch {example_arch} --example-fold {r['folds'][0] if r['archs'] else FOLDS[0]}"
            f" --example-image {EVAL['example_image']} --ssim-threshold {EVAL['ssim_threshold']}")


def eval_all_scores(wildcards=None):
    return expand("results/{dataset}/scores/{name}.csv", dataset=DATASETS, name=EVAL_SCORE_FILES)


def eval_all_predictions(wildcards=None):
    return expand(rules.train_classifier.output.predictions, dataset=DATASETS, arch=ARCHS, fold=FOLDS)


def eval_final_outputs():
    """Everything the evaluation produces: add to rule all."""
    return ([rules.aggregate.output.scorecard, rules.aggregate.output.scorecard_md]
            + [getattr(rules.aggregate.output, name) for name in EVAL_TABLES]
            + [str(f) for f in rules.figures.output])
