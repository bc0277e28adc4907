# Saliency stages: XRAI segments per dataset; the trained classifiers' maps, one job per dataset
# and architecture (every fold, every method: one start-up for several models); the maps along
# each randomized classifier, one job per fold and mode (every step, every method).


rule xrai_segments:
    input:
        images=rules.convert.output.images,
        manifest=rules.convert.output.manifest,
        eval_images=rules.eval_images.output[0],
    output:
        "results/{dataset}/maps/xrai_segments.npz",
    params:
        script=script_path("xrai_segments.py"),
        data=subpath(input.images, parent=True),
    threads: config["convert_threads"]
    # Priorities order the jobs that are ready at once (longest chains first): the XRAI segments
    # unlock every saliency job, the randomization jobs are the longest ones that wait for a
    # single classifier, the localizers the longest training jobs. On 2 cores the demo's tail
    # (one long job running alone) shrinks by about half a minute.
    priority: 50
    log:
        "logs/{dataset}/maps/xrai_segments.log",
    benchmark:
        "benchmarks/{dataset}/maps/xrai_segments.tsv"
    conda:
        "../../envs/torch.yaml"
    shell:
        "python {params.script} --data {params.data} --eval-images {input.eval_images}"
        " --out {output} --workers {threads} > {log} 2>&1"


rule saliency:
    input:
        unpack(saliency_inputs()),
    output:
        maps=saliency_outputs("trained"),
        flags=saliency_outputs("trained", ".flags"),
    params:
        script=script_path("saliency_maps.py"),
        data=subpath(input.images, parent=True),
        out=trained_maps_folders,
        segments=get_segments_flag,
        options=get_saliency_options,
    threads: config["torch_threads"]
    resources:
        gpu=gpu_request,
    log:
        "logs/{dataset}/maps/{arch}/saliency.log",
    benchmark:
        "benchmarks/{dataset}/maps/{arch}/saliency.tsv"
    conda:
        "../../envs/torch.yaml"
    shell:
        "python {params.script} --dataset {wildcards.dataset} --model {input.models} --data {params.data}"
        " --eval-images {input.eval_images} {params.segments} --out {params.out} {params.options}"
        " --threads {threads} > {log} 2>&1"


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
            flags=saliency_outputs("{mode}", ".flags", arch=_arch),
        params:
            script=script_path("saliency_maps.py"),
            data=subpath(input.images, parent=True),
            out=MAPS_FOLDER.replace("{arch}", _arch),
            segments=get_segments_flag,
            options=get_saliency_options,
        threads: config["torch_threads"]
        priority: 40
        resources:
            gpu=gpu_request,
        log:
            f"logs/{{dataset}}/maps/{_arch}/fold{{fold}}/randomized_{{mode}}.log",
        benchmark:
            f"benchmarks/{{dataset}}/maps/{_arch}/fold{{fold}}/randomized_{{mode}}.tsv"
        conda:
            "../../envs/torch.yaml"
        shell:
            "python {params.script} --dataset {wildcards.dataset} --model {input.models} --data {params.data}"
            " --eval-images {input.eval_images} {params.segments} --out {params.out} --randomize {wildcards.mode}"
            " {params.options}"
            " --threads {threads} > {log} 2>&1"
