# Data stages: demo generation, DICOM conversion, splits.


rule demo_data:
    output:
        directory("results/demo_data/{dataset}"),
    params:
        script=script_path("make_demo_data.py"),
        fmt=lambda wc: DATASETS[wc.dataset]["format"],
        demo=lambda wc: DATASETS[wc.dataset]["demo"],
    log:
        "logs/demo_data/{dataset}.log",
    benchmark:
        "benchmarks/demo_data/{dataset}.tsv"
    conda:
        "../../envs/data.yaml"
    shell:
        "python {params.script} --format {params.fmt} --out {output}"
        " --n-images {params.demo[n_images]} --positive-fraction {params.demo[positive_fraction]}"
        " --seed {params.demo[seed]} > {log} 2>&1"


rule convert:
    input:
        get_dataset_inputs,
        split_file=get_split_file,
    output:
        images="results/{dataset}/data/images.npy",
        masks="results/{dataset}/data/masks.npy",
        manifest="results/{dataset}/data/manifest.csv",
        boxes="results/{dataset}/data/boxes.csv",
        rejected="results/{dataset}/data/rejected.csv",
        excluded="results/{dataset}/data/excluded.csv",
    params:
        script=script_path("convert.py"),
        fmt=lambda wc: DATASETS[wc.dataset]["format"],
        root=get_dataset_root,
        out=subpath(output.manifest, parent=True),
        image_size=config["image_size"],
        on_bad_input=config["on_bad_input"],
        high_bit_depth=config["high_bit_depth"],
        percentiles=" ".join(str(p) for p in config["window_percentiles"]),
        cohort=get_cohort_flags,
    threads: config["convert_threads"]
    log:
        "logs/{dataset}/convert.log",
    benchmark:
        "benchmarks/{dataset}/convert.tsv"
    conda:
        "../../envs/data.yaml"
    shell:
        "python {params.script} --format {params.fmt} --root {params.root:q}"
        " --image-size {params.image_size} --out {params.out}"
        " --on-bad-input {params.on_bad_input} --high-bit-depth {params.high_bit_depth}"
        " --window-percentiles {params.percentiles} --workers {threads} {params.cohort} > {log} 2>&1"


rule split:
    input:
        manifest=rules.convert.output.manifest,
        split_file=get_split_file,
    output:
        "results/{dataset}/splits.csv",
    params:
        script=script_path("split.py"),
        folds=config["folds"],
        test_fraction=config["test_fraction"],
        seed=config["seed"],
        split_file=lambda wc, input: f"--split-file {input.split_file}" if input.split_file else "",
    log:
        "logs/{dataset}/split.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "python {params.script} --manifest {input.manifest} --out {output}"
        " --folds {params.folds} --test-fraction {params.test_fraction} --seed {params.seed}"
        " {params.split_file} > {log} 2>&1"
