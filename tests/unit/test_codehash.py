"""salaudit.codehash: a rule's code version follows the code it runs, and nothing else."""

import shutil

import pytest

from salaudit import codehash


@pytest.fixture
def package(tmp_path, monkeypatch, repo):
    """A copy of src/salaudit to edit, as the package codehash reads."""
    src = tmp_path / "checkout" / "src"
    shutil.copytree(repo / "src" / "salaudit", src / "salaudit", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codehash, "PACKAGE", src / "salaudit")
    for cached in (codehash._imports, codehash.scan, codehash.code_version):
        cached.cache_clear()
    yield src / "salaudit"
    for cached in (codehash._imports, codehash.scan, codehash.code_version):
        cached.cache_clear()


def _version(script):
    for cached in (codehash._imports, codehash.scan, codehash.code_version):
        cached.cache_clear()
    return codehash.code_version(script)


def test_scan_follows_imports_lazy_ones_included(repo):
    files, third_party = codehash.scan(repo / "scripts" / "train_classifier.py")
    names = {p.relative_to(repo).as_posix() for p in files}
    assert {"scripts/train_classifier.py", "src/salaudit/__init__.py", "src/salaudit/models/classifier.py",
            "src/salaudit/models/training.py", "src/salaudit/jobcache.py"} <= names
    assert "src/salaudit/evaluation/scoring.py" not in names
    assert {"torch", "numpy", "pandas"} <= third_party and "salaudit" not in third_party


def test_a_module_change_reruns_the_rules_that_import_it_and_no_other(package, tmp_path):
    training = tmp_path / "train.py"
    training.write_text("from salaudit.models import classifier\n")
    scoring = tmp_path / "score.py"
    scoring.write_text("def main():\n    from salaudit.evaluation import scoring\n")
    before = _version(training), _version(scoring)
    with open(package / "models" / "classifier.py", "a") as handle:
        handle.write("\n# a change\n")
    after = _version(training), _version(scoring)
    assert after[0] != before[0] and after[1] == before[1]


def test_the_version_does_not_depend_on_where_the_checkout_lies(package, tmp_path):
    """Scripts at paths that sort before ("a before") and after ("one", "two with spaces") the
    package's folder (tmp_path/checkout/src): the same version (a fresh-clone CI run at /check/...
    with a copy under /tmp/... once hashed the same files in another order)."""
    versions = []
    for folder in ("a before", "one", "two with spaces"):
        script = tmp_path / folder / "scripts" / "split.py"
        script.parent.mkdir(parents=True)
        script.write_text("from salaudit.datasets import splits\n")
        versions.append(_version(script))
    assert versions[0] == versions[1] == versions[2]
    script.write_text("from salaudit.datasets import splits  # edited\n")
    assert _version(script) != versions[0]
