"""Shared test fixtures; shared helpers live in tests/helpers/."""

import pytest

from helpers.repo import REPO


@pytest.fixture(scope="session")
def repo():
    """The repository root (a checkout: Snakefile, scripts/, profiles/, envs/, README.md)."""
    return REPO


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """Working directory of one local run of the real workflow on the tiny e2e config
    (tests/e2e/test_workflow.py TINY, `--cores 2`), shared by every test that needs it."""
    from test_workflow import snakemake  # tests/e2e is on sys.path once an e2e module is collected

    workdir = tmp_path_factory.mktemp("tiny")
    result = snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir
