"""The arrays and checkpoints a job reads, checked before it uses them: a damaged file (cut short
by a full disk, a killed copy) is one line naming the file and the rule that makes it, instead of
numpy's ``mmap length is greater than file size`` deep in a traceback. Torch is imported only to
read a checkpoint.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np

from salaudit import layout

# The rule that writes each results file (the workflow's rule names).
PRODUCERS = {
    layout.IMAGES: "convert", layout.MASKS: "convert", layout.AVERAGE_MASK: "average_mask",
    layout.XRAI_SEGMENTS: "xrai_segments", layout.CLASSIFIER_MODEL: "train_classifier",
    layout.LABEL_CLASSIFIER_MODEL: "train_label_randomized", layout.LOCALIZER_MODEL: "train_localizer",
    layout.LOCALIZER_MAPS: "train_localizer",
    layout.RANDOMIZED_MAP: "randomized_saliency_{arch}", layout.TRAINED_MAP: "saliency",
}


class DamagedFile(ValueError):
    """A file a job reads is not what its producer wrote; the message says how to remake it."""


def _pattern(template: str) -> re.Pattern:
    """A regex matching a layout template's paths under any results root."""
    path = template.removeprefix(layout.RESULTS + "/")
    parts = re.split(r"\{(\w+)\}", path)
    group = {"suffix": r"(?:\.flags)?", "stem": r"[^/]+(?:/[^/]+)?"}  # a stem may be {mode}/{label}
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>{group.get(p, '[^/]+')})" for i, p in enumerate(parts))
    return re.compile(rf"(?:^|/){regex}$")


_PATTERNS = [(_pattern(template), rule) for template, rule in PRODUCERS.items()]


def producer(path: str | Path) -> str | None:
    """The rule that makes ``path`` (None when it is not a results file of `PRODUCERS`)."""
    text = Path(path).as_posix()
    for pattern, rule in _PATTERNS:
        found = pattern.search(text)
        if found:
            values = found.groupdict()
            if rule == "saliency" and values.get("stem") == layout.LABEL_RANDOMIZED_STEM:
                return "label_randomized_saliency"
            return rule.format(**values)
    return None


def _remedy(path: str | Path) -> str:
    rule = producer(path)
    return f"; remake it: snakemake --forcerun {rule}" if rule else ""


def damaged(path: str | Path, what: str) -> DamagedFile:
    return DamagedFile(f"{path}: damaged ({what}){_remedy(path)}")


def check_npy(path: str | Path) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype of a ``.npy`` file whose size matches its header; `DamagedFile` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise DamagedFile(f"{path}: missing{_remedy(path)}")
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(handle)
            offset = handle.tell()
    except (ValueError, EOFError, OSError) as error:
        raise damaged(path, f"not a .npy file: {error}") from None
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = path.stat().st_size
    if size != expected:
        raise damaged(path, f"{size} of {expected} bytes")
    return tuple(shape), dtype


def load_npy(path: str | Path, mmap: bool = True) -> np.ndarray:
    """`np.load` of a checked ``.npy`` file (memory-mapped unless ``mmap`` is False)."""
    check_npy(path)
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def check_zip(path: str | Path) -> None:
    """A ``.npz`` or ``torch.save`` file (both zip archives) that opens and whose members' CRCs hold."""
    path = Path(path)
    if not path.is_file():
        raise DamagedFile(f"{path}: missing{_remedy(path)}")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise damaged(path, f"not a complete archive: {error}") from None
    if bad is not None:
        raise damaged(path, f"member {bad} fails its checksum")
