# Shared by all rule files - salaudit import path, config checks, input functions.
import json
import shlex
import sys
from pathlib import Path

SCRIPTS = Path(workflow.basedir) / "scripts"
sys.path.insert(0, str(SCRIPTS))

from salaudit import data as salaudit_data  # noqa: E402
from salaudit import registry  # noqa: E402  (torch-free: parsing the workflow never imports torch)
from salaudit.registry import FORMAT_LOCALIZER  # noqa: E402

DATASETS = config["datasets"]


def script_path(name):
    """Scripts are addressed from the workflow's folder, so any working directory works."""
    return str(SCRIPTS / name)


def check_datasets():
    """Each dataset is either generated (demo) or read from a complete Kaggle download."""
    for name, spec in DATASETS.items():
        if ("root" in spec) == ("demo" in spec):
            raise WorkflowError(f"datasets.{name}: give exactly one of 'root' (a Kaggle download) or 'demo'")
        if "root" in spec:
            missing = salaudit_data.missing_inputs(spec["format"], spec["root"])
            if missing:
                expected = salaudit_data.describe_expected(spec["format"], spec["root"])
                raise WorkflowError(f"datasets.{name}: missing {', '.join(missing)}\n{expected}")
            try:
                salaudit_data.check_classes(spec["format"], spec["root"], spec.get("classes"))
            except salaudit_data.DatasetError as err:
                raise WorkflowError(f"datasets.{name}.classes: {err}")
        if "splits" in spec and not Path(spec["splits"]).is_file():
            raise WorkflowError(f"datasets.{name}.splits: no file {spec['splits']}")


def check_models():
    """Unknown architectures, too small images, missing weight files: one clear line each."""
    for arch in config["classifiers"]["archs"]:
        try:
            registry.check_image_size(arch, config["image_size"])
        except registry.ModelError as err:
            raise WorkflowError(f"classifiers.archs: {err}")
    for arch, path in config["classifiers"]["pretrained"].items():
        if arch not in config["classifiers"]["archs"]:
            raise WorkflowError(f"classifiers.pretrained.{arch}: {arch} is not in classifiers.archs")
        if not Path(path).is_file():
            raise WorkflowError(f"classifiers.pretrained.{arch}: no file {path} (weights are never downloaded)")


check_datasets()
check_models()


def demo_root(name):
    return f"results/demo_data/{name}"


def get_dataset_root(wildcards):
    spec = DATASETS[wildcards.dataset]
    return spec["root"] if "root" in spec else demo_root(wildcards.dataset)


def get_dataset_inputs(wildcards):
    """Demo datasets depend on their generator; real ones on their label file."""
    spec = DATASETS[wildcards.dataset]
    if "demo" in spec:
        return [demo_root(wildcards.dataset)]
    return [str(Path(spec["root"]) / salaudit_data.FORMATS[spec["format"]]["labels"])]


def get_split_file(wildcards):
    return DATASETS[wildcards.dataset].get("splits", [])


def get_cohort_flags(wildcards, input):
    """--classes and --split-file of a convert job: the images of the study (the rest: excluded.csv)."""
    spec = DATASETS[wildcards.dataset]
    flags = ["--classes " + " ".join(shlex.quote(c) for c in spec["classes"])] if "classes" in spec else []
    if input.split_file:
        flags.append(f"--split-file {shlex.quote(str(input.split_file))}")
    return " ".join(flags)


ARCHS = config["classifiers"]["archs"]
FOLDS = list(range(config["folds"]))


def localizer_of(name):
    """Masks → U-Net, boxes → RetinaNet (salaudit.localizers)."""
    return FORMAT_LOCALIZER[DATASETS[name]["format"]]


def gpu_request(wildcards):
    """A GPU is reserved (resources: gpu=1) only when the config asks for device: cuda."""
    return 1 if config["device"] == "cuda" else 0


def _flags(options):
    """{"batch_size": 32, "augment": False} → "--batch-size 32 --no-augment"."""
    parts = []
    for key, value in options.items():
        name = key.replace("_", "-")
        if isinstance(value, bool):
            parts += [] if value else [f"--no-{name}"]
        elif value is not None:
            parts.append(f"--{name} {value}")
    return " ".join(parts)


def get_classifier_options(wildcards):
    c = config["classifiers"]
    pretrained = c["pretrained"].get(wildcards.arch)
    return _flags({
        "epochs": c["epochs"], "batch_size": c["batch_size"], "lr": c["lr"],
        "weight_decay": c["weight_decay"], "patience": c["patience"], "augment": c["augment"],
        "seed": config["seed"], "device": config["device"], "pretrained": pretrained,
        "memory_format": c["memory_format"],
    })


def get_localizer_options(wildcards):
    c = config["localizers"]
    specific = c[wildcards.localizer]
    return _flags({
        "epochs": c["epochs"], "patience": c["patience"], "seed": config["seed"], "device": config["device"],
        **specific,
    })


def get_all_classifier_metrics(wildcards=None):
    return expand("results/{dataset}/models/{arch}/fold{fold}/metrics.json", dataset=DATASETS, arch=ARCHS, fold=FOLDS)


def get_all_localizer_maps(wildcards=None):
    return [path for name in DATASETS for path in expand(
        "results/{dataset}/localizers/{localizer}/fold{fold}/maps.npy",
        dataset=name, localizer=localizer_of(name), fold=FOLDS)]




# --------------------------------------------------------------------------- saliency

SALIENCY = config["saliency"]
METHOD_IDS = SALIENCY["methods"]
RANDOMIZATION = SALIENCY["randomization"]
RANDOMIZED_ARCHS = [a for a in RANDOMIZATION["archs"] if a in ARCHS]
RANDOMIZED_FOLDS = FOLDS if RANDOMIZATION["folds"] is None else RANDOMIZATION["folds"]
RANDOMIZATION_MODES = RANDOMIZATION["modes"]
MAPS_FOLDER = "results/{dataset}/maps/{arch}/fold{fold}"
TRAINED_MAP = "results/{dataset}/maps/{arch}/fold{fold}/{method}/{stem}{suffix}.npy"
RANDOMIZED_MAP = "results/{dataset}/maps/{arch}/fold{fold}/{method}/{stem}/{label}{suffix}.npy"


def check_saliency():
    bad = [f for f in RANDOMIZED_FOLDS if f >= config["folds"]]
    if bad:
        raise WorkflowError(f"saliency.randomization.folds: {bad} not below folds ({config['folds']})")
    unknown = [a for a in RANDOMIZATION["archs"] if a not in registry.ARCH_SPECS]
    if unknown:
        raise WorkflowError(f"saliency.randomization.archs: unknown architecture(s) {', '.join(unknown)}")


check_saliency()


def step_labels(arch):
    return registry.step_labels(arch)


def saliency_outputs(stem, suffix="", arch=None):
    """Map files of one job. Trained maps: every fold and method of {dataset} x {arch} (one job
    per architecture shares the start-up); a randomized arch: every method and step of {mode}."""
    if arch is None:
        return expand(TRAINED_MAP, method=METHOD_IDS, stem=stem, suffix=suffix, fold=FOLDS, allow_missing=True)
    return expand(RANDOMIZED_MAP, method=METHOD_IDS, stem=stem, label=step_labels(arch), suffix=suffix, arch=arch,
                  allow_missing=True)


def saliency_inputs(arch=None):
    """Input function of a saliency job: every fold's model of {arch}, or with ``arch`` given (the
    per-architecture randomization rules) the model of {fold}."""

    def inputs(wildcards):
        data = f"results/{wildcards.dataset}/data"
        folds = FOLDS if arch is None else [wildcards.fold]
        files = {
            "models": [f"results/{wildcards.dataset}/models/{arch or wildcards.arch}/fold{fold}/model.pt"
                       for fold in folds],
            "images": f"{data}/images.npy",
            "manifest": f"{data}/manifest.csv",
            "eval_images": f"results/{wildcards.dataset}/eval_images.csv",
        }
        if "xrai" in METHOD_IDS:
            files["segments"] = f"results/{wildcards.dataset}/maps/xrai_segments.npz"
        return files

    return inputs


def trained_maps_folders(wildcards):
    """--out folders of a trained-maps job, in the order of its --model files (FOLDS)."""
    return " ".join(expand(MAPS_FOLDER, dataset=wildcards.dataset, arch=wildcards.arch, fold=FOLDS))


def get_segments_flag(wildcards, input):
    return f"--segments {input.segments}" if "segments" in input.keys() else ""


def method_options():
    """--set flags of every configured method setting (the rest: the paper's defaults)."""
    parts = []
    for method in METHOD_IDS:
        section = registry.METHOD_CONFIG_SECTIONS.get(method)
        for key, value in (SALIENCY.get(section) or {}).items() if section else []:
            if isinstance(value, dict):  # e.g. gcam.layer per architecture: JSON is YAML
                parts.append(shlex.quote(f"--set={method}.{key}={json.dumps(value, sort_keys=True)}"))
            else:
                parts.append(f"--set {method}.{key}={'null' if value is None else value}")
    return " ".join(parts)


def get_saliency_options(wildcards):
    return " ".join([
        "--methods " + " ".join(METHOD_IDS),
        method_options(),
        _flags({"seed": config["seed"], "batch_size": SALIENCY["batch_size"], "max_batch": SALIENCY["max_batch"],
                "device": config["device"]}),
        "--allow-tf32" if SALIENCY["allow_tf32"] else "",
    ])


def get_all_maps(wildcards=None):
    trained = expand(TRAINED_MAP, dataset=DATASETS, arch=ARCHS, fold=FOLDS, method=METHOD_IDS, stem="trained",
                     suffix="")
    randomized = [path for arch in RANDOMIZED_ARCHS for path in expand(
        RANDOMIZED_MAP, dataset=DATASETS, arch=arch, fold=RANDOMIZED_FOLDS, method=METHOD_IDS,
        stem=RANDOMIZATION_MODES, label=step_labels(arch), suffix="")]
    return trained + randomized


def get_final_outputs():
    return ["results/tables/classifiers.csv", "results/tables/localizers.csv", *get_all_maps()]
