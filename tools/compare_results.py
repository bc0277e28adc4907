"""Compare two results trees file by file: byte-identical, or which files differ and how.

Used to prove that a refactoring is a move, not a rewrite (issue 14): run the same config
with the old and the new code, then

    python tools/compare_results.py BEFORE/results AFTER/results

It prints one line per file that is only on one side or whose bytes differ (with, for .npy,
.csv and .json files, whether the *values* are equal, wall-clock fields aside, and for
checkpoints whether the weights are), then a summary line, and exits 1 when any file's
bytes differ. `--ignore GLOB` (repeatable) leaves out files, e.g. a benchmarks folder.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import sys
from pathlib import Path

from salaudit.jobcache import CACHE


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files(root: Path, ignore: list[str]) -> dict[str, Path]:
    """The files under ``root`` to compare: every one but the job caches (`salaudit.jobcache`: links
    to outputs that are compared anyway) and those matching an ``ignore`` pattern."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if CACHE in path.relative_to(root).parts:
            continue
        if path.is_file() and not any(fnmatch.fnmatch(rel, pattern) for pattern in ignore):
            found[rel] = path
    return found


TIMING_FIELDS = ("seconds", "per_s")  # wall-clock measurements: they differ between any two runs


def is_timing(key) -> bool:
    return any(field in str(key) for field in TIMING_FIELDS)


def without_timings(value):
    """A JSON value with every key that holds a wall-clock measurement left out, recursively."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if not is_timing(k)}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def same_checkpoint(a: Path, b: Path) -> str:
    """Two model.pt files: are their weights equal, and which other entries differ (wall-clock
    fields aside, as in `same_values`)?"""
    import torch

    x, y = (torch.load(p, map_location="cpu", weights_only=False) for p in (a, b))
    wx, wy = x.get("state_dict", {}), y.get("state_dict", {})
    same_weights = wx.keys() == wy.keys() and all(torch.equal(wx[k], wy[k]) for k in wx)
    other = sorted(k for k in set(x) | set(y)
                   if k != "state_dict" and without_timings(x.get(k)) != without_timings(y.get(k)))
    return ("weights equal" if same_weights else "weights differ") + (
        f"; entries differing: {', '.join(other)}" if other else "")


def same_values(a: Path, b: Path) -> str:
    """For a file whose bytes differ: are its values equal anyway? ('' when not checked).

    Wall-clock fields (keys or columns naming seconds or a rate per second) are left out of the
    JSON and CSV comparisons; the answer says so when only they differ.
    """
    try:
        if a.suffix == ".npy":
            import numpy as np

            x, y = np.load(a, allow_pickle=False), np.load(b, allow_pickle=False)
            return "values equal" if x.shape == y.shape and np.array_equal(x, y, equal_nan=True) else "values differ"
        if a.suffix == ".csv":
            import pandas as pd

            x, y = pd.read_csv(a), pd.read_csv(b)
            if x.equals(y):
                return "values equal"
            keep = [c for c in x.columns if not is_timing(c)]
            same = list(x.columns) == list(y.columns) and x[keep].equals(y[keep])
            return "values equal apart from timings" if same else "values differ"
        if a.suffix == ".json":
            import json

            x, y = json.loads(a.read_text()), json.loads(b.read_text())
            if x == y:
                return "values equal"
            return "values equal apart from timings" if without_timings(x) == without_timings(y) else "values differ"
        if a.suffix == ".pt":
            return same_checkpoint(a, b)
    except Exception as error:  # a file the reader cannot parse: report it, compare bytes only
        return f"unreadable ({error.__class__.__name__})"
    return ""


def compare(before: Path, after: Path, ignore: list[str]) -> tuple[int, list[str]]:
    a, b = files(before, ignore), files(after, ignore)
    lines = []
    for rel in sorted(set(a) | set(b)):
        if rel not in b:
            lines.append(f"only before: {rel}")
        elif rel not in a:
            lines.append(f"only after:  {rel}")
        elif digest(a[rel]) != digest(b[rel]):
            detail = same_values(a[rel], b[rel])
            lines.append(f"differs:     {rel}" + (f" ({detail})" if detail else ""))
    return len(set(a) & set(b)), lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--ignore", action="append", default=[], metavar="GLOB",
                        help="relative paths to leave out (fnmatch), e.g. 'bench/*'")
    args = parser.parse_args(argv)
    for root in (args.before, args.after):
        if not root.is_dir():
            parser.error(f"{root}: not a directory")
    common, lines = compare(args.before, args.after, args.ignore)
    print("\n".join(lines))
    print(f"{common} files on both sides, {len(lines)} differing or one-sided")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
