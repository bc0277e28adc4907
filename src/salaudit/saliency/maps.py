"""Saliency maps on disk: computing every configured method for a model, writing and reading
the map files, the XRAI segment cache.

Layout (see README, "Contracts"), under ``results/{dataset}/maps/{arch}/fold{k}/``:

* ``{method}/trained.npy``: float16 ``[n_eval, S, S]`` in [0, 1], rows in
  ``eval_images.csv`` order; ``{method}/trained.flags.npy``: bool ``[n_eval]``, True where
  the raw attribution was constant (the map is then all zeros).
* ``{method}/{mode}/{k:02d}_{block}.npy`` (+ ``.flags.npy``): the same after randomizing the
  model's blocks (mode ``cascade``: blocks 1..k; ``independent``: block k only).

``results/{dataset}/maps/xrai_segments.npz`` holds XRAI's segments of every evaluation image
(they depend only on the image), so no saliency job recomputes them (`salaudit.saliency.segments`,
whose functions this module re-exports).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from salaudit import files, layout, models, seeds
from salaudit.progress import Progress
from salaudit.saliency import methods, randomize
from salaudit.saliency.postprocess import guided_gradcam
from salaudit.saliency.segments import compute_segments, load_segments, save_segments, segment_cache  # noqa: F401

MAP_DTYPE = np.float16


def map_path(folder: str | Path, method: str, stem: str) -> Path:
    """``folder/{method}/{stem}.npy`` (`salaudit.layout`); ``stem``: ``trained`` or ``{mode}/{label}``."""
    return layout.map_file(folder, method, stem)


def flags_path(folder: str | Path, method: str, stem: str) -> Path:
    return layout.map_file(folder, method, stem, layout.FLAGS_SUFFIX)


def save_maps(folder: str | Path, method: str, stem: str, maps: np.ndarray, flags: np.ndarray) -> list[Path]:
    """Write one method's maps and flags; returns the two files' paths."""
    maps = np.asarray(maps)
    flags = np.asarray(flags, bool)
    if maps.ndim != 3 or flags.shape != (maps.shape[0],):
        raise ValueError(f"maps [n, S, S] and flags [n] expected, got {maps.shape} and {flags.shape}")
    path = map_path(folder, method, stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, maps.astype(MAP_DTYPE))
    np.save(flags_path(folder, method, stem), flags)
    return [path, flags_path(folder, method, stem)]


def load_maps(folder: str | Path, method: str, stem: str) -> tuple[np.ndarray, np.ndarray]:
    """(maps float16 [n, S, S], flags bool [n])."""
    return (files.load_npy(map_path(folder, method, stem), mmap=False),
            files.load_npy(flags_path(folder, method, stem), mmap=False))


# --------------------------------------------------------------------------- computing

def method_settings(method: str, saliency: dict, seed: int, cache: dict | None, prior: np.ndarray | None = None) -> dict:
    """The settings one method is called with: the config's (``saliency``, the validated block),
    the run's seed and batch cap (`methods.default_settings`), XRAI's segment cache, the prior
    control's average mask."""
    merged = methods.default_settings(method, saliency, seed)
    if method == "xrai":
        merged["segment_cache"] = cache
    if method == "prior":
        merged["prior"] = prior
    return merged


def batch_seed(seed: int, method: str, model_key: Sequence, start: int) -> int:
    """Seed of the random draws of ``method`` (SmoothGrad noise, the ``random`` control) for the
    batch starting at evaluation row ``start`` of the model ``model_key`` (dataset, arch, fold,
    step): the stream ``(seed, "saliency", method, *model_key, start)`` of `salaudit.seeds`."""
    return seeds.derive(seed, "saliency", method, *model_key, start)


def compute_all(model: nn.Module, arch: str, images_uint8: np.ndarray, saliency: dict, *, seed: int,
                device: torch.device | str, segments: dict | None = None, prior: np.ndarray | None = None,
                model_key: Sequence = (), log=None, input_spec: dict | None = None,
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Maps (float16 ``[n, S, S]``) and flags (bool ``[n]``) of every method of ``saliency`` (the
    config's validated ``saliency`` block: ``methods``, their settings, ``batch_size``,
    ``max_batch``), for one model.

    Images go through the model ``batch_size`` at a time on ``device``; ``segments`` is the
    XRAI segment cache (`segment_cache`), filled on the fly when it lacks an image; ``prior`` the
    average training mask (float ``[S, S]``) the ``prior`` control shows. With ``log``, a progress
    line every 30 s (images done, rate, time left). ``input_spec``: what the model takes (a
    checkpoint's ``meta["input"]``; None: the project's preprocessing, `salaudit.models.preprocess`).

    Seeds: every random draw (SmoothGrad noise, the ``random`` control) comes from
    `batch_seed` of the method, the model (``model_key``: dataset, architecture, fold,
    randomization step) and the batch, so every model gets its own draws, as the paper's fresh
    noise for every map, and a rerun is bit-identical. GGCAM reuses the batch's GBP and GCAM maps
    when those methods are computed too (the same numbers: GGCAM is their product).
    """
    device = torch.device(device)
    model = model.to(device).eval()
    cache = segments if segments is not None else {}
    method_ids, batch_size = list(saliency["methods"]), saliency["batch_size"]
    n = len(images_uint8)
    out = {method: (np.zeros((n, *images_uint8.shape[1:]), MAP_DTYPE), np.zeros(n, bool)) for method in method_ids}
    resolved = {method: method_settings(method, saliency, seed, cache, prior) for method in method_ids}
    if models.input_spec(input_spec) != models.DEFAULT_INPUT:  # a model brought as weights
        for method, s in resolved.items():  # baselines and bounds as that model sees the grey levels
            if "baseline" in s:
                s["baseline"] = models.to_input(s["baseline"], input_spec)
            if method == "lrp":
                s["bounds"] = (models.to_input(-1.0, input_spec), models.to_input(1.0, input_spec))
    reuse = ({"gbp", "gcam"} <= set(method_ids)
             and resolved.get("ggcam", {}).get("layer") == resolved["gcam"].get("layer"))
    order = sorted(method_ids, key=lambda m: m == "ggcam")  # GBP and GCAM first
    progress = Progress(n, f"  maps of {'/'.join(map(str, model_key))}", log=log) if log else None
    for start in range(0, n, batch_size):
        x = models.preprocess(np.asarray(images_uint8[start:start + batch_size]), input_spec).to(device)
        target = methods.predicted_class(model, x)  # one forward pass for every method
        batch = {}
        for method in order:
            s = resolved[method]
            if "seed" in s:
                s = {**s, "seed": batch_seed(s["seed"], method, model_key, start)}
            if method == "ggcam" and reuse:
                batch[method] = guided_gradcam(batch["gbp"], batch["gcam"])
            else:
                batch[method] = methods.compute_maps(method, model, x, s, arch=arch, target=target)
            m, f = batch[method]
            out[method][0][start:start + len(x)] = m.astype(MAP_DTYPE)
            out[method][1][start:start + len(x)] = f
        if progress:
            progress.update(len(x))
    return out


def check_gradcam_layer(model: nn.Module, arch: str, image_size: int, saliency: dict, device, log=print) -> None:
    """Log Grad-CAM's layer and its extent at ``image_size``; warn (stderr) when it is 1 x 1: every
    GCAM, GGCAM, GCAMPP and EIGENCAM map is then constant (flagged degenerate)."""
    import sys

    from salaudit.saliency.cam import gradcam_extent, gradcam_layer_name

    layer = saliency["gcam"]["layer"]
    rows, cols = gradcam_extent(model.to(device), arch, image_size, layer)
    name = gradcam_layer_name(layer, arch)
    log(f"Grad-CAM layer {name} of {arch}: {rows}x{cols} at {image_size} px")
    if rows * cols == 1:
        print(f"WARNING: Grad-CAM layer {name} of {arch} is 1x1 at {image_size} px: every GCAM, GGCAM, GCAMPP and EIGENCAM "
              f"map is constant (flagged degenerate); set saliency.gcam.layer for {arch} (a layer with "
              "spatial extent) or a larger image_size", file=sys.stderr)


def write_model_maps(model: nn.Module, arch: str, fold, out: str | Path, images_uint8: np.ndarray, saliency: dict, *,
                     seed: int, dataset: str, device, cache: dict, mode: str | None, timer: "Timer",
                     prior: np.ndarray | None = None, stem: str = layout.TRAINED_STEM, log=print,
                     input_spec: dict | None = None) -> list[Path]:
    """Every method's maps of one model into its maps folder ``out`` (stem ``trained``, or
    ``stem``: e.g. ``label_randomized`` for a model trained on permuted labels), or with ``mode``
    (``cascade``, ``independent``, ``bottom_up``) of each of its randomization steps
    (`salaudit.saliency.randomize`; stems ``{mode}/{label}``). The model's random streams are
    named by ``(dataset, arch, fold, stem)``; ``prior``: the average mask of the ``prior`` control;
    ``input_spec``: what the model takes (`compute_all`). Returns the files written."""
    if {"gcam", "ggcam", "gcampp", "eigencam"} & set(saliency["methods"]):
        check_gradcam_layer(model, arch, images_uint8.shape[-1], saliency, device, log)

    written = []

    def run(net, name):
        result = compute_all(net, arch, images_uint8, saliency, seed=seed, device=device, segments=cache,
                             prior=prior, model_key=(dataset, arch, fold, name), log=log, input_spec=input_spec)
        timer.lap("compute")
        for method, (m, f) in result.items():
            written.extend(save_maps(out, method, name, m, f))
            log(f"{out} {name} {method}: {int(f.sum())} flagged of {len(f)}")
        timer.lap("write")

    if mode is None:
        run(model, stem)
        return written
    for step, net in randomize.randomized_models(model, arch, seed, mode, replicate=(dataset, fold)):
        timer.lap("randomize")
        run(net, layout.randomized_stem(mode, step.label))
    return written


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
