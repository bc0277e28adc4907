"""Shared test fixtures and helpers."""

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def repo():
    return REPO


def tool_env():
    """Environment for subprocesses: the interpreter running the tests comes first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO / "scripts")
    return env


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """Working directory of one local run of the real workflow on the tiny e2e config
    (tests/e2e/test_workflow.py TINY, `--cores 2`), shared by every test that needs it."""
    from test_workflow import snakemake  # tests/e2e is on sys.path once an e2e module is collected

    workdir = tmp_path_factory.mktemp("tiny")
    result = snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir
