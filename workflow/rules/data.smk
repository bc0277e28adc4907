# Data stages: demo generation, conversion (DICOM, or a table's images), splits.


rule demo_data:
    output:
        directory(layout.DEMO_DATA),
    log:
        "logs/demo_data/{dataset}.log",
    benchmark:
        "benchmarks/demo_data/{dataset}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        code=code_version("make_demo_data.py"),
        fmt=lambda wc: DATASETS[wc.dataset]["format"],
        demo=lambda wc: shlex.quote(json.dumps(DATASETS[wc.dataset]["demo"], sort_keys=True)),
    shell:
        "{PYTHON} {SCRIPTS}/make_demo_data.py --format {params.fmt} --out {output:q} --demo {params.demo} > {log:q} 2>&1"


rule convert:
    input:
        get_dataset_inputs,
        split_file=get_split_file,
    output:
        images=layout.IMAGES,
        masks=layout.MASKS,
        manifest=layout.MANIFEST,
        boxes=layout.BOXES,
        rejected=layout.REJECTED,
        excluded=layout.EXCLUDED,
    log:
        "logs/{dataset}/convert.log",
    benchmark:
        "benchmarks/{dataset}/convert.tsv"
    retries: 1  # a job killed for memory is retried with twice the memory (workflow profile)
    conda:
        "../../envs/data.yaml"
    threads: config["convert_threads"]
    params:
        code=code_version("convert.py"),
        fmt=lambda wc: DATASETS[wc.dataset]["format"],
        root=get_dataset_root,
        inventory=get_inventory,
        out=subpath(output.manifest, parent=True),
        cohort=get_cohort_flags,
        settings=settings("image_size", "on_bad_input", "high_bit_depth", "window_percentiles"),
    shell:
        "{PYTHON} {SCRIPTS}/convert.py --format {params.fmt} --root {params.root:q} --out {params.out:q}"
        " --workers {threads} {params.cohort} --settings {params.settings} > {log:q} 2>&1"


rule split:
    input:
        manifest=rules.convert.output.manifest,
        split_file=get_split_file,
        split_table=get_split_table,
    output:
        layout.SPLITS,
    log:
        "logs/{dataset}/split.log",
    conda:
        "../../envs/data.yaml"
    params:
        code=code_version("split.py"),
        settings=settings("folds", "test_fraction", "seed"),
        split_file=get_split_flags,
    shell:
        "{PYTHON} {SCRIPTS}/split.py --manifest {input.manifest:q} --out {output:q}"
        " {params.split_file} --settings {params.settings} > {log:q} 2>&1"
