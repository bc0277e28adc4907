"""Saliency maps on disk: computing every configured method for a model, writing and reading
the map files, the XRAI segment cache.

Layout (see README, "Contracts"), under ``results/{dataset}/maps/{arch}/fold{k}/``:

* ``{method}/trained.npy``: float16 ``[n_eval, S, S]`` in [0, 1], rows in
  ``eval_images.csv`` order; ``{method}/trained.flags.npy``: bool ``[n_eval]``, True where
  the raw attribution was constant (the map is then all zeros).
* ``{method}/{mode}/{k:02d}_{block}.npy`` (+ ``.flags.npy``): the same after randomizing the
  model's blocks (mode ``cascade``: blocks 1..k; ``independent``: block k only).

``results/{dataset}/maps/xrai_segments.npz`` holds XRAI's segments of every evaluation image
(they depend only on the image), so no saliency job recomputes them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

from . import methods, models, seeds

MAP_DTYPE = np.float16


def map_path(folder: str | Path, method: str, stem: str) -> Path:
    """``folder/{method}/{stem}.npy``; ``stem`` is ``trained`` or ``{mode}/{label}``."""
    return Path(folder) / method / f"{stem}.npy"


def flags_path(folder: str | Path, method: str, stem: str) -> Path:
    return Path(folder) / method / f"{stem}.flags.npy"


def save_maps(folder: str | Path, method: str, stem: str, maps: np.ndarray, flags: np.ndarray) -> None:
    maps = np.asarray(maps)
    flags = np.asarray(flags, bool)
    if maps.ndim != 3 or flags.shape != (maps.shape[0],):
        raise ValueError(f"maps [n, S, S] and flags [n] expected, got {maps.shape} and {flags.shape}")
    path = map_path(folder, method, stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, maps.astype(MAP_DTYPE))
    np.save(flags_path(folder, method, stem), flags)


def load_maps(folder: str | Path, method: str, stem: str) -> tuple[np.ndarray, np.ndarray]:
    """(maps float16 [n, S, S], flags bool [n])."""
    return np.load(map_path(folder, method, stem)), np.load(flags_path(folder, method, stem))


# --------------------------------------------------------------------------- settings

def parse_settings(items: Iterable[str], method_ids: Sequence[str] | None = None) -> dict[str, dict]:
    """``["sg.samples=25", "xrai.algorithm=fast"]`` → ``{"sg": {"samples": 25}, "xrai": {...}}``.

    Values are read as YAML (numbers, booleans, ``null``). Unknown methods or settings are an
    error naming them.
    """
    known = method_ids or list(methods.METHODS)
    out: dict[str, dict] = {}
    for item in items:
        key, sep, value = item.partition("=")
        method, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise ValueError(f"setting {item!r}: expected method.name=value, e.g. sg.samples=25")
        if method not in known:
            raise ValueError(f"setting {item!r}: unknown method {method!r}; known: {', '.join(known)}")
        out.setdefault(method, {})[name] = yaml.safe_load(value)
    for method, settings in out.items():
        methods.resolve_settings(method, settings)  # unknown names raise here
    return out


# --------------------------------------------------------------------------- XRAI segments

def compute_segments(images_uint8: np.ndarray, workers: int = 1) -> list[list[np.ndarray]]:
    """XRAI's segments of each image (``methods.xrai_segments`` of the preprocessed image)."""
    x = models.preprocess(np.asarray(images_uint8))
    if workers > 1 and len(x) > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(min(workers, len(x))) as pool:
            return pool.map(methods.xrai_segments, list(x.numpy()))
    return [methods.xrai_segments(xi) for xi in x]


def save_segments(path: str | Path, index: Sequence[int], segments: Sequence[Sequence[np.ndarray]]) -> None:
    """Segments of each image packed as bits: ``index`` (array rows), ``counts``, ``shape``,
    ``bits`` (uint8 ``[sum(counts), ceil(S*S/8)]``)."""
    if len(index) != len(segments):
        raise ValueError(f"{len(index)} indices but segments of {len(segments)} images")
    shape = np.asarray(segments[0][0].shape, np.int64)
    flat = [np.asarray(s, bool).reshape(-1) for segs in segments for s in segs]
    bits = np.packbits(np.stack(flat), axis=1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, index=np.asarray(index, np.int64),
                            counts=np.asarray([len(s) for s in segments], np.int64), shape=shape, bits=bits)


def load_segments(path: str | Path) -> tuple[np.ndarray, list[list[np.ndarray]]]:
    """(index, per-image list of bool ``[S, S]`` segments) from `save_segments`' file."""
    with np.load(path) as z:
        index, counts, shape, bits = z["index"], z["counts"], tuple(z["shape"]), z["bits"]
    masks = np.unpackbits(bits, axis=1, count=int(np.prod(shape))).astype(bool).reshape((-1, *shape))
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return index, [list(masks[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def segment_cache(images_uint8: np.ndarray, segments: Sequence[Sequence[np.ndarray]]) -> dict:
    """The ``segment_cache`` dict XRAI reads: preprocessed-image key → segments."""
    x = models.preprocess(np.asarray(images_uint8))
    if len(x) != len(segments):
        raise ValueError(f"{len(x)} images but segments of {len(segments)}")
    return {methods.image_key(xi): list(segs) for xi, segs in zip(x, segments)}


# --------------------------------------------------------------------------- computing

def method_settings(method: str, settings: dict[str, dict], seed: int, max_batch: int | None,
                    cache: dict | None) -> dict:
    """The settings one method is called with: the config's, the run's seed and batch cap."""
    merged = dict(settings.get(method, {}))
    defaults = methods.DEFAULT_SETTINGS[method]
    if "seed" in defaults:
        merged.setdefault("seed", seed)
    if "max_batch" in defaults and max_batch:
        merged.setdefault("max_batch", max_batch)
    if method == "xrai":
        merged["segment_cache"] = cache
    if method == "ggcam" and "layer" not in merged and "layer" in settings.get("gcam", {}):
        merged["layer"] = settings["gcam"]["layer"]  # Guided Grad-CAM uses Grad-CAM's layer
    return merged


def batch_seed(seed: int, method: str, model_key: Sequence, start: int) -> int:
    """Seed of the random draws of ``method`` (SmoothGrad noise, the ``random`` control) for the
    batch starting at evaluation row ``start`` of the model ``model_key`` (dataset, arch, fold,
    step): the stream ``(seed, "saliency", method, *model_key, start)`` of `salaudit.seeds`."""
    return seeds.derive(seed, "saliency", method, *model_key, start)


def compute_all(model: nn.Module, arch: str, images_uint8: np.ndarray, method_ids: Sequence[str],
                settings: dict[str, dict], *, seed: int = 0, batch_size: int = 16, max_batch: int | None = 64,
                device: torch.device | str = "cpu", segments: dict | None = None,
                model_key: Sequence = ()) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Maps (float16 ``[n, S, S]``) and flags (bool ``[n]``) of every method, for one model.

    Images go through the model ``batch_size`` at a time on ``device``; ``segments`` is the
    XRAI segment cache (`segment_cache`), filled on the fly when it lacks an image.

    Seeds: every random draw (SmoothGrad noise, the ``random`` control) comes from
    `batch_seed` of the method, the model (``model_key``: dataset, architecture, fold,
    randomization step) and the batch, so every model gets its own draws, as the paper's fresh
    noise for every map, and a rerun is bit-identical. GGCAM reuses the batch's GBP and GCAM maps
    when those methods are computed too (the same numbers: GGCAM is their product).
    """
    device = torch.device(device)
    model = model.to(device).eval()
    cache = segments if segments is not None else {}
    n = len(images_uint8)
    out = {method: (np.zeros((n, *images_uint8.shape[1:]), MAP_DTYPE), np.zeros(n, bool)) for method in method_ids}
    resolved = {method: method_settings(method, settings, seed, max_batch, cache) for method in method_ids}
    reuse = ({"gbp", "gcam"} <= set(method_ids)
             and resolved.get("ggcam", {}).get("layer") == resolved["gcam"].get("layer"))
    order = sorted(method_ids, key=lambda m: m == "ggcam")  # GBP and GCAM first
    for start in range(0, n, batch_size):
        x = models.preprocess(np.asarray(images_uint8[start:start + batch_size])).to(device)
        target = methods.predicted_class(model, x)  # one forward pass for every method
        batch = {}
        for method in order:
            s = resolved[method]
            if "seed" in s:
                s = {**s, "seed": batch_seed(s["seed"], method, model_key, start)}
            if method == "ggcam" and reuse:
                batch[method] = methods.guided_gradcam(batch["gbp"], batch["gcam"])
            else:
                batch[method] = methods.compute_maps(method, model, x, s, arch=arch, target=target)
            m, f = batch[method]
            out[method][0][start:start + len(x)] = m.astype(MAP_DTYPE)
            out[method][1][start:start + len(x)] = f
    return out


class Timer:
    """Wall-clock seconds per phase; ``report()`` is the ``TIMING {...}`` log line."""

    def __init__(self, start: float | None = None):
        self.phases: dict[str, float] = {}
        self._last = start if start is not None else time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - self._last
        self._last = now

    def report(self) -> str:
        import json

        return "TIMING " + json.dumps({f"{k}_s": round(v, 3) for k, v in self.phases.items()})
