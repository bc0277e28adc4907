# saliency-audit: can saliency maps be trusted to show where the abnormality is?
# Stages live in workflow/rules/*.smk; results/ paths show the DAG (see README).
from snakemake.utils import min_version, validate

min_version("9.0")

# The demo config is the default. It is read only when no --configfile is given, because
# Snakemake would otherwise deep-merge it into the user's and leak the demo datasets.
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"


wildcard_constraints:
    dataset="|".join(DATASETS),
    fold=r"\d+",
    arch="|".join(registry.ARCH_SPECS),
    localizer="|".join(sorted(set(FORMAT_LOCALIZER.values()))),
    method="|".join(METHOD_IDS),
    mode="cascade|independent",


include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/saliency.smk"
include: "workflow/rules/evaluate.smk"


rule all:
    input:
        get_final_outputs(),
        eval_final_outputs(),
    default_target: True
