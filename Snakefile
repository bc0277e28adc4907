# saliency-audit: can saliency maps be trusted to show where the abnormality is?
# Stages live in workflow/rules/*.smk; results/ paths show the DAG (see README).
import sys

from snakemake.utils import min_version

from salaudit.config import ConfigError, resolve  # the installed package (make: pip install -e .); torch-free
from salaudit.study import run_notes

min_version("9.0")

# The demo config (config.yaml beside this Snakefile, wherever the run's folder is) is the
# default. It is read only when no --configfile is given, because Snakemake would otherwise
# deep-merge it into the user's and leak the demo datasets.
if not workflow.config_settings.configfiles:

    configfile: f"{workflow.basedir}/config.yaml"


# The schema (src/salaudit/config.schema.yaml) fills in every default; a key it does not allow is
# one line naming the key, what is allowed and the file, before any job is planned.
try:
    resolved = resolve(config, complete=True)
except ConfigError as error:
    sys.exit(f"{', '.join(map(str, workflow.config_settings.configfiles)) or 'config.yaml'}: {error}")
config.update(resolved)


# `--sdm conda apptainer`: every job runs in this image with its rule's conda env built inside
# (README, "Conda and containers"); GPU jobs need `--apptainer-args "--nv"`.
container: "docker://condaforge/miniforge3:24.11.3-0"


# The report's landing page: what was run and the answer (results/tables/overview.html).
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    dataset="|".join(DATASETS),
    fold=r"\d+",
    arch="|".join(registry.ARCH_SPECS),
    localizer="|".join(sorted(set(FORMAT_LOCALIZER.values()))),
    method="|".join(METHOD_IDS),
    mode="|".join(registry.RANDOMIZATION_MODES),


include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/saliency.smk"
include: "workflow/rules/evaluate.smk"


onsuccess:
    for note in run_notes(config):
        print(note)


rule all:
    default_target: True
    input:
        get_final_outputs(),
        eval_final_outputs(),
