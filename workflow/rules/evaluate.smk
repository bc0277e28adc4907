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
    output:
        utility="results/{dataset}/scores/utility.csv",
        randomization="results/{dataset}/scores/randomization.csv",
        random_pairs="results/{dataset}/scores/random_pairs.csv",
        consistency="results/{dataset}/scores/consistency.csv",
    params:
        script=script_path("score.py"),
        out=subpath(output.utility, parent=True),
        options=eval_score_options,
    log:
        "logs/{dataset}/scores/score.log",
    benchmark:
        "benchmarks/{dataset}/scores/score.tsv"
    conda:
        "../../envs/report.yaml"
    shell:
        "python {params.script} --results results --dataset {wildcards.dataset} {params.options}"
        " --out {params.out} > {log} 2>&1"


rule aggregate:
    input:
        scores=eval_all_scores,
        rejected=expand(rules.convert.output.rejected, dataset=DATASETS),
        classifiers=rules.summarize_models.output.classifiers,
    output:
        scorecard=report("results/scorecard.csv", caption="../report/scorecard_csv.rst", category="1. Scorecard",
                         labels={"table": "scorecard (all tests, csv)"}),
        scorecard_md=report("results/tables/scorecard.md", caption="../report/scorecard.rst", category="1. Scorecard",
                            labels={"table": "scorecard (summary)"}),
        utility=report("results/tables/utility.csv", caption="../report/utility_table.rst", category="2. Tables",
                       labels={"table": "utility"}),
        randomization=report("results/tables/randomization.csv", caption="../report/randomization_table.rst",
                             category="2. Tables", labels={"table": "randomization curve"}),
        consistency=report("results/tables/consistency.csv", caption="../report/consistency_table.rst",
                           category="2. Tables", labels={"table": "repeatability and reproducibility"}),
        classifier_auroc=report("results/tables/classifier_auroc.csv", caption="../report/classifier_table.rst",
                                category="2. Tables", labels={"table": "classifier AUROC"}),
        degenerate=report("results/tables/degenerate.csv", caption="../report/degenerate_table.rst",
                          category="2. Tables", labels={"table": "degenerate maps and rejected inputs"}),
    params:
        script=script_path("aggregate.py"),
        datasets=list(DATASETS),
        methods=eval_methods(),
        tables=subpath(output.utility, parent=True),
        options=eval_statistics_options(),
    log:
        "logs/tables/aggregate.log",
    benchmark:
        "benchmarks/tables/aggregate.tsv"
    conda:
        "../../envs/report.yaml"
    shell:
        "python {params.script} --results results --datasets {params.datasets} --methods {params.methods}"
        " {params.options} --classifiers {input.classifiers} --scorecard {output.scorecard}"
        " --scorecard-md {output.scorecard_md} --tables {params.tables} > {log} 2>&1"


rule figures:
    input:
        scores=eval_all_scores,
        randomization=rules.aggregate.output.randomization,
        images=expand(rules.convert.output.images, dataset=DATASETS),
        predictions=eval_all_predictions,
    output:
        utility=report("results/figures/utility.png", caption="../report/utility_figure.rst", category="3. Figures",
                       labels={"figure": "utility box plots"}),
        cascade=report("results/figures/cascade.png", caption="../report/cascade_figure.rst", category="3. Figures",
                       labels={"figure": "cascade curves"}),
        consistency=report("results/figures/consistency.png", caption="../report/consistency_figure.rst",
                           category="3. Figures", labels={"figure": "repeatability and reproducibility"}),
        roc=report("results/figures/roc.png", caption="../report/roc_figure.rst", category="3. Figures",
                   labels={"figure": "classifier ROC curves"}),
        examples=[report(path, caption="../report/examples_figure.rst", category="3. Figures",
                         labels={"figure": f"example panel, {name}"})
                  for name, path in zip(DATASETS, expand("results/figures/examples_{dataset}.png", dataset=DATASETS))],
        strips=[report(path, caption="../report/cascade_strip_figure.rst", category="3. Figures",
                       labels={"figure": f"cascade strip, {name}"})
                for name, path in zip(DATASETS, expand("results/figures/cascade_strip_{dataset}.png",
                                                       dataset=DATASETS))],
    params:
        script=script_path("figures.py"),
        datasets=list(DATASETS),
        tables=subpath(input.randomization, parent=True),
        out=subpath(output.utility, parent=True),
        options=eval_figure_options(),
    log:
        "logs/figures/figures.log",
    benchmark:
        "benchmarks/figures/figures.tsv"
    conda:
        "../../envs/report.yaml"
    shell:
        "python {params.script} --results results --datasets {params.datasets} {params.options}"
        " --tables {params.tables} --out {params.out} > {log} 2>&1"
