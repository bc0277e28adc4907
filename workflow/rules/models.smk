# Model stages: evaluation image list, classifiers per fold, localizers per fold, average mask.


rule eval_images:
    input:
        manifest=rules.convert.output.manifest,
        splits=rules.split.output[0],
    output:
        layout.EVAL_IMAGES,
    log:
        "logs/{dataset}/eval_images.log",
    conda:
        "../../envs/data.yaml"
    params:
        code=code_version("select_eval_images.py"),
        settings=settings("n_eval", "seed"),
    shell:
        "{PYTHON} {SCRIPTS}/select_eval_images.py --manifest {input.manifest:q} --splits {input.splits:q}"
        " --out {output:q} --settings {params.settings} > {log:q} 2>&1"


rule average_mask:
    input:
        masks=rules.convert.output.masks,
        manifest=rules.convert.output.manifest,
        splits=rules.split.output[0],
    output:
        layout.AVERAGE_MASK,
    log:
        "logs/{dataset}/baselines/average_mask.log",
    conda:
        "../../envs/data.yaml"
    params:
        code=code_version("average_mask.py"),
        data=subpath(input.masks, parent=True),
    shell:
        "{PYTHON} {SCRIPTS}/average_mask.py --data {params.data:q} --splits {input.splits:q} --out {output:q} > {log:q} 2>&1"


rule train_classifier:
    input:
        images=rules.convert.output.images,
        masks=rules.convert.output.masks,
        manifest=rules.convert.output.manifest,
        splits=rules.split.output[0],
        pretrained=get_pretrained,
    output:
        model=layout.CLASSIFIER_MODEL,
        metrics=layout.CLASSIFIER_METRICS,
        predictions=layout.PREDICTIONS,
    log:
        "logs/{dataset}/models/{arch}/fold{fold}/train.log",
    benchmark:
        "benchmarks/{dataset}/models/{arch}/fold{fold}/train.tsv"
    wildcard_constraints:
        arch="|".join(a for a in registry.ARCH_SPECS if a not in IMPORTED),
    retries: 1  # a job killed for memory is retried with twice the memory (workflow profile)
    conda:
        "../../envs/torch.yaml"
    threads: config["torch_threads"]
    resources:
        gpu=gpu_request,
    params:
        code=code_version("train_classifier.py"),
        data=subpath(input.images, parent=True),
        out=subpath(output.model, parent=True),
        settings=training_settings(),
    shell:
        "{PYTHON} {SCRIPTS}/train_classifier.py --data {params.data:q} --splits {input.splits:q}"
        " --arch {wildcards.arch} --fold {wildcards.fold} --out {params.out:q}"
        " --threads {threads} --settings {params.settings} > {log:q} 2>&1"


rule import_classifier:
    """A replicate brought as weights (classifiers.weights.{arch}[{fold}]): checked, evaluated on
    the study's splits and written as a trained fold is; never trained."""
    input:
        weights=get_weights_file,
        images=rules.convert.output.images,
        masks=rules.convert.output.masks,
        manifest=rules.convert.output.manifest,
        splits=rules.split.output[0],
    output:
        model=layout.CLASSIFIER_MODEL,
        metrics=layout.CLASSIFIER_METRICS,
        predictions=layout.PREDICTIONS,
    log:
        "logs/{dataset}/models/{arch}/fold{fold}/import.log",
    wildcard_constraints:
        arch="|".join(IMPORTED) or NO_ARCH,
    conda:
        "../../envs/torch.yaml"
    threads: config["torch_threads"]
    resources:
        gpu=gpu_request,
    params:
        code=code_version("import_classifier.py"),
        data=subpath(input.images, parent=True),
        out=subpath(output.model, parent=True),
        settings=import_settings,
    shell:
        "{PYTHON} {SCRIPTS}/import_classifier.py --file {input.weights:q} --data {params.data:q}"
        " --splits {input.splits:q} --arch {wildcards.arch} --fold {wildcards.fold} --out {params.out:q}"
        " --threads {threads} --settings {params.settings} > {log:q} 2>&1"


rule train_label_randomized:
    """The data randomization test (evaluation.label_randomization): the replicate {arch} x {fold}
    retrained on permuted training labels, same seeds, epochs and selection."""
    input:
        images=rules.convert.output.images,
        masks=rules.convert.output.masks,
        manifest=rules.convert.output.manifest,
        splits=rules.split.output[0],
        pretrained=get_pretrained,
    output:
        model=layout.LABEL_CLASSIFIER_MODEL,
        metrics=layout.LABEL_CLASSIFIER_METRICS,
        predictions=layout.LABEL_PREDICTIONS,
    log:
        "logs/{dataset}/label_randomization/{arch}/fold{fold}/train.log",
    benchmark:
        "benchmarks/{dataset}/label_randomization/{arch}/fold{fold}/train.tsv"
    retries: 1  # a job killed for memory is retried with twice the memory (workflow profile)
    conda:
        "../../envs/torch.yaml"
    threads: config["torch_threads"]
    resources:
        gpu=gpu_request,
    params:
        code=code_version("train_classifier.py"),
        data=subpath(input.images, parent=True),
        out=subpath(output.model, parent=True),
        settings=training_settings(),
    shell:
        "{PYTHON} {SCRIPTS}/train_classifier.py --data {params.data:q} --splits {input.splits:q}"
        " --arch {wildcards.arch} --fold {wildcards.fold} --out {params.out:q} --permute-labels"
        " --threads {threads} --settings {params.settings} > {log:q} 2>&1"


rule train_localizer:
    input:
        images=rules.convert.output.images,
        masks=rules.convert.output.masks,
        manifest=rules.convert.output.manifest,
        boxes=rules.convert.output.boxes,
        splits=rules.split.output[0],
        eval_images=rules.eval_images.output[0],
    output:
        model=layout.LOCALIZER_MODEL,
        maps=layout.LOCALIZER_MAPS,
        metrics=layout.LOCALIZER_METRICS,
    log:
        "logs/{dataset}/localizers/{localizer}/fold{fold}/train.log",
    benchmark:
        "benchmarks/{dataset}/localizers/{localizer}/fold{fold}/train.tsv"
    priority: 30  # the longest training jobs start first (see xrai_segments)
    retries: 1  # a job killed for memory is retried with twice the memory (workflow profile)
    conda:
        "../../envs/torch.yaml"
    threads: config["torch_threads"]
    resources:
        gpu=gpu_request,
    params:
        code=code_version("train_localizer.py"),
        data=subpath(input.images, parent=True),
        out=subpath(output.model, parent=True),
        settings=settings("seed", "device", "localizers"),
    shell:
        "{PYTHON} {SCRIPTS}/train_localizer.py --data {params.data:q} --splits {input.splits:q}"
        " --eval-images {input.eval_images:q} --localizer {wildcards.localizer}"
        " --fold {wildcards.fold} --out {params.out:q} --threads {threads} --settings {params.settings} > {log:q} 2>&1"


rule summarize_models:
    input:
        classifiers=get_all_classifier_metrics,
        localizers=get_all_localizer_maps,
        baselines=expand(rules.average_mask.output[0], dataset=DATASETS),
        eval_images=expand(rules.eval_images.output[0], dataset=DATASETS),
        masks=expand(rules.convert.output.masks, dataset=DATASETS),
    output:
        classifiers=layout.CLASSIFIERS_TABLE,
        localizers=layout.LOCALIZERS_TABLE,
    log:
        "logs/tables/summarize_models.log",
    conda:
        "../../envs/report.yaml"
    params:
        code=code_version("summarize_models.py"),
    shell:
        "{PYTHON} {SCRIPTS}/summarize_models.py --results results --classifier-metrics {input.classifiers:q}"
        " --localizer-maps {input.localizers:q}"
        " --out-classifiers {output.classifiers:q} --out-localizers {output.localizers:q} > {log:q} 2>&1"
