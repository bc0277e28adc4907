# Shared by all rule files - salaudit import path, config checks, input functions.
import sys
from pathlib import Path

SCRIPTS = Path(workflow.basedir) / "scripts"
sys.path.insert(0, str(SCRIPTS))

from salaudit import data as salaudit_data  # noqa: E402

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
                raise WorkflowError(
                    f"datasets.{name}: missing {', '.join(missing)}\n"
                    + salaudit_data.describe_expected(spec["format"], spec["root"])
                )
        if "splits" in spec and not Path(spec["splits"]).is_file():
            raise WorkflowError(f"datasets.{name}.splits: no file {spec['splits']}")


check_datasets()


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


def get_final_outputs():
    return [f"results/{name}/splits.csv" for name in DATASETS]
