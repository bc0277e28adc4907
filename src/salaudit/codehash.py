"""What code a rule runs, read at parse time without importing it: a script, every salaudit
module it imports (transitively, lazy imports inside functions included) and the third-party
modules they import. Torch-free; the workflow gives each rule ``code_version`` of its script as a
param, so an upgrade reruns exactly the jobs whose code changed (Snakemake's params trigger),
wherever the checkout lies (the version hashes file contents and package-relative names, never
absolute paths). tests/unit/workflow/test_envs.py checks each rule's conda env with `scan`.
"""

from __future__ import annotations

import ast
import hashlib
import sys
from functools import lru_cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent  # src/salaudit


def module_file(name: str) -> Path | None:
    """The file of a salaudit module (``salaudit.a.b``), or None when ``name`` is not one."""
    path = PACKAGE.parent.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@lru_cache(maxsize=None)
def _imports(path: Path) -> tuple[frozenset[str], frozenset[Path]]:
    """Third-party top-level modules and salaudit module files one file imports (at any depth)."""
    outside, inside = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] != "salaudit":
                outside.add(parts[0])
                continue
            # importing salaudit.a.b runs salaudit/__init__ and salaudit/a/__init__ too
            inside |= {f for f in (module_file(".".join(parts[:k])) for k in range(1, len(parts) + 1)) if f}
    return frozenset(outside - set(sys.stdlib_module_names) - {"__future__"}), frozenset(inside)


@lru_cache(maxsize=None)
def scan(script: Path) -> tuple[tuple[Path, ...], frozenset[str]]:
    """``(files, third_party)``: the script and every salaudit module file it runs (sorted), and
    the third-party top-level modules they import."""
    files, outside, todo = set(), set(), [Path(script).resolve()]
    while todo:
        path = todo.pop()
        if path in files:
            continue
        files.add(path)
        theirs, ours = _imports(path)
        outside |= theirs
        todo += sorted(ours)
    return tuple(sorted(files)), frozenset(outside)


def _name(path: Path) -> str:
    """A file's name independent of where the checkout lies."""
    try:
        return path.relative_to(PACKAGE.parent).as_posix()
    except ValueError:
        return path.name


@lru_cache(maxsize=None)
def code_version(script: str | Path) -> str:
    """16 hex digits that change when the script or any salaudit module it runs changes."""
    digest = hashlib.sha256()
    # In the order of the location-independent names: sorted by absolute path, a checkout whose
    # scripts/ sorts after the installed package's folder (/tmp/copy/scripts vs /check/src) would
    # hash the same files in another order.
    for path in sorted(scan(Path(script))[0], key=_name):
        digest.update(_name(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
