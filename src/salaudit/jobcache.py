"""A finished job's outputs kept beside them, so that running the job again with the same code,
arguments and inputs restores them instead of recomputing: what `kill -INT <snakemake>` (after
which Snakemake marks the outputs of the jobs it let finish incomplete), `--forcerun`, a deleted
output or a lost `.snakemake/` folder would otherwise cost - hours per training or saliency job at
the paper's scale.

A job is named by the folders it writes into (``folders``) and a ``name`` (one folder may hold
several jobs' outputs, e.g. a model's trained and randomized maps). After the job wrote its
outputs, `JobCache.store` hard-links each into ``<their common folder>/.salaudit-cache/<job>/``
(no copy: the same bytes, so no extra disk while the outputs exist; Snakemake's deletion of an
output before a rerun leaves the link) with a manifest: the job's key and each file's path
(relative to the common folder), size and SHA-256. The key hashes the script's code version
(`salaudit.codehash`), its command-line arguments (paths as given: relative in the workflow; not those in `HOW`) and
the SHA-256 of every input file's bytes (so the cache survives a moved or copied results tree,
and an input rewritten with the same bytes keeps it). `JobCache.restore` links the files back only when the key matches and every file
still has the bytes it was stored with; otherwise the job computes as usual and `store` replaces
the entry (one per job). ``SALAUDIT_RECOMPUTE=1`` skips the cache (always compute).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from salaudit import codehash, layout

CACHE = layout.JOB_CACHE
MANIFEST = layout.JOB_CACHE_MANIFEST
# Arguments that say how a job runs, not what it computes (Snakemake does not rerun for them either).
HOW = ("threads", "workers", "checkpoint_seconds")


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _link(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source`` (a copy where the file system has none)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


class JobCache:
    """The cache of one job of ``script`` run with ``arguments`` (its parsed command line, e.g.
    ``vars(args)``), reading ``inputs`` (files) and writing into ``folders``; ``name`` tells apart
    the jobs writing into the same folders."""

    def __init__(self, script: str | Path, arguments: dict, inputs: Iterable[str | Path],
                 folders: Iterable[str | Path], name: str = "job"):
        folders = [Path(p).absolute() for p in folders]
        if not folders:
            raise ValueError("a job cache needs the folders the job writes into")
        self.root = Path(os.path.commonpath(folders))
        where = "\0".join(sorted(p.relative_to(self.root).as_posix() for p in folders))
        self.folder = self.root / CACHE / f"{name}-{hashlib.sha256(where.encode()).hexdigest()[:12]}"
        self.manifest = self.folder / MANIFEST
        digest = hashlib.sha256(codehash.code_version(Path(script)).encode())
        what = {k: v for k, v in arguments.items() if k not in HOW}
        digest.update(json.dumps(what, sort_keys=True, default=str).encode())
        for path in inputs:
            digest.update(f"\0{sha256(path)}".encode())
        self.key = digest.hexdigest()[:32]

    def restore(self, log: Callable[[str], object] = print) -> bool:
        """Link the stored outputs back when the key and every file's bytes match; True then."""
        if os.environ.get("SALAUDIT_RECOMPUTE") == "1":
            log("SALAUDIT_RECOMPUTE=1: the job cache is not read")
            return False
        if not self.manifest.is_file():
            return False
        try:
            stored = json.loads(self.manifest.read_text())
            entries, key = stored["files"], stored["key"]
        except (ValueError, KeyError, TypeError):
            log(f"{self.manifest} is unreadable: recomputing")
            return False
        if key != self.key:
            log("the job's code, arguments or inputs changed since its outputs were cached: recomputing")
            return False
        for entry in entries:
            kept = self.folder / entry["name"]
            if not kept.is_file() or kept.stat().st_size != entry["size"] or sha256(kept) != entry["sha256"]:
                log(f"the cached {entry['output']} no longer has the bytes it was stored with: recomputing")
                return False
        for entry in entries:
            _link(self.folder / entry["name"], self.root / entry["output"])
        log(f"restored {len(entries)} output file(s) from {self.folder} (same code, arguments and input bytes): "
            "nothing recomputed; SALAUDIT_RECOMPUTE=1 recomputes")
        return True

    def store(self, outputs: Iterable[str | Path]) -> None:
        """Keep the job's ``outputs`` (files; call once they are all written)."""
        if self.folder.exists():
            shutil.rmtree(self.folder)  # one entry per job: the previous one is stale
        self.folder.mkdir(parents=True)
        entries = []
        for index, output in enumerate(Path(p).absolute() for p in outputs):
            name = f"{index:05d}_{output.name}"
            _link(output, self.folder / name)
            entries.append({"name": name, "output": output.relative_to(self.root).as_posix(),
                            "size": output.stat().st_size, "sha256": sha256(output)})
        # written last: an interrupted store leaves no manifest, hence no entry
        tmp = self.manifest.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": self.key, "files": entries}, indent=1))
        tmp.replace(self.manifest)
