"""Every seed of the project, from one place: ``(config seed, stage, *parts)`` → a random stream.

A stream is named by the config's ``seed``, the stage that draws from it (a string such as
``"train"`` or ``"saliency_noise"``) and whatever identifies the draw within the stage
(dataset, architecture, fold, epoch, randomization step, batch, ...). The name goes through
numpy's ``SeedSequence``, so two different names give statistically independent streams:
fold 1 at seed 0 never draws what fold 0 at seed 1 draws (as ``seed + fold`` did), and the
same name always gives the same stream (a rerun is bit-identical on the same device).

Parts may be integers (any sign) or strings; nothing here imports torch, so the workflow can
use it at parse time and so can the rules without torch in their environment (a torch generator
is ``torch.Generator().manual_seed(derive(...))``, where torch is).
"""

from __future__ import annotations

import hashlib

import numpy as np

_MASK64 = (1 << 64) - 1


def _word(part) -> int:
    """A non-negative integer for one part of a stream name (strings and negatives hashed)."""
    if isinstance(part, (bool, np.bool_)):
        part = int(part)
    if isinstance(part, (int, np.integer)) and int(part) >= 0:
        return int(part)
    tag = f"{type(part).__name__}:{part}".encode()
    return int.from_bytes(hashlib.sha256(tag).digest()[:8], "little")


def sequence(seed: int, stage: str, *parts) -> np.random.SeedSequence:
    """The ``SeedSequence`` of the stream ``(seed, stage, *parts)``."""
    if not isinstance(stage, str) or not stage:
        raise ValueError(f"a stream needs a stage name, got {stage!r}")
    return np.random.SeedSequence([_word(seed), _word(stage), *(_word(p) for p in parts)])


def derive(seed: int, stage: str, *parts) -> int:
    """A 63-bit integer seed of the stream (for APIs that take an int, e.g. ``torch.manual_seed``)."""
    state = sequence(seed, stage, *parts).generate_state(2, np.uint32)
    return ((int(state[1]) << 32) | int(state[0])) & (_MASK64 >> 1)


def rng(seed: int, stage: str, *parts) -> np.random.Generator:
    """A numpy ``Generator`` on the stream."""
    return np.random.default_rng(sequence(seed, stage, *parts))
