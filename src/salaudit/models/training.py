"""Training shared by classifiers and localizers: seeding, resumable epochs, early stopping.

Determinism: every random draw of epoch *e* (data order, augmentation, dropout) comes from
the stream ``(seed, stage, model, fold, e)`` of `salaudit.seeds`, and the complete state (weights,
optimizer, best weights so far, history) is saved after an epoch once ``checkpoint_seconds``
have passed since the last save (every epoch with 0; never after the last epoch, whose job
writes model.pt next). A job rerun after an interruption resumes after the last saved epoch
and, on CPU, ends with bit-identical weights.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from salaudit import config, seeds
from salaudit.progress import Progress


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' asked for, but torch sees no GPU")
    return torch.device(name)


MEMORY_FORMATS = ("auto", "channels_last", "contiguous")


def memory_format(name: str, arch: str, device: torch.device) -> torch.memory_format:
    """The memory format a classifier trains in: ``channels_last``, ``contiguous``, or ``auto``:
    channels-last on CUDA (bf16 convolutions run in NHWC), on a CPU where the registry's
    ``cpu_channels_last`` says so (DenseNet121; `bench/training.py`, 96 px, one thread: 1.3x).
    The model learns the same either way; only the order of float operations differs, and so the
    demo's trained weights (InceptionV3 is 1.2x faster channels-last too, but stays contiguous:
    that is the model the demo's headline was checked with, BENCHMARKS.md)."""
    from salaudit.registry import get_spec

    if name not in MEMORY_FORMATS:
        raise ValueError(f"unknown memory_format {name!r}; known: {', '.join(MEMORY_FORMATS)}")
    if name == "auto":
        name = "channels_last" if device.type == "cuda" or get_spec(arch).cpu_channels_last else "contiguous"
    return torch.channels_last if name == "channels_last" else torch.contiguous_format


def autocast(device: torch.device):
    """Mixed precision (bfloat16) on CUDA; full precision on CPU, where it is deterministic."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def epoch_generator(seed: int, stage: str, *parts) -> torch.Generator:
    """The generator of the stream ``(seed, stage, *parts)`` (e.g. ``"train_classifier", arch,
    fold, epoch``); also reseeds torch's global RNG (dropout) from it."""
    value = seeds.derive(seed, stage, *parts)
    torch.manual_seed(value)
    return torch.Generator().manual_seed(value)


def restart_batchnorm_statistics(model: nn.Module) -> None:
    """Make BatchNorm's running statistics the plain average over the coming batches.

    Called at the start of every training epoch: with momentum 0.1 the running statistics
    of a from-scratch network trained for a few dozen steps still remember the first
    random-weight batches, so evaluation-mode outputs are close to constant. Averaging
    over the current epoch only (momentum ``None`` after a reset) tracks the weights.
    """
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None


def fingerprint(settings: dict) -> str:
    """Short hash of the settings a training state belongs to (a changed config restarts)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def augment(images: torch.Tensor, generator: torch.Generator, max_shift: float = 0.06,
            intensity: float = 0.1, masks: torch.Tensor | None = None):
    """Light augmentation: a random shift (edge-replicated) and brightness/contrast jitter.

    ``images`` is ``[B, C, S, S]`` in [-1, 1]; ``masks`` (``[B, 1, S, S]``) get the same shift.
    No flips: a chest X-ray's left and right are not interchangeable.
    """
    batch, _, size, _ = images.shape
    pad = int(round(max_shift * size))
    shifts = torch.randint(-pad, pad + 1, (batch, 2), generator=generator) if pad else torch.zeros(batch, 2, dtype=torch.long)
    scale = 1 + (torch.rand(batch, 1, 1, 1, generator=generator) * 2 - 1) * intensity
    offset = (torch.rand(batch, 1, 1, 1, generator=generator) * 2 - 1) * intensity
    out = (_shift(images, shifts, pad) * scale + offset).clamp(-1, 1)
    if masks is None:
        return out
    return out, _shift(masks, shifts, pad)


def _shift(x: torch.Tensor, shifts: torch.Tensor, pad: int) -> torch.Tensor:
    if pad == 0:
        return x
    size = x.shape[-1]
    padded = nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate")
    rows = [padded[i, :, pad + dy: pad + dy + size, pad + dx: pad + dx + size] for i, (dy, dx) in enumerate(shifts.tolist())]
    return torch.stack(rows)


def run_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, indices: np.ndarray, batch_size: int,
              generator: torch.Generator, make_batch: Callable, loss_of: Callable, device: torch.device,
              amp: Callable = nullcontext, memory_format: torch.memory_format = torch.contiguous_format,
              log: Callable[[str], None] | None = None) -> dict:
    """One training epoch, the loop every model shares: ``indices`` in a shuffled order (from
    ``generator``), batches of ``batch_size`` (each sorted; a last batch of one image is skipped,
    BatchNorm cannot train on it), BatchNorm statistics restarted first
    (`restart_batchnorm_statistics`).

    ``make_batch(rows, generator)`` returns the batch on the CPU, input first (augmented), e.g.
    ``(x, y)``; tensors go to ``device`` (the input in ``memory_format``), anything else (a list
    of boxes) as it is. ``loss_of(*batch)`` is computed under ``amp()``. Returns the mean loss
    and the images per second. With ``log``, an epoch that runs for minutes reports its progress
    every minute (the epoch's own line comes from `fit`).
    """
    began = time.perf_counter()
    restart_batchnorm_statistics(model)
    order = indices[torch.randperm(len(indices), generator=generator).numpy()]
    total, count = 0.0, 0
    progress = Progress(len(order), "  training", log=log, every_s=60.0) if log else None
    for start in range(0, len(order), batch_size):
        rows = np.sort(order[start:start + batch_size])
        if len(rows) < 2:
            continue
        x, *rest = make_batch(rows, generator)
        x = x.to(device, memory_format=memory_format)
        rest = [r.to(device) if torch.is_tensor(r) else r for r in rest]
        optimizer.zero_grad(set_to_none=True)
        with amp():
            loss = loss_of(x, *rest)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(rows)
        count += len(rows)
        if progress and count < len(order):  # the epoch's last line is fit's
            progress.update(len(rows))
    return {"loss": total / max(count, 1), "img_per_s": round(count / (time.perf_counter() - began), 1)}


CHECKPOINT_SECONDS = 60.0  # at most one saved training state per minute (see `fit`)


def add_training_arguments(parser) -> None:
    """The command-line arguments every training script shares (scripts/train_classifier.py,
    scripts/train_localizer.py): ``--fold``, ``--out``, ``--threads``, ``--checkpoint-seconds``
    and the config's ``--settings JSON`` (`salaudit.config.settings_argument`)."""
    parser.add_argument("--fold", type=int, required=True)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--threads", type=int, help="CPU threads for torch")
    parser.add_argument("--checkpoint-seconds", type=float, default=CHECKPOINT_SECONDS,
                        help="save the resumable training state after an epoch once this many seconds have passed "
                             "since the last save (0: after every epoch)")
    config.settings_argument(parser)


@dataclass
class FitResult:
    best_state: dict
    best_epoch: int
    best_score: float
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_epoch: Callable[[int], dict],
    validate: Callable[[], float | tuple[float, float]],
    *,
    epochs: int,
    patience: int,
    state_path: str | Path,
    settings: dict,
    log: Callable[[str], None] = print,
    score_name: str = "val_score",
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
) -> FitResult:
    """Run epochs with early stopping on ``validate()`` (higher is better), resumably.

    ``train_epoch(epoch)`` trains one epoch and returns numbers to log (e.g. loss).
    ``validate()`` returns the selection score, or ``(score, tiebreak)`` where the tiebreak
    (higher is better, e.g. minus the validation loss) decides between equal scores, which
    small validation folds often give. A NaN score never counts as an improvement. After
    an epoch the state goes to ``state_path`` when ``checkpoint_seconds`` have passed since the
    last save (or the start), except after the last epoch; an existing state with the same
    ``settings`` fingerprint is resumed. Full ties keep the earlier epoch.

    A state of InceptionV3 (weights, Adam's two moments, the best weights) is 350 MB: saving
    it after every 2-second CPU epoch took a fifth of a demo training job.
    """
    state_path = Path(state_path)
    key = fingerprint(settings)
    start_epoch, history, seconds = 0, [], 0.0
    best_state, best_epoch, best_key, stale = copy.deepcopy(model.state_dict()), -1, (-np.inf, -np.inf), 0
    if state_path.exists():
        saved = torch.load(state_path, map_location="cpu", weights_only=False)
        if saved["fingerprint"] == key:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            best_state, best_epoch, best_key = saved["best_state"], saved["best_epoch"], tuple(saved["best_key"])
            history, stale, seconds = saved["history"], saved["stale"], saved["seconds"]
            start_epoch = saved["epoch"] + 1
            log(f"resuming after epoch {start_epoch} of {epochs} from {state_path}")
        else:
            log(f"ignoring {state_path}: it belongs to other settings")
    last_save = time.perf_counter()
    for epoch in range(start_epoch, epochs):
        if stale >= patience:
            break
        began = time.perf_counter()
        model.train()
        numbers = train_epoch(epoch)
        model.eval()
        result = validate()
        key_now = tuple(float(v) for v in result) if isinstance(result, tuple) else (float(result), 0.0)
        score = key_now[0]
        took = time.perf_counter() - began
        seconds += took
        if not np.isnan(score) and key_now > best_key:
            best_state, best_epoch, best_key, stale = copy.deepcopy(model.state_dict()), epoch, key_now, 0
        else:
            stale += 1
        history.append({"epoch": epoch, **numbers, score_name: score, "seconds": round(took, 3)})
        shown = " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in numbers.items())
        log(f"epoch {epoch + 1}/{epochs} {shown} {score_name} {score:.4f} {took:.1f} s"
            + (" *best" if best_epoch == epoch else ""))
        last = epoch == epochs - 1 or stale >= patience
        if not last and time.perf_counter() - last_save >= checkpoint_seconds:
            torch.save({
                "fingerprint": key, "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "best_state": best_state, "best_epoch": best_epoch, "best_key": best_key,
                "history": history, "stale": stale, "seconds": seconds,
            }, state_path.with_suffix(".tmp"))
            state_path.with_suffix(".tmp").replace(state_path)  # never leave a half-written state
            last_save = time.perf_counter()
    if stale >= patience and len(history) < epochs:
        log(f"early stop: no {score_name} improvement for {patience} epochs")
    if best_epoch < 0:  # every validation score was NaN: keep the last epoch, say so
        log(f"WARNING: no valid {score_name} in any epoch; keeping the last epoch's weights")
        best_state, best_epoch = copy.deepcopy(model.state_dict()), len(history) - 1
    model.load_state_dict(best_state)
    return FitResult(best_state, best_epoch, best_key[0], history, seconds)


def predict_proba(model: nn.Module, images: np.ndarray, indices: np.ndarray, batch_size: int,
                  device: torch.device, preprocess: Callable,
                  memory_format: torch.memory_format = torch.contiguous_format) -> np.ndarray:
    """Probability of the abnormal class for ``images[indices]``, in batches."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            batch = preprocess(images[indices[start:start + batch_size]]).to(device, memory_format=memory_format)
            with autocast(device):
                logits = model(batch)
            out.append(torch.softmax(logits.float(), dim=1)[:, 1].cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)
