# Shared by all rule files - config checks, the study, input functions, settings of the scripts.
# Paths come from salaudit.layout; every salaudit module imported here is torch-free (parsing the
# workflow never imports torch).
import json
import shlex
import sys
from pathlib import Path

from snakemake_interface_executor_plugins.settings import DeploymentMethod

from salaudit import codehash, layout, registry
from salaudit.datasets import formats, table
from salaudit.registry import FORMAT_LOCALIZER
from salaudit.study import study

# Every shell line starts `{PYTHON} {SCRIPTS}/<script>.py`. Neither is a param: Snakemake's params
# trigger would rerun every job of a finished run driven from a checkout at another path.
# PYTHON: the interpreter of the environment the jobs run in - the one running Snakemake (the
# venv's, activated or not), or the rule's conda env's; unbuffered, so a killed job's log keeps
# what it printed. Both are quoted: a checkout's path may hold spaces.
SCRIPTS_DIR = Path(workflow.basedir) / "scripts"
SCRIPTS = shlex.quote(str(SCRIPTS_DIR))
CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
PYTHON = ("python" if CONDA else shlex.quote(sys.executable)) + " -u"


def code_version(script):
    """A param that changes with the code a rule runs (its script and every salaudit module it
    imports, by content): an upgrade reruns what it changes (`salaudit.codehash`)."""
    return codehash.code_version(SCRIPTS_DIR / script)


# Light jobs (tables, figures, splits) run where Snakemake runs, never queued on a cluster.
localrules:
    all,
    split,
    eval_images,
    average_mask,
    summarize_models,
    aggregate,
    figures,


DATASETS = config["datasets"]
# The randomization steps the config gives an architecture instead of its registry entry's.
try:
    registry.override_cascades(config["saliency"]["randomization"]["blocks"])
except registry.ModelError as err:
    sys.exit(str(err))


def stop(problems):
    """End the run before any job with one line per problem (no traceback)."""
    if problems:
        sys.exit("\n".join(problems))


def check_datasets():
    """Each dataset is either generated (demo) or read from a complete Kaggle download or table:
    every problem of every dataset at once, one line each (the expected layout after them)."""
    problems, layouts = [], []
    for name, spec in DATASETS.items():
        if ("root" in spec) == ("demo" in spec):
            problems.append(f"datasets.{name}: give exactly one of 'root' (a Kaggle download) or 'demo'")
            continue
        problems += check_table_keys(name, spec)
        if "root" in spec:
            missing = formats.missing_inputs(spec["format"], spec["root"], spec.get("table"))
            if missing:
                problems.append(f"datasets.{name}: missing {', '.join(missing)}")
                layouts.append(formats.describe_expected(spec["format"], spec["root"], spec.get("table")))
            else:
                try:
                    formats.check_classes(spec["format"], spec["root"], spec.get("classes"))
                except formats.DatasetError as err:
                    problems.append(f"datasets.{name}.classes: {err}")
        if "splits" in spec and not Path(spec["splits"]).is_file():
            problems.append(f"datasets.{name}.splits: no file {spec['splits']}")
    stop(problems + layouts if problems else [])


def check_table_keys(name, spec):
    """The keys only format table has, and its table's header (the columns name the encoding)."""
    if spec["format"] != "table":
        return [f"datasets.{name}.table: only format table reads a table"] if "table" in spec else []
    if "demo" in spec:  # (a table read from root: its classes are checked with the other formats')
        problems = []
        if spec["table"] != formats.TABLE_DEMO_NAME:
            problems.append(f"datasets.{name}.table: a demo writes {formats.TABLE_DEMO_NAME}, not {spec['table']}")
        try:
            formats.check_classes("table", layout.DEMO_DATA.format(dataset=name), spec.get("classes"))
        except formats.DatasetError as err:
            problems.append(f"datasets.{name}.classes: {err}")
        return problems
    if formats.missing_inputs("table", spec["root"], spec["table"]):
        return []  # named with the expected layout by check_datasets
    try:
        formats.check_table(spec["root"], spec["table"])
    except formats.DatasetError as err:
        return [f"datasets.{name}.table: {err}"]
    if "splits" in spec and table.has_split(Path(spec["root"]) / spec["table"]):
        return [f"datasets.{name}.splits: the table has a split column too; give one of them"]
    return []


# Classifiers brought as weights (classifiers.weights): imported, never trained.
IMPORTED = config["classifiers"]["weights"]
# A wildcard matching no architecture (the import rule when nothing is imported).
NO_ARCH = "(?!)"


def check_models():
    """Unknown architectures, too small images, a method an architecture does not support (LRP),
    a U-Net that cannot halve the image, missing weight files: one line each, before any job
    (they would otherwise fail inside one)."""
    problems, known = [], []
    for arch in config["classifiers"]["archs"]:
        try:
            registry.check_image_size(arch, config["image_size"])
            known.append(arch)
        except registry.ModelError as err:
            problems.append(f"classifiers.archs: {err}")
    for arch, paths in IMPORTED.items():
        key = f"classifiers.weights.{arch}"
        if arch not in config["classifiers"]["archs"]:
            problems.append(f"{key}: {arch} is not in classifiers.archs")
        elif len(paths) != config["folds"]:
            problems.append(f"{key}: {len(paths)} file(s), one per replicate, but folds is {config['folds']}")
        elif arch in config["classifiers"]["pretrained"]:
            problems.append(f"{key}: {arch} also has classifiers.pretrained (imported models are not trained)")
        elif arch in config["evaluation"]["label_randomization"]["archs"]:
            problems.append(f"{key}: {arch} is in evaluation.label_randomization.archs, which retrains it")
        problems += [f"{key}: no file {path}" for path in paths if not Path(path).is_file()]
    for arch, spec in config["classifiers"]["preprocess"].items():
        if arch not in IMPORTED:
            problems.append(f"classifiers.preprocess.{arch}: only for models brought as weights (classifiers.weights)")
        for key in ("mean", "std"):
            if spec[key] is not None and len(spec[key]) != spec["channels"]:
                problems.append(
                    f"classifiers.preprocess.{arch}.{key}: {len(spec[key])} values for {spec['channels']} channel(s)"
                )
        if (spec["mean"] is None) != (spec["std"] is None):
            problems.append(f"classifiers.preprocess.{arch}: give both mean and std, or neither")
    for method in config["saliency"]["methods"]:
        for arch in known:  # an unknown or refused architecture: its one line above
            try:
                registry.check_method_arch(method, arch)
            except registry.ModelError as err:
                problems.append(f"saliency.methods: {err}")
    for arch, path in config["classifiers"]["pretrained"].items():
        if arch not in config["classifiers"]["archs"]:
            problems.append(f"classifiers.pretrained.{arch}: {arch} is not in classifiers.archs")
        elif not Path(path).is_file():
            problems.append(f"classifiers.pretrained.{arch}: no file {path} (weights are never downloaded)")
    if any(formats.localizer(spec, spec.get("root")) == "unet" for spec in DATASETS.values()):
        try:
            registry.check_unet_size(config["image_size"], config["localizers"]["unet"]["depth"])
        except registry.ModelError as err:
            problems.append(f"localizers.unet.depth: {err}")
    stop(problems)


check_datasets()
check_models()


def demo_root(name):
    return layout.DEMO_DATA.format(dataset=name)


def get_dataset_root(wildcards):
    spec = DATASETS[wildcards.dataset]
    return spec["root"] if "root" in spec else demo_root(wildcards.dataset)


def get_dataset_inputs(wildcards):
    """Demo datasets depend on their generator; real ones on their label file (or table)."""
    spec = DATASETS[wildcards.dataset]
    if "demo" in spec:
        return [demo_root(wildcards.dataset)]
    return [str(formats.label_file(spec["format"], spec["root"], spec.get("table")))]


def get_inventory(wildcards):
    """What the images of a Kaggle download are (paths, sizes, modification times; a table: it and
    the images and masks it lists): a param of ``convert``, so a replaced, repaired, added or
    deleted DICOM reruns it (a demo's download is the output of its rule)."""
    spec = DATASETS[wildcards.dataset]
    return formats.inventory(spec["format"], spec["root"], spec.get("table")) if "root" in spec else "demo"


def get_pretrained(wildcards):
    """The weights file {arch} starts from (classifiers.pretrained), an input of its training: a
    replaced file retrains."""
    return config["classifiers"]["pretrained"].get(wildcards.arch, [])


def get_split_file(wildcards):
    return DATASETS[wildcards.dataset].get("splits", [])


def get_split_table(wildcards):
    """A table with a split column (format table), which gives the splits as a split file would."""
    spec = DATASETS[wildcards.dataset]
    if spec["format"] != "table" or "demo" in spec:  # the demo's table has no split column
        return []
    path = formats.label_file("table", spec["root"], spec["table"])
    return [str(path)] if table.has_split(path) else []


def get_split_flags(wildcards, input):
    """--split-file or --split-table of a split job (neither: seeded splits)."""
    if input.split_file:
        return f"--split-file {shlex.quote(str(input.split_file))}"
    if input.split_table:
        return f"--split-table {shlex.quote(str(input.split_table))}"
    return ""


def get_cohort_flags(wildcards, input):
    """--table (format table), --classes and --split-file of a convert job: where the labels are,
    the images of the study (the rest: excluded.csv)."""
    spec = DATASETS[wildcards.dataset]
    flags = [f"--table {shlex.quote(spec['table'])}"] if spec["format"] == "table" else []
    if "classes" in spec:
        flags.append("--classes " + " ".join(shlex.quote(c) for c in spec["classes"]))
    if input.split_file:
        flags.append(f"--split-file {shlex.quote(str(input.split_file))}")
    return " ".join(flags)


STUDY = study(config)
ARCHS = STUDY.archs
FOLDS = STUDY.folds


def localizer_of(name):
    """Masks → U-Net, boxes → RetinaNet (salaudit.registry)."""
    return STUDY.localizer(name)


def gpu_request(wildcards):
    """A GPU is reserved (resources: gpu=1) only when the config asks for device: cuda."""
    return 1 if config["device"] == "cuda" else 0


def settings(*keys):
    """The config keys a script reads, as one --settings JSON argument (salaudit.config): a new
    setting is added in the schema and read where it is used, never re-spelled as a flag. Keys
    keep the config's order: the order of `datasets` is the order of the tables and figures."""
    return shlex.quote(json.dumps({key: config[key] for key in keys}))


def training_settings():
    """The settings of a training job: seed, device and the classifiers block but the weights
    and preprocessing of imported models (adding one must not retrain the others)."""
    block = {k: v for k, v in config["classifiers"].items() if k not in ("weights", "preprocess")}
    return shlex.quote(json.dumps({"seed": config["seed"], "device": config["device"], "classifiers": block}))


def import_settings(wildcards):
    """What an import job reads: seed, device, the batch size and its architecture's input."""
    c = config["classifiers"]
    block = {
        "batch_size": c["batch_size"],
        "preprocess": {k: v for k, v in c["preprocess"].items() if k == wildcards.arch},
    }
    return shlex.quote(json.dumps({"seed": config["seed"], "device": config["device"], "classifiers": block}))


def get_weights_file(wildcards):
    return IMPORTED[wildcards.arch][int(wildcards.fold)]


def get_all_classifier_metrics(wildcards=None):
    return expand(layout.CLASSIFIER_METRICS, dataset=DATASETS, arch=ARCHS, fold=FOLDS)


def get_all_localizer_maps(wildcards=None):
    return [
        path
        for name in DATASETS
        for path in expand(layout.LOCALIZER_MAPS, dataset=name, localizer=localizer_of(name), fold=FOLDS)
    ]


# --------------------------------------------------------------------------- saliency

METHOD_IDS = STUDY.methods
RANDOMIZED_ARCHS = STUDY.randomized_archs
RANDOMIZED_FOLDS = STUDY.randomized_folds
RANDOMIZATION_MODES = STUDY.modes
RANDOMIZATION = config["saliency"]["randomization"]
LABEL_ARCHS = STUDY.label_archs
LABEL_FOLDS = STUDY.label_folds
MAPS_FOLDER = layout.MAPS_FOLDER
TRAINED_MAP = layout.TRAINED_MAP
RANDOMIZED_MAP = layout.RANDOMIZED_MAP


def check_saliency():
    problems = []
    for key, folds, archs in (
        ("saliency.randomization", RANDOMIZED_FOLDS, RANDOMIZATION["archs"]),
        ("evaluation.label_randomization", LABEL_FOLDS, config["evaluation"]["label_randomization"]["archs"]),
    ):
        bad = [f for f in folds if f >= config["folds"]]
        if bad:
            problems.append(f"{key}.folds: {bad} not below folds ({config['folds']})")
        unknown = [a for a in archs if a not in registry.ARCH_SPECS]
        if unknown:
            problems.append(f"{key}.archs: unknown architecture(s) {', '.join(unknown)}")
    for arch in config["classifiers"]["archs"]:
        try:
            registry.check_guided(arch, config["saliency"]["methods"])
        except registry.ModelError as err:
            problems.append(f"saliency.methods: {err}")
    stop(problems)


check_saliency()


def step_labels(arch):
    return registry.step_labels(arch)


def saliency_outputs(stem, suffix="", arch=None, single=False):
    """Map files of one job. Trained maps: every fold and method of {dataset} x {arch} (one job
    per architecture shares the start-up); ``single``: every method of the one model {arch} x
    {fold}; a randomized arch: every method and step of {mode}."""
    if single:
        return expand(TRAINED_MAP, method=METHOD_IDS, stem=stem, suffix=suffix, allow_missing=True)
    if arch is None:
        return expand(TRAINED_MAP, method=METHOD_IDS, stem=stem, suffix=suffix, fold=FOLDS, allow_missing=True)
    return expand(
        RANDOMIZED_MAP,
        method=METHOD_IDS,
        stem=stem,
        label=step_labels(arch),
        suffix=suffix,
        arch=arch,
        allow_missing=True,
    )


def saliency_inputs(arch=None, model=layout.CLASSIFIER_MODEL):
    """Input function of a saliency job: every fold's model of {arch}, or with ``arch`` given (the
    per-architecture randomization rules) the model of {fold}; ``model``: the template of the
    model file (the label-randomized replicates': `layout.LABEL_CLASSIFIER_MODEL`, one per job)."""

    def inputs(wildcards):
        where = {"dataset": wildcards.dataset}
        folds = FOLDS if arch is None and model == layout.CLASSIFIER_MODEL else [wildcards.fold]
        files = {
            "models": expand(model, **where, arch=arch or wildcards.arch, fold=folds),
            "images": layout.IMAGES.format(**where),
            "manifest": layout.MANIFEST.format(**where),
            "eval_images": layout.EVAL_IMAGES.format(**where),
        }
        if "xrai" in METHOD_IDS:
            files["segments"] = layout.XRAI_SEGMENTS.format(**where)
        if "prior" in METHOD_IDS:
            files["average_mask"] = layout.AVERAGE_MASK.format(**where)
        return files

    return inputs


def trained_maps_folders(wildcards):
    """--out folders of a trained-maps job, in the order of its --model files (FOLDS)."""
    return expand(MAPS_FOLDER, dataset=wildcards.dataset, arch=wildcards.arch, fold=FOLDS)


def get_extra_map_inputs(wildcards, input):
    """--segments and --average-mask of a saliency job, where its methods need them."""
    flags = [f"--segments {shlex.quote(input.segments)}"] if "segments" in input.keys() else []
    if "average_mask" in input.keys():
        flags.append(f"--average-mask {shlex.quote(input.average_mask)}")
    return " ".join(flags)


def get_all_maps(wildcards=None):
    trained = expand(
        TRAINED_MAP, dataset=DATASETS, arch=ARCHS, fold=FOLDS, method=METHOD_IDS, stem=layout.TRAINED_STEM, suffix=""
    )
    randomized = [
        path
        for arch in RANDOMIZED_ARCHS
        for path in expand(
            RANDOMIZED_MAP,
            dataset=DATASETS,
            arch=arch,
            fold=RANDOMIZED_FOLDS,
            method=METHOD_IDS,
            stem=RANDOMIZATION_MODES,
            label=step_labels(arch),
            suffix="",
        )
    ]
    return trained + randomized + label_randomized_maps(DATASETS)


def label_randomized_maps(datasets, suffixes=("",)):
    """Map files of the replicates retrained on permuted labels (evaluation.label_randomization)."""
    return [
        path
        for arch in LABEL_ARCHS
        for path in expand(
            TRAINED_MAP,
            dataset=datasets,
            arch=arch,
            fold=LABEL_FOLDS,
            method=METHOD_IDS,
            stem=layout.LABEL_RANDOMIZED_STEM,
            suffix=list(suffixes),
        )
    ]


def get_final_outputs():
    return [layout.CLASSIFIERS_TABLE, layout.LOCALIZERS_TABLE, *get_all_maps()]
