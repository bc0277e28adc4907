"""Per-image scores of one dataset's maps: localization utility (AUPRC, average precision,
pointing game and Otsu IoU of every map against the mask), sensitivity to randomization (SSIM and
Spearman of each randomized map with its trained map, the maps' complexity for eMPRT, the maps of
the replicates retrained on permuted labels, and the random-pair baselines), repeatability and
reproducibility (SSIM of two models' maps, and its image-shuffled null).

`score_dataset` reads the files of `salaudit.layout` under a results root and writes
``utility.csv``, ``randomization.csv``, ``random_pairs.csv`` and ``consistency.csv`` (columns
below and in the README). Degenerate maps (constant) and images (empty mask) are kept as rows
with a ``reason``; nothing is dropped. `read_scores` reads them back, the one reader the
scorecard and the figures share.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from salaudit import files, layout, registry
from salaudit.evaluation import metrics

UTILITY_COLUMNS = ["dataset", "source", "method", "arch", "fold", "image_id", "auprc", "average_precision",
                   "pointing_game", "iou_otsu", "positive_fraction", "reason"]
RANDOMIZATION_COLUMNS = ["dataset", "method", "arch", "fold", "mode", "step_index", "step", "last_step", "image_id",
                         "ssim", "spearman", "entropy", "entropy_trained", "reason"]
RANDOM_PAIR_COLUMNS = ["dataset", "method", "arch", "fold", "image_id", "ssim", "spearman", "n_pairs",
                       "n_degenerate_partners", "reason"]
CONSISTENCY_COLUMNS = ["dataset", "criterion", "method", "arch_a", "fold_a", "arch_b", "fold_b", "image_id", "ssim",
                       "null_ssim", "reason"]
# randomization.csv rows of the replicates retrained on permuted labels: one step, this mode
LABEL_MODE = "labels"

CONSTANT = "constant_map"
EMPTY_MASK = "empty_mask"
CHUNK = 16  # images per SSIM batch: bounded memory at any n_eval


@dataclass(frozen=True)
class ScorePlan:
    """What one dataset's maps are: the models (``archs`` x ``folds``), the methods, the
    localizer, the randomized architectures with their step labels (top-down), their folds and
    modes, and the replicates (arch, fold) retrained on permuted labels."""

    dataset: str
    methods: list[str]
    archs: list[str]
    folds: list[int]
    localizer: str
    steps: dict[str, list[str]]
    random_folds: list[int]
    modes: list[str]
    label_models: list[tuple[str, int]]


def read_scores(root: str | Path, dataset: str, name: str) -> pd.DataFrame:
    """One score table of a dataset (``name`` in `layout.SCORE_NAMES`), ids as strings and the
    empty ``reason`` (not degenerate) as ''."""
    frame = pd.read_csv(layout.path(layout.SCORE, root, dataset=dataset, name=name),
                        dtype={"image_id": str, "reason": str})
    frame["reason"] = frame["reason"].fillna("")
    return frame


def reason(*parts) -> str:
    """'' when nothing is degenerate, else the reasons joined by '+'."""
    return "+".join(dict.fromkeys(p for p in parts if p))


class MapReader:
    """Loads a map file with its flags and checks it against the evaluation list."""

    def __init__(self, n_eval: int, side: tuple[int, int]):
        self.shape = (n_eval, *side)

    def __call__(self, path: Path, flags: bool = True) -> tuple[np.ndarray, np.ndarray]:
        maps = files.load_npy(path)
        if maps.shape != self.shape:
            raise ValueError(f"{path}: shape {maps.shape}, expected {self.shape} (eval_images.csv order)")
        if flags:
            flags_path = path.with_suffix(layout.FLAGS_SUFFIX + path.suffix)
            constant = files.load_npy(flags_path, mmap=False).astype(bool)
            if constant.shape != (self.shape[0],):
                raise ValueError(f"{flags_path}: shape {constant.shape}, expected ({self.shape[0]},)")
        else:  # localizer maps carry no flags: a constant map (e.g. nothing painted) is degenerate
            constant = metrics.constant_maps(maps)
        return maps, constant


def utility_rows(dataset, source, method, arch, fold, maps, constant, truth, image_ids, fractions):
    for i, image_id in enumerate(image_ids):
        area, ap = metrics.precision_recall_areas(maps[i], truth[i])
        if constant[i] and fractions[i] > 0:
            # A constant map ranks no pixel above another: score it at chance, the positive
            # fraction (its average precision), not the trapezoid's (1 + fraction) / 2, which
            # sklearn's (recall 0, precision 1) end point would credit it with. The pointing
            # game and Otsu IoU give a constant map that chance by their own definitions.
            area = ap = float(fractions[i])
        yield (dataset, source, method, arch, fold, image_id, area, ap, metrics.pointing_game(maps[i], truth[i]),
               metrics.iou_otsu(maps[i], truth[i]), fractions[i],
               reason(CONSTANT if constant[i] else "", EMPTY_MASK if fractions[i] == 0 else ""))


def paired_ssim(a, b, window, data_range, moments_a=None):
    """SSIM of a[i] with b[i] for every image, in chunks."""
    out = np.empty(len(a))
    for start in range(0, len(a), CHUNK):
        part = slice(start, start + CHUNK)
        ma = None if moments_a is None else (moments_a[0][part], moments_a[1][part])
        out[part] = metrics.ssim_batch(a[part], b[part], window, data_range, moments_a=ma)
    return out


def shuffled_ssim(a, b, partners, window, data_range, moments_a=None, moments_b=None) -> np.ndarray:
    """``[n, pairs]``: the SSIM of ``a[i]`` with ``b[j]`` for every partner ``j`` of image *i*
    (``partners[i]``, other images): the image-shuffled null of a pair of models (A, B), or with
    ``a is b`` the random-pair baseline of one model. ``moments_*``: `metrics.local_moments` of
    ``a`` / ``b`` (computed here when absent). Partners are drawn with replacement, so each
    distinct (i, j) is computed once (8 images with 50 partners: 56 SSIMs instead of 400)."""
    ua = moments_a if moments_a is not None else metrics.local_moments(a, window)
    ub = moments_b if moments_b is not None else metrics.local_moments(b, window)
    n = len(a)
    wanted = np.repeat(np.arange(n), partners.shape[1]) * n + partners.ravel()
    distinct, where = np.unique(wanted, return_inverse=True)
    rows, cols = np.divmod(distinct, n)
    values = np.empty(len(distinct))
    for start in range(0, len(distinct), CHUNK):
        i, j = rows[start:start + CHUNK], cols[start:start + CHUNK]
        values[start:start + CHUNK] = metrics.ssim_batch(a[i], b[j], window, data_range, moments_a=(ua[0][i], ua[1][i]),
                                                         moments_b=(ub[0][j], ub[1][j]))
    return values[where].reshape(partners.shape)


def score_dataset(plan: ScorePlan, evaluation: dict, seed: int, root: str | Path, out: str | Path,
                  log=print) -> dict[str, pd.DataFrame]:
    """Score every map of ``plan`` (files under the results ``root``) into ``out``; ``evaluation``:
    the config's ``evaluation`` block (SSIM window and data range, random pairs, entropy bins);
    ``seed``: the random-pair draw's. Returns the four tables. Nothing is written until every
    map has been read: a damaged one (`salaudit.files`) leaves ``out`` untouched."""
    started = time.time()
    steps = plan.steps
    eval_images = pd.read_csv(layout.path(layout.EVAL_IMAGES, root, dataset=plan.dataset), dtype={"image_id": str})
    image_ids = eval_images["image_id"].tolist()
    n = len(image_ids)
    masks = files.load_npy(layout.path(layout.MASKS, root, dataset=plan.dataset))
    truth = np.asarray(masks[eval_images["index"].to_numpy()]) > 0
    fractions = truth.reshape(n, -1).mean(axis=1)
    read = MapReader(n, truth.shape[1:])
    window, data_range = evaluation["ssim_window"], evaluation["ssim_data_range"]
    log(f"{plan.dataset}: {n} evaluation images, {int((fractions == 0).sum())} with an empty mask; "
          f"SSIM window {window}, data_range {data_range}")

    def trained_path(arch, fold, method, stem=layout.TRAINED_STEM):
        return layout.path(layout.TRAINED_MAP, root, dataset=plan.dataset, arch=arch, fold=fold, method=method,
                           stem=stem)

    def step_path(arch, fold, method, mode, step):
        return layout.path(layout.RANDOMIZED_MAP, root, dataset=plan.dataset, arch=arch, fold=fold, method=method,
                           stem=mode, label=step)

    def localizer_path(fold):
        return layout.path(layout.LOCALIZER_MAPS, root, dataset=plan.dataset, localizer=plan.localizer, fold=fold)

    # ---------------------------------------------------------------- utility
    rows = []
    average = files.load_npy(layout.path(layout.AVERAGE_MASK, root, dataset=plan.dataset), mmap=False).astype(np.float32)
    average_maps = np.broadcast_to(average, (n, *average.shape))
    rows += utility_rows(plan.dataset, "average_mask", "average_mask", "-", -1, average_maps,
                         np.full(n, metrics.constant_maps(average[None])[0]), truth, image_ids, fractions)
    for fold in plan.folds:
        maps, constant = read(localizer_path(fold), flags=False)
        rows += utility_rows(plan.dataset, "localizer", plan.localizer, plan.localizer, fold, maps, constant, truth,
                             image_ids, fractions)
    for method, arch, fold in itertools.product(plan.methods, plan.archs, plan.folds):
        rows += utility_rows(plan.dataset, "trained", method, arch, fold, *read(trained_path(arch, fold, method)),
                             truth, image_ids, fractions)
    # The fully randomized ("untrained") model is a cumulative mode's last step (cascade's, else
    # bottom_up's): none without one.
    full = next((mode for mode in registry.CUMULATIVE_MODES if mode in plan.modes), None)
    untrained_folds = plan.random_folds if full else []
    for method, arch, fold in itertools.product(plan.methods, steps, untrained_folds):
        last = step_path(arch, fold, method, full, registry.mode_step_labels(arch, full)[-1])
        rows += utility_rows(plan.dataset, "untrained", method, arch, fold, *read(last), truth, image_ids, fractions)
    utility = pd.DataFrame(rows, columns=UTILITY_COLUMNS)
    log(f"utility: {len(utility)} maps scored, {int((utility['reason'] != '').sum())} degenerate "
          f"({time.time() - started:.0f} s)")

    # ---------------------------------------------------------------- randomization + random pairs
    rand_rows, pair_rows = [], []
    partners = metrics.random_partners(n, evaluation["random_pairs"], seed) if n >= 2 else None
    bins = evaluation["entropy_bins"]

    def entropies(maps):
        return np.array([metrics.discrete_entropy(m, bins) for m in maps])

    randomized = [(arch, fold) for arch in steps for fold in plan.random_folds]
    for method in plan.methods:
        # the random-pair baseline of every model whose maps are compared with randomized ones
        for arch, fold in dict.fromkeys(randomized + list(plan.label_models)):
            trained, trained_constant = read(trained_path(arch, fold, method))
            trained = np.asarray(trained, dtype=np.float64)
            moments, ranks = metrics.local_moments(trained, window), metrics.ranks(trained)
            entropy_trained = entropies(trained)

            def rows(mode, index, step, last, maps, constant):
                maps = np.asarray(maps, dtype=np.float64)
                values = paired_ssim(trained, maps, window, data_range, moments)
                rhos = metrics.pearson_of_ranks(ranks, metrics.ranks(maps))
                ent = entropies(maps)
                return [(plan.dataset, method, arch, fold, mode, index, step, last, image_ids[i], values[i], rhos[i],
                         ent[i], entropy_trained[i], reason(CONSTANT if trained_constant[i] or constant[i] else ""))
                        for i in range(n)]

            if (arch, fold) in randomized:
                for mode in plan.modes:
                    order = registry.mode_step_labels(arch, mode)
                    for index, step in enumerate(order, start=1):
                        rand_rows += rows(mode, index, step, index == len(order),
                                          *read(step_path(arch, fold, method, mode, step)))
            if (arch, fold) in plan.label_models:
                rand_rows += rows(LABEL_MODE, 1, layout.LABEL_RANDOMIZED_STEM, True,
                                  *read(trained_path(arch, fold, method, layout.LABEL_RANDOMIZED_STEM)))
            if partners is None:
                pair_rows += [(plan.dataset, method, arch, fold, image_ids[i], np.nan, np.nan, 0, 0, "single_image")
                              for i in range(n)]
                continue
            pair_ssim = shuffled_ssim(trained, trained, partners, window, data_range, moments, moments).mean(axis=1)
            for i in range(n):
                js = partners[i]
                rhos = metrics.pearson_of_ranks(np.broadcast_to(ranks[i], (len(js), ranks.shape[1])), ranks[js])
                pair_rows.append((plan.dataset, method, arch, fold, image_ids[i], float(pair_ssim[i]),
                                  float(np.nanmean(rhos)) if np.isfinite(rhos).any() else np.nan, len(js),
                                  int(trained_constant[js].sum()), reason(CONSTANT if trained_constant[i] else "")))
    randomization = pd.DataFrame(rand_rows, columns=RANDOMIZATION_COLUMNS)
    random_pairs = pd.DataFrame(pair_rows, columns=RANDOM_PAIR_COLUMNS)
    log(f"randomization: {len(randomization)} map pairs, random pairs: {len(pair_rows)} images x models "
          f"({time.time() - started:.0f} s)")

    # ---------------------------------------------------------------- repeatability + reproducibility
    cons_rows = []

    def loaded(paths: dict, path: Path, flags: bool = True):
        """One model's maps as float64, their flags and SSIM moments, read once per method: each
        model's maps enter several pairs (``paths``: the cache, emptied for the next method)."""
        if path not in paths:
            maps, constant = read(path, flags)
            maps = np.asarray(maps, dtype=np.float64)
            paths[path] = (maps, constant, metrics.local_moments(maps, window))
        return paths[path]

    def add_pairs(criterion, method, a, b, maps_a, maps_b):
        (ma, ca, ua), (mb, cb, _) = maps_a, maps_b
        values = paired_ssim(ma, mb, window, data_range, ua)
        # A constant (blank) map shows no location, so it agrees with nothing: SSIM 0. As it
        # is, two blank maps would score SSIM 1 and make a method look repeatable.
        values = np.where(ca | cb, 0.0, values)
        # The image-shuffled null: A's map of image i against B's maps of other images (the
        # random-pair draw), and B's against A's, averaged - so it does not depend on which
        # model of the pair is named first; a blank map on either side agrees with nothing.
        if partners is None:
            null = np.full(n, np.nan)
        else:
            null = np.mean([np.where(cx[:, None] | cy[partners], 0.0,
                                     shuffled_ssim(mx, my, partners, window, data_range, ux, uy)).mean(axis=1)
                            for (mx, cx, ux), (my, cy, uy) in ((maps_a, maps_b), (maps_b, maps_a))], axis=0)
        cons_rows.extend((plan.dataset, criterion, method, a[0], a[1], b[0], b[1], image_ids[i], values[i], null[i],
                          reason(CONSTANT if ca[i] or cb[i] else "")) for i in range(n))

    cache = {}
    for fa, fb in itertools.combinations(plan.folds, 2):
        add_pairs("repeatability", plan.localizer, (plan.localizer, fa), (plan.localizer, fb),
                  loaded(cache, localizer_path(fa), flags=False), loaded(cache, localizer_path(fb), flags=False))
    for method in plan.methods:
        cache = {}
        for arch in plan.archs:  # same architecture, every pair of folds
            for fa, fb in itertools.combinations(plan.folds, 2):
                add_pairs("repeatability", method, (arch, fa), (arch, fb),
                          loaded(cache, trained_path(arch, fa, method)), loaded(cache, trained_path(arch, fb, method)))
        for aa, ab in itertools.combinations(plan.archs, 2):  # different architectures, same fold
            for fold in plan.folds:
                add_pairs("reproducibility", method, (aa, fold), (ab, fold),
                          loaded(cache, trained_path(aa, fold, method)), loaded(cache, trained_path(ab, fold, method)))
    consistency = pd.DataFrame(cons_rows, columns=CONSISTENCY_COLUMNS)
    log(f"consistency: {len(consistency)} map pairs ({time.time() - started:.0f} s)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, table in (("utility", utility), ("randomization", randomization), ("random_pairs", random_pairs),
                        ("consistency", consistency)):
        table.to_csv(out / layout.file_name(layout.SCORE, name=name), index=False)
    for name, table in (("utility", utility), ("randomization", randomization), ("consistency", consistency)):
        counts = table.loc[table["reason"] != "", "reason"].value_counts()
        log(f"degenerate rows in {name}: " + (", ".join(f"{r} {c}" for r, c in counts.items()) or "none"))
    return {"utility": utility, "randomization": randomization, "consistency": consistency}
