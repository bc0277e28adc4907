"""salaudit.registry: the torch-free facts the workflow reads at parse time."""

import subprocess
import sys

import pytest

from conftest import REPO
from salaudit import models, randomize, registry


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


def test_importing_the_registry_and_data_does_not_import_torch():
    """Parsing the workflow (a dry run, a no-op rerun) must not pay for torch."""
    code = "import sys; import salaudit.registry, salaudit.data; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO / "scripts", check=True)
    assert out.stdout.strip() == "False"
