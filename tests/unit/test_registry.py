"""salaudit.registry: the torch-free facts the workflow reads at parse time."""

import json
import re
import subprocess
import sys

import pytest

from helpers.repo import tool_env
from salaudit import models, registry
from salaudit.saliency import randomize


def test_registry_and_models_agree():
    assert set(registry.ARCH_SPECS) == set(models.ARCHITECTURES)
    for name, spec in registry.ARCH_SPECS.items():
        arch = models.get_architecture(name)
        assert (arch.min_size, arch.head, arch.gradcam_layer, arch.cascade) == (
            spec.min_size, spec.head, spec.gradcam_layer, spec.cascade)
        assert registry.step_labels(name) == [step.label for step in randomize.steps(name)]
    assert registry.step_labels("inception_v3")[0] == "01_fc" and registry.step_labels("inception_v3")[-1] == "11_Mixed_5c"


def test_errors():
    with pytest.raises(registry.ModelError, match="unknown architecture 'vgg'"):
        registry.get_spec("vgg")
    with pytest.raises(models.ModelError, match="inception_v3 needs image_size >= 75 px, got 64"):
        registry.check_image_size("inception_v3", 64)
    with pytest.raises(registry.ModelError, match="^saliency method lrp does not support architecture densenet121 "):
        registry.check_method_arch("lrp", "densenet121")
    registry.check_method_arch("gcampp", "densenet121")  # only the methods listed are restricted


def test_method_facts_name_registered_methods_and_architectures():
    assert set(registry.METHOD_CONFIG_SECTIONS) <= set(registry.DISPLAY_NAMES)
    assert set(registry.FOLLOW_UP_METHODS) <= set(registry.DISPLAY_NAMES) - set(registry.CONTROLS)
    for method, archs in registry.METHOD_ARCHS.items():
        assert method in registry.DISPLAY_NAMES and set(archs) <= set(registry.ARCH_SPECS)


# The salaudit modules the workflow imports at parse time (Snakefile, workflow/rules/*.smk).
PARSE_TIME_MODULES = {"salaudit.config", "salaudit.layout", "salaudit.registry", "salaudit.study",
                      "salaudit.datasets.formats"}


def workflow_imports(repo):
    """The salaudit import statements of the Snakefile and the rule files, as written."""
    sources = [repo / "Snakefile", *sorted((repo / "workflow" / "rules").glob("*.smk"))]
    return [line.split("#")[0].strip() for path in sources for line in path.read_text().splitlines()
            if re.match(r"\s*(from|import) salaudit\b", line)]


def test_importing_what_the_workflow_imports_does_not_import_torch(repo, tmp_path):
    """Parsing the workflow (a dry run, a no-op rerun) must not pay for torch. Runs the
    workflow's own import lines, from a folder outside the repository (the installed package)."""
    code = "\n".join(["import json, sys", *workflow_imports(repo),
                      "loaded = sorted(m for m in sys.modules if m.startswith('salaudit'))",
                      "print(json.dumps({'torch': 'torch' in sys.modules, 'loaded': loaded}))"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env=tool_env(), check=True)
    result = json.loads(out.stdout)
    assert PARSE_TIME_MODULES <= set(result["loaded"]), "the workflow's imports changed: update PARSE_TIME_MODULES"
    assert result["torch"] is False, f"one of {result['loaded']} imports torch"


def test_run_notes_name_what_was_left_out_and_where(tmp_path):
    """The terminal's notes after a run (the Snakefile's onsuccess)."""
    from salaudit.study import run_notes

    results = tmp_path / "results"
    for name, rejected, evaluated in (("siim", 2, 8), ("rsna", 0, 3)):
        (results / name / "data").mkdir(parents=True)
        (results / name / "data" / "rejected.csv").write_text(
            "source,reason\n" + "".join(f"bad{i}.dcm,truncated\n" for i in range(rejected)))
        (results / name / "eval_images.csv").write_text(
            "index,image_id\n" + "".join(f"{i},img{i}\n" for i in range(evaluated)))
    config = {"datasets": {"siim": {}, "rsna": {}}, "on_bad_input": "skip", "n_eval": 8}
    assert run_notes(config, results) == [
        f"NOTE siim: 2 inputs left out as bad input (on_bad_input: skip), listed in {results}/siim/data/rejected.csv",
        f"NOTE rsna: n_eval is 8 but only 3 positive test images have a lesion at image_size: 3 evaluated "
        f"({results}/rsna/eval_images.csv; the report's overview says so too)",
    ]
