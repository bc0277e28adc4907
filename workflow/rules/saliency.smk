# Saliency stages: XRAI segments per dataset; the trained classifiers' maps, one job per dataset
# and architecture (every fold, every method: one start-up for several models); the maps along
# each randomized classifier, one job per fold and mode (every step, every method).


rule xrai_segments:
    input:
        images=rules.convert.output.images,
        manifest=rules.convert.output.manifest,
        eval_images=rules.eval_images.output[0],
    output:
        layout.XRAI_SEGMENTS,
    log:
        "logs/{dataset}/maps/xrai_segments.log",
    benchmark:
        "benchmarks/{dataset}/maps/xrai_segments.tsv"
    # Priorities order the jobs that are ready at once (longest chains first): the XRAI segments
    # unlock every saliency job, the randomization jobs are the longest ones that wait for a
    # single classifier, the localizers the longest training jobs. On 2 cores the demo's tail
    # (one long job running alone) shrinks by about half a minute.
    priority: 50
    retries: 1  # a job killed for memory is retried with twice the memory (workflow profile)
    conda:
        "../../envs/torch.yaml"
    threads: config["convert_threads"]
    params:
        code=code_version("xrai_segments.py"),
        data=subpath(input.images, parent=True),
    shell:
        "{PYTHON} {SCRIPTS}/xrai_segments.py --data {params.data:q} --eval-images {input.eval_images:q}"
        " --out {output:q} --workers {threads} > {log:q} 2>&1"


rule saliency:
    input:
        unpack(saliency_inputs()),
    output:
        maps=saliency_outputs(layout.TRAINED_STEM),
        flags=saliency_outputs(layout.TRAINED_STEM, layout.FLAGS_SUFFIX),
    log:
        "logs/{dataset}/maps/{arch}/saliency.log",
    benchmark:
        "benchmarks/{dataset}/maps/{arch}/saliency.tsv"
    retries: 1  # a job killed for memory is retried with twice the memory (workflow profile)
    conda:
        "../../envs/torch.yaml"
    threads: config["torch_threads"]
    resources:
        gpu=gpu_request,
    params:
        code=code_version("saliency_maps.py"),
        out=trained_maps_folders,
        extra=get_extra_map_inputs,
        settings=settings("seed", "device", "saliency"),
    shell:
        "{PYTHON} {SCRIPTS}/saliency_maps.py --dataset {wildcards.dataset} --model {input.models:q}"
        " --images {input.images:q} --manifest {input.manifest:q}"
        " --eval-images {input.eval_images:q} {params.extra} --out {params.out:q}"
        " --threads {threads} --settings {params.settings} > {log:q} 2>&1"


rule label_randomized_saliency:
    """Every method's maps of the replicate {arch} x {fold} retrained on permuted labels
    (evaluation.label_randomization), beside the trained model's: {method}/label_randomized.npy."""
    input:
        unpack(saliency_inputs(model=layout.LABEL_CLASSIFIER_MODEL)),
    output:
        maps=saliency_outputs(layout.LABEL_RANDOMIZED_STEM, single=True),
        flags=saliency_outputs(layout.LABEL_RANDOMIZED_STEM, layout.FLAGS_SUFFIX, single=True),
    log:
        "logs/{dataset}/maps/{arch}/fold{fold}/label_randomized.log",
    benchmark:
        "benchmarks/{dataset}/maps/{arch}/fold{fold}/label_randomized.tsv"
    retries: 1  # a job killed for memory is retried with twice the memory (workflow profile)
    conda:
        "../../envs/torch.yaml"
    threads: config["torch_threads"]
    resources:
        gpu=gpu_request,
    params:
        code=code_version("saliency_maps.py"),
        out=MAPS_FOLDER,
        stem=layout.LABEL_RANDOMIZED_STEM,
        extra=get_extra_map_inputs,
        settings=settings("seed", "device", "saliency"),
    shell:
        "{PYTHON} {SCRIPTS}/saliency_maps.py --dataset {wildcards.dataset} --model {input.models:q}"
        " --images {input.images:q} --manifest {input.manifest:q} --eval-images {input.eval_images:q}"
        " {params.extra} --out {params.out:q} --stem {params.stem}"
        " --threads {threads} --settings {params.settings} > {log:q} 2>&1"


# The randomization job of one model writes a file per (method, step); the steps differ by
# architecture, so there is one rule per randomized architecture (every output declared).
for _arch in RANDOMIZED_ARCHS:

    rule:
        name:
            f"randomized_saliency_{_arch}"
        input:
            unpack(saliency_inputs(_arch)),
        output:
            maps=saliency_outputs("{mode}", arch=_arch),
            flags=saliency_outputs("{mode}", layout.FLAGS_SUFFIX, arch=_arch),
        log:
            f"logs/{{dataset}}/maps/{_arch}/fold{{fold}}/randomized_{{mode}}.log",
        benchmark:
            f"benchmarks/{{dataset}}/maps/{_arch}/fold{{fold}}/randomized_{{mode}}.tsv"
        priority: 40
        retries: 1  # a job killed for memory is retried with twice the memory (workflow profile)
        conda:
            "../../envs/torch.yaml"
        threads: config["torch_threads"]
        resources:
            gpu=gpu_request,
        params:
            code=code_version("saliency_maps.py"),
            out=MAPS_FOLDER.replace("{arch}", _arch),
            extra=get_extra_map_inputs,
            settings=settings("seed", "device", "saliency"),
        shell:
            "{PYTHON} {SCRIPTS}/saliency_maps.py --dataset {wildcards.dataset} --model {input.models:q}"
            " --images {input.images:q} --manifest {input.manifest:q}"
            " --eval-images {input.eval_images:q} {params.extra} --out {params.out:q} --randomize {wildcards.mode}"
            " --threads {threads} --settings {params.settings} > {log:q} 2>&1"
