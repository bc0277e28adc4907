"""The README's Python API: the names a notebook uses, at their paths; the old paths still work."""

import importlib

import pytest

import salaudit.datasets.dicom
import salaudit.datasets.labels
import salaudit.models.checkpoints


def test_the_readme_names_are_where_the_readme_says():
    import salaudit.models

    assert salaudit.models.load_checkpoint is salaudit.models.checkpoints.load_checkpoint
    assert callable(salaudit.datasets.dicom.read_dicom)
    assert salaudit.datasets.labels.encode_siim_rle(salaudit.datasets.labels.decode_siim_rle("1 2", 2, 2)) == "1 2"


@pytest.mark.parametrize("old,new,name", [
    ("salaudit.dicom", salaudit.datasets.dicom, "read_dicom"),
    ("salaudit.labels", salaudit.datasets.labels, "decode_siim_rle"),
    ("salaudit.labels", salaudit.datasets.labels, "encode_siim_rle"),
])
def test_the_flat_paths_are_deprecated_shims(old, new, name):
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=rf"^{old}\.{name} moved to {new.__name__}\.{name}$"):
        assert getattr(module, name) is getattr(new, name)
    with pytest.raises(AttributeError, match=f"module '{old}' has no attribute 'nothing'"):
        module.nothing
