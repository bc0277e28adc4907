"""Per-image metrics of maps against ground truth."""

from __future__ import annotations

import numpy as np

from salaudit import seeds

# sklearn is imported where it is used: importing it costs about a second, which every
# training job (salaudit.models.localizers imports this module) would otherwise pay at start-up.


def auprc(saliency: np.ndarray, mask: np.ndarray) -> float:
    """Area under the precision-recall curve of a map against a mask, as the paper computed it.

    Pixels inside the mask are the positives, the map's values the scores:
    ``precision_recall_curve`` then the trapezoidal area under precision over recall.
    NaN when the mask is empty (no positives: the curve is undefined).
    """
    from sklearn.metrics import auc, precision_recall_curve

    truth = (np.asarray(mask) > 0).ravel()
    if not truth.any():
        return float("nan")
    precision, recall, _ = precision_recall_curve(truth, np.asarray(saliency, dtype=np.float64).ravel())
    return float(auc(recall, precision))


def precision_recall_areas(saliency: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """``(auprc, average_precision)`` from one precision-recall curve (one sort instead of two).

    Equal to `auprc` and `average_precision` (sklearn's step-wise sum); NaN, NaN for an empty mask.
    """
    from sklearn.metrics import auc, precision_recall_curve

    truth = (np.asarray(mask) > 0).ravel()
    if not truth.any():
        return float("nan"), float("nan")
    precision, recall, _ = precision_recall_curve(truth, np.asarray(saliency, dtype=np.float64).ravel())
    return float(auc(recall, precision)), float(-np.sum(np.diff(recall) * precision[:-1]))


def average_precision(saliency: np.ndarray, mask: np.ndarray) -> float:
    """Average precision (step-wise area), reported beside `auprc`; NaN for an empty mask."""
    from sklearn.metrics import average_precision_score

    truth = (np.asarray(mask) > 0).ravel()
    if not truth.any():
        return float("nan")
    return float(average_precision_score(truth, np.asarray(saliency, dtype=np.float64).ravel()))


def pointing_game(saliency: np.ndarray, mask: np.ndarray) -> float:
    """Hit rate of the map's maximum (cheXlocalize, Quantus's ``PointingGame``): 1 when the
    maximum lies inside the mask, 0 outside; pixels tied at the maximum count fractionally (the
    share of them inside the mask), so a constant map scores the mask's area fraction, chance.
    NaN for an empty mask."""
    truth = np.asarray(mask) > 0
    if not truth.any():
        return float("nan")
    s = np.asarray(saliency, dtype=np.float64)
    at_max = s == s.max()
    return float(truth[at_max].mean())


def iou_otsu(saliency: np.ndarray, mask: np.ndarray) -> float:
    """IoU of the map thresholded by Otsu's method (cheXlocalize's default: pixels above the
    threshold) with the mask. A constant map has no threshold: it segments the whole image
    (IoU = the mask's area fraction, chance). NaN for an empty mask."""
    from skimage.filters import threshold_otsu

    truth = np.asarray(mask) > 0
    if not truth.any():
        return float("nan")
    s = np.asarray(saliency, dtype=np.float64)
    predicted = s > threshold_otsu(s) if s.max() > s.min() else np.ones(s.shape, bool)
    return float((predicted & truth).sum() / (predicted | truth).sum())


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps' pixels (Adebayo et al. 2018's second similarity
    beside SSIM), ties at their average rank; NaN when either map is constant."""
    return float(spearman_batch(np.asarray(a)[None], np.asarray(b)[None])[0])


def spearman_batch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`spearman` of map pairs ``a[i]``, ``b[i]`` (``[P, H, W]`` each), ranks computed once per map."""
    return pearson_of_ranks(ranks(a), ranks(b))


def ranks(maps: np.ndarray) -> np.ndarray:
    """Centred average ranks of each map's pixels: float64 ``[P, H*W]`` (reusable across pairs)."""
    from scipy.stats import rankdata

    r = rankdata(np.asarray(maps, dtype=np.float64).reshape(len(maps), -1), axis=1)
    return r - r.mean(axis=1, keepdims=True)


def pearson_of_ranks(ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
    """Pearson correlation of centred rank rows (`ranks`): Spearman's rho per pair; NaN for a constant map."""
    numerator = (ra * rb).sum(axis=1)
    denominator = np.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def discrete_entropy(saliency: np.ndarray, bins: int) -> float:
    """Complexity of a map as Quantus's ``EfficientMPRT`` measures it (Hedström et al. 2023): the
    Shannon entropy (nats) of the histogram of its values in ``bins`` equal bins over its own range
    (``quantus.functions.complexity_func.discrete_entropy``). A constant map: 0."""
    histogram, _ = np.histogram(np.asarray(saliency, dtype=np.float64), bins=bins)
    p = histogram[histogram > 0] / histogram.sum()
    return float(-(p * np.log(p)).sum())


# --------------------------------------------------------------------------- SSIM

# The paper's SSIM: scikit-image's `structural_similarity` with its defaults of the time - a
# 7x7 uniform window, sample covariance, K1 = 0.01, K2 = 0.03 - and, for float maps, the
# data range older scikit-image inferred from the float dtype's nominal range [-1, 1]:
# data_range = 2.0 (today it must be given explicitly). Maps in [0, 1] with data_range 2
# make the stabilising constants C1, C2 four times larger than data_range 1 would.
SSIM_WINDOW = 7
SSIM_DATA_RANGE = 2.0


def ssim(a: np.ndarray, b: np.ndarray, win_size: int = SSIM_WINDOW, data_range: float = SSIM_DATA_RANGE) -> float:
    """SSIM of two 2-D maps: scikit-image's ``structural_similarity`` in float64."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                                       win_size=win_size, data_range=data_range))


def local_moments(maps: np.ndarray, win_size: int = SSIM_WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """Windowed means of ``x`` and ``x**2`` of ``[P, H, W]`` maps (float64), reusable across many pairs."""
    from scipy.ndimage import uniform_filter

    x = np.asarray(maps, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"expected [P, H, W] maps, got shape {x.shape}")
    if win_size % 2 != 1 or min(x.shape[1:]) < win_size:
        raise ValueError(f"SSIM window {win_size} must be odd and at most the map side {min(x.shape[1:])}")
    size = (1, win_size, win_size)  # no filtering across the pair axis
    return uniform_filter(x, size), uniform_filter(x * x, size)


def ssim_batch(a: np.ndarray, b: np.ndarray, win_size: int = SSIM_WINDOW, data_range: float = SSIM_DATA_RANGE,
               moments_a: tuple | None = None, moments_b: tuple | None = None) -> np.ndarray:
    """SSIM of map pairs ``a[i]``, ``b[i]`` (``[P, H, W]`` each), vectorised over pairs.

    Equal (to float64 rounding) to `ssim` pair by pair: the same uniform filter, sample
    covariance, constants and border crop as scikit-image, filtering only within each map.
    ``moments_a``/``moments_b`` (from `local_moments`, same rows as ``a``/``b``) skip two of
    the five filters per side when one map takes part in many pairs.
    """
    from scipy.ndimage import uniform_filter

    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 3:
        raise ValueError(f"ssim_batch needs two [P, H, W] arrays of one shape, got {x.shape} and {y.shape}")
    ux, uxx = moments_a if moments_a is not None else local_moments(x, win_size)
    uy, uyy = moments_b if moments_b is not None else local_moments(y, win_size)
    cov_norm = win_size ** 2 / (win_size ** 2 - 1)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uniform_filter(x * y, (1, win_size, win_size)) - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
    pad = (win_size - 1) // 2
    return s[:, pad:s.shape[1] - pad, pad:s.shape[2] - pad].mean(axis=(1, 2))


def random_partners(n_images: int, n_pairs: int, seed: int) -> np.ndarray:
    """Partners of the random-pair SSIM baseline: ``[n_images, n_pairs]`` indices, never the image itself.

    Row *i* holds ``n_pairs`` draws, uniform over the other ``n_images - 1`` images and with
    replacement (so any ``n_pairs`` works with any ``n_images >= 2``), from the stream
    ``(seed, "random_pairs")`` of `salaudit.seeds`: the same seed gives the same draws. Cost is
    linear in ``n_images``.
    """
    if n_images < 2:
        raise ValueError("the random-pair baseline needs at least two images")
    rng = seeds.rng(seed, "random_pairs")
    offsets = rng.integers(1, n_images, size=(n_images, n_pairs))  # 1 .. n-1: never 0, i.e. never itself
    return (np.arange(n_images)[:, None] + offsets) % n_images


def constant_maps(maps: np.ndarray) -> np.ndarray:
    """bool ``[N]``: True where a map is constant (e.g. a localizer that painted nothing)."""
    flat = np.asarray(maps).reshape(len(maps), -1)
    return flat.max(axis=1) == flat.min(axis=1)
