"""The repository under test, and the environment its command-line programs run in."""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def tool_env():
    """Environment for subprocesses: the interpreter running the tests comes first on PATH, so
    `snakemake` and `python` are the venv's, where salaudit is installed; PYTHONPATH is this
    checkout's ``src`` only (the same code as an editable install of it; a venv shared by several
    checkouts or worktrees is installed from one of them, and must not run another's scripts)."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO / "src")
    return env
