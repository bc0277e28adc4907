# Evaluation stages: per-image scores (score), statistics + scorecard + tables (aggregate), figures.
# Included after saliency.smk; its input functions live in evaluate_functions.smk.


include: "evaluate_functions.smk"


rule score:
    input:
        masks=rules.convert.output.masks,
        eval_images=rules.eval_images.output[0],
        average_mask=rules.average_mask.output[0],
        localizer=eval_localizer_maps,
        trained=eval_trained_maps,
        randomized=eval_randomized_maps,
        label_randomized=eval_label_randomized_maps,
    output:
        **{name: layout.SCORE.replace("{name}", name) for name in layout.SCORE_NAMES},
    log:
        "logs/{dataset}/scores/score.log",
    benchmark:
        "benchmarks/{dataset}/scores/score.tsv"
    retries: 1  # a job killed for memory is retried with twice the memory (workflow profile)
    conda:
        "../../envs/report.yaml"
    params:
        code=code_version("score.py"),
        out=subpath(output.utility, parent=True),
        settings=settings("seed", "folds", "classifiers", "saliency", "evaluation", "datasets"),
    shell:
        "{PYTHON} {SCRIPTS}/score.py --results results --dataset {wildcards.dataset}"
        " --out {params.out:q} --settings {params.settings} > {log:q} 2>&1"


rule aggregate:
    input:
        scores=eval_all_scores,
        rejected=expand(rules.convert.output.rejected, dataset=DATASETS),
        excluded=expand(rules.convert.output.excluded, dataset=DATASETS),
        manifests=expand(rules.convert.output.manifest, dataset=DATASETS),
        splits=expand(rules.split.output[0], dataset=DATASETS),
        eval_images=expand(rules.eval_images.output[0], dataset=DATASETS),
        classifiers=rules.summarize_models.output.classifiers,
    output:
        # The report shows HTML inline (a CSV would only be a download): each table as a page,
        # the overview on the landing page (workflow/report/workflow.rst).
        scorecard=layout.SCORECARD,
        scorecard_md=layout.SCORECARD_MD,
        overview=layout.OVERVIEW,
        tables=[layout.TABLE.format(name=name) for name in EVAL_TABLES],
        scorecard_html=report(
            layout.TABLE_HTML.format(name="scorecard"),
            caption="../report/scorecard_csv.rst",
            category="1. Scorecard",
            labels={"table": "every test (scorecard.csv)"},
        ),
        summary=report(
            layout.TABLE_HTML.format(name="summary"),
            caption="../report/summary_table.rst",
            category="1. Scorecard",
            labels={"table": "summary: every verdict"},
        ),
        controls=report(
            layout.TABLE_HTML.format(name="controls"),
            caption="../report/controls_table.rst",
            category="1. Scorecard",
            labels={"table": "controls: the verdicts they must get"},
        ),
        utility=report(
            layout.TABLE_HTML.format(name="utility"),
            caption="../report/utility_table.rst",
            category="2. Tables",
            labels={"table": "utility"},
        ),
        randomization=report(
            layout.TABLE_HTML.format(name="randomization"),
            caption="../report/randomization_table.rst",
            category="2. Tables",
            labels={"table": "randomization curves"},
        ),
        consistency=report(
            layout.TABLE_HTML.format(name="consistency"),
            caption="../report/consistency_table.rst",
            category="2. Tables",
            labels={"table": "repeatability and reproducibility"},
        ),
        classifier_auroc=report(
            layout.TABLE_HTML.format(name="classifier_auroc"),
            caption="../report/classifier_table.rst",
            category="2. Tables",
            labels={"table": "classifier AUROC"},
        ),
        degenerate=report(
            layout.TABLE_HTML.format(name="degenerate"),
            caption="../report/degenerate_table.rst",
            category="2. Tables",
            labels={"table": "degenerate maps and rejected inputs"},
        ),
    log:
        "logs/tables/aggregate.log",
    benchmark:
        "benchmarks/tables/aggregate.tsv"
    conda:
        "../../envs/report.yaml"
    params:
        code=code_version("aggregate.py"),
        tables=subpath(output.overview, parent=True),
        settings=settings("seed", "n_eval", "datasets", "saliency", "evaluation"),
    shell:
        "{PYTHON} {SCRIPTS}/aggregate.py --results results --classifier-table {input.classifiers:q} --scorecard {output.scorecard:q}"
        " --scorecard-md {output.scorecard_md:q} --tables {params.tables:q} --settings {params.settings} > {log:q} 2>&1"


rule figures:
    input:
        scores=eval_all_scores,
        randomization=layout.TABLE.format(name="randomization"),
        images=expand(rules.convert.output.images, dataset=DATASETS),
        masks=expand(rules.convert.output.masks, dataset=DATASETS),
        eval_images=expand(rules.eval_images.output[0], dataset=DATASETS),
        average_masks=expand(rules.average_mask.output[0], dataset=DATASETS),
        localizers=get_all_localizer_maps,
        maps=eval_all_maps,
        predictions=eval_all_predictions,
    output:
        utility=report(
            layout.FIGURE.format(name="utility"),
            caption="../report/utility_figure.rst",
            category="3. Figures",
            labels={"figure": "utility box plots"},
        ),
        cascade=report(
            layout.FIGURE.format(name="cascade"),
            caption="../report/cascade_figure.rst",
            category="3. Figures",
            labels={"figure": "cascade curves"},
        ),
        consistency=report(
            layout.FIGURE.format(name="consistency"),
            caption="../report/consistency_figure.rst",
            category="3. Figures",
            labels={"figure": "repeatability and reproducibility"},
        ),
        consistency_null=report(
            layout.FIGURE.format(name="consistency_null"),
            caption="../report/consistency_null_figure.rst",
            category="3. Figures",
            labels={"figure": "repeatability and reproducibility against their null"},
        ),
        roc=report(
            layout.FIGURE.format(name="roc"),
            caption="../report/roc_figure.rst",
            category="3. Figures",
            labels={"figure": "classifier ROC curves"},
        ),
        examples=[
            report(
                path,
                caption="../report/examples_figure.rst",
                category="3. Figures",
                labels={"figure": f"example panel, {name}"},
            )
            for name, path in zip(
                DATASETS, expand(layout.FIGURE.replace("{name}", "examples_{dataset}"), dataset=DATASETS)
            )
        ],
        strips=[
            report(
                path,
                caption="../report/cascade_strip_figure.rst",
                category="3. Figures",
                labels={"figure": f"cascade strip, {name}"},
            )
            for name, path in zip(
                DATASETS, expand(layout.FIGURE.replace("{name}", "cascade_strip_{dataset}"), dataset=DATASETS)
            )
        ],
    log:
        "logs/figures/figures.log",
    benchmark:
        "benchmarks/figures/figures.tsv"
    conda:
        "../../envs/report.yaml"
    params:
        code=code_version("figures.py"),
        tables=subpath(input.randomization, parent=True),
        out=subpath(output.utility, parent=True),
        settings=settings("folds", "classifiers", "saliency", "evaluation", "datasets"),
    shell:
        "{PYTHON} {SCRIPTS}/figures.py --results results --tables {params.tables:q} --out {params.out:q}"
        " --settings {params.settings} > {log:q} 2>&1"
