"""Debian packages a test needs (SLURM's daemons, Chromium), installed by the test itself when
it runs as root with apt-get, as `.ci/run` does; elsewhere the test says why it skipped."""

import os
import shutil
import subprocess
from pathlib import Path


def missing(binaries) -> list[str]:
    return [b for b in binaries if not (shutil.which(b) or Path("/usr/sbin", b).exists())]


def unavailable_reason(binaries, packages) -> str | None:
    """Why ``packages`` (providing ``binaries``) cannot be had here; None when they can."""
    if not missing(binaries):
        return None
    if os.geteuid() != 0:
        return f"not root: cannot apt-get install {' '.join(packages)}"
    if not shutil.which("apt-get"):
        return f"no apt-get to install {' '.join(packages)}"
    return None


def install(binaries, packages, timeout: float = 600) -> None:
    """apt-get install ``packages``, only when one of ``binaries`` is missing."""
    if not missing(binaries):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:  # a stale package list: update once and retry
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=timeout)
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
