# Model stages: evaluation image list, classifiers per fold, localizers per fold, average mask.


rule eval_images:
    input:
        manifest=rules.convert.output.manifest,
        splits=rules.split.output[0],
    output:
        "results/{dataset}/eval_images.csv",
    params:
        script=script_path("select_eval_images.py"),
        n_eval=config["n_eval"],
        seed=config["seed"],
    log:
        "logs/{dataset}/eval_images.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "python {params.script} --manifest {input.manifest} --splits {input.splits}"
        " --n-eval {params.n_eval} --seed {params.seed} --out {output} > {log} 2>&1"


rule average_mask:
    input:
        masks=rules.convert.output.masks,
        manifest=rules.convert.output.manifest,
        splits=rules.split.output[0],
    output:
        "results/{dataset}/baselines/average_mask.npy",
    params:
        script=script_path("average_mask.py"),
        data=subpath(input.masks, parent=True),
    log:
        "logs/{dataset}/baselines/average_mask.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "python {params.script} --data {params.data} --splits {input.splits} --out {output} > {log} 2>&1"


rule train_classifier:
    input:
        images=rules.convert.output.images,
        manifest=rules.convert.output.manifest,
        splits=rules.split.output[0],
    output:
        model="results/{dataset}/models/{arch}/fold{fold}/model.pt",
        metrics="results/{dataset}/models/{arch}/fold{fold}/metrics.json",
        predictions="results/{dataset}/models/{arch}/fold{fold}/predictions.csv",
    params:
        script=script_path("train_classifier.py"),
        data=subpath(input.images, parent=True),
        out=subpath(output.model, parent=True),
        options=get_classifier_options,
    threads: config["torch_threads"]
    resources:
        gpu=gpu_request,
    log:
        "logs/{dataset}/models/{arch}/fold{fold}/train.log",
    benchmark:
        "benchmarks/{dataset}/models/{arch}/fold{fold}/train.tsv"
    conda:
        "../../envs/torch.yaml"
    shell:
        "python {params.script} --data {params.data} --splits {input.splits}"
        " --arch {wildcards.arch} --fold {wildcards.fold} --out {params.out}"
        " {params.options} --threads {threads} > {log} 2>&1"


rule train_localizer:
    input:
        images=rules.convert.output.images,
        masks=rules.convert.output.masks,
        boxes=rules.convert.output.boxes,
        splits=rules.split.output[0],
        eval_images=rules.eval_images.output[0],
    output:
        model="results/{dataset}/localizers/{localizer}/fold{fold}/model.pt",
        maps="results/{dataset}/localizers/{localizer}/fold{fold}/maps.npy",
        metrics="results/{dataset}/localizers/{localizer}/fold{fold}/metrics.json",
    params:
        script=script_path("train_localizer.py"),
        data=subpath(input.images, parent=True),
        out=subpath(output.model, parent=True),
        options=get_localizer_options,
    threads: config["torch_threads"]
    priority: 30  # the longest training jobs start first (see xrai_segments)
    resources:
        gpu=gpu_request,
    log:
        "logs/{dataset}/localizers/{localizer}/fold{fold}/train.log",
    benchmark:
        "benchmarks/{dataset}/localizers/{localizer}/fold{fold}/train.tsv"
    conda:
        "../../envs/torch.yaml"
    shell:
        "python {params.script} --data {params.data} --splits {input.splits}"
        " --eval-images {input.eval_images} --localizer {wildcards.localizer}"
        " --fold {wildcards.fold} --out {params.out} {params.options} --threads {threads} > {log} 2>&1"


rule summarize_models:
    input:
        classifiers=get_all_classifier_metrics,
        localizers=get_all_localizer_maps,
        baselines=expand(rules.average_mask.output[0], dataset=DATASETS),
        eval_images=expand(rules.eval_images.output[0], dataset=DATASETS),
    output:
        classifiers="results/tables/classifiers.csv",
        localizers="results/tables/localizers.csv",
    params:
        script=script_path("summarize_models.py"),
    log:
        "logs/tables/summarize_models.log",
    conda:
        "../../envs/report.yaml"
    shell:
        "python {params.script} --results results --classifier-metrics {input.classifiers}"
        " --localizer-maps {input.localizers}"
        " --out-classifiers {output.classifiers} --out-localizers {output.localizers} > {log} 2>&1"
