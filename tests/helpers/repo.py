"""The repository under test, and the environment its command-line programs run in."""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def tool_env():
    """Environment for subprocesses: the interpreter running the tests comes first on PATH, so
    `snakemake` and `python` are the venv's, where salaudit is installed (no PYTHONPATH)."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    return env
