"""Figures of the evaluation (matplotlib, Agg backend): each plotting function returns a Figure;
`write_figures` reads what they show (scores, tables, the example image's maps: `salaudit.layout`)
and writes every PNG.

Colours are fixed across figures: the average mask grey, the localization network green,
trained maps blue, fully randomized ("untrained") maps orange.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from salaudit import files, layout  # noqa: E402
from salaudit.evaluation.scoring import read_scores  # noqa: E402
from salaudit.registry import display  # noqa: E402
from salaudit.study import study  # noqa: E402

BASELINE, LOCALIZER, TRAINED, UNTRAINED = "#8c8c8c", "#2ca02c", "#1f77b4", "#ff7f0e"


def _per_image(rows: pd.DataFrame, value: str) -> np.ndarray:
    values = rows.groupby("image_id")[value].mean().to_numpy(dtype=np.float64)
    return values[~np.isnan(values)]


def utility_boxplots(utility: dict[str, pd.DataFrame], methods: list[str]):
    """Per dataset: per-image AUPRC (mean over models) of the baselines, trained and untrained maps."""
    fig, axes = plt.subplots(len(utility), 1, figsize=(max(8, 1.2 * len(methods) + 3), 3.6 * len(utility)),
                             squeeze=False)
    for ax, (dataset, scores) in zip(axes[:, 0], utility.items()):
        boxes, labels, colours = [], [], []
        for source, colour in (("average_mask", BASELINE), ("localizer", LOCALIZER)):
            rows = scores[scores["source"] == source]
            if len(rows):
                boxes.append(_per_image(rows, "auprc"))
                labels.append("average\nmask" if source == "average_mask" else rows["method"].iloc[0])
                colours.append(colour)
        for method in methods:
            for source, colour in (("trained", TRAINED), ("untrained", UNTRAINED)):
                rows = scores[(scores["source"] == source) & (scores["method"] == method)]
                if len(rows):
                    boxes.append(_per_image(rows, "auprc"))
                    labels.append(f"{display(method)}\n{source}")
                    colours.append(colour)
        parts = ax.boxplot(boxes, patch_artist=True, widths=0.6)
        for patch, colour in zip(parts["boxes"], colours):
            patch.set_facecolor(colour)
            patch.set_alpha(0.6)
        ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_ylabel("AUPRC per image")
        ax.set_title(f"{dataset}: localization utility (higher is better)")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def example_panel(dataset: str, image_id: str, image, mask, panels: list[tuple[str, np.ndarray, float]]):
    """Image, ground truth, then each map (average mask, localizer, methods) titled with its AUPRC."""
    n = len(panels) + 2
    cols = min(n, 6)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    axes.flat[0].imshow(image, cmap="gray")
    axes.flat[0].set_title(f"image {image_id}", fontsize=8)
    axes.flat[1].imshow(image, cmap="gray")
    axes.flat[1].contour(mask, levels=[0.5], colors="red", linewidths=1)
    axes.flat[1].set_title("ground truth", fontsize=8)
    for ax, (name, heatmap, score) in zip(axes.flat[2:], panels):
        ax.imshow(heatmap, cmap="inferno", vmin=0, vmax=1)
        ax.contour(mask, levels=[0.5], colors="cyan", linewidths=0.6)
        ax.set_title(f"{name}\nAUPRC {score:.2f}", fontsize=8)
    fig.suptitle(f"{dataset}: one evaluation image (cyan/red outline: abnormality)", fontsize=10)
    fig.tight_layout()
    return fig


FIGURE_MODES = ("cascade", "bottom_up", "independent")  # in the order the figures prefer them
ALONG = {"cascade": "cascading", "bottom_up": "bottom-up", "independent": "independent"}


def randomization_mode(modes) -> str | None:
    """The weight-randomization mode the figures show: ``cascade`` (the paper's) when computed,
    else ``bottom_up``, else ``independent``; None when none (label randomization is not one)."""
    modes = set(modes)
    return next((mode for mode in FIGURE_MODES if mode in modes), None)


def cascade_curves(table: pd.DataFrame, methods: list[str]):
    """SSIM with the trained map along the randomization (`randomization_mode`: the cascade when
    computed), mean ± std across replicates, one panel per dataset and architecture; each
    method's random-pair baseline dashed in its colour."""
    mode = randomization_mode(table["mode"])
    table = table[table["mode"] == mode]
    panels = list(table.groupby(["dataset", "arch"], sort=False))
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(6 * max(1, len(panels)), 4.5), squeeze=False)
    colours = plt.get_cmap("tab20")
    for ax, ((dataset, arch), rows) in zip(axes[0], panels):
        steps = rows.drop_duplicates("step_index").sort_values("step_index")
        x = np.arange(len(steps) + 1)
        for i, method in enumerate(methods):
            m = rows[rows["method"] == method].sort_values("step_index")
            if m.empty:
                continue
            colour = colours(i % 20)
            mean = np.concatenate([[1.0], m["mean_ssim"].to_numpy()])  # step 0: the trained map itself
            std = np.concatenate([[0.0], m["std_ssim"].to_numpy()])
            ax.plot(x, mean, marker="o", ms=3, color=colour, label=display(method))
            ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.15)
            ax.axhline(m["random_pair_ssim"].iloc[0], color=colour, ls="--", lw=1)
        ax.set_xticks(x, ["trained"] + steps["step"].tolist(), rotation=60, ha="right", fontsize=7)
        ax.set_ylim(-0.1, 1.05)
        ax.set_ylabel("SSIM with the trained map")
        ax.set_title(f"{dataset}, {arch}: {ALONG[mode]} randomization\n"
                     "(dashed: random-pair baseline)", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def cascade_strip(dataset: str, image_id: str, arch: str, steps: list[str], rows: dict[str, list[np.ndarray]],
                  mode: str = "cascade"):
    """One image's maps along the randomization (``mode``): a row per method, trained then each step."""
    n_rows, n_cols = len(rows), len(steps) + 1
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.4 * n_cols, 1.5 * n_rows + 0.6), squeeze=False)
    for r, (method, maps) in enumerate(rows.items()):
        for c, heatmap in enumerate(maps):
            ax = axes[r, c]
            ax.imshow(heatmap, cmap="inferno", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title((["trained"] + steps)[c], fontsize=7, rotation=30)
            if c == 0:
                ax.set_ylabel(display(method), fontsize=8)
    along = "the cascade" if mode == "cascade" else f"the {ALONG[mode]} randomization"
    fig.suptitle(f"{dataset}, {arch}, image {image_id}: maps along {along} (left: trained)", fontsize=9)
    fig.tight_layout()
    return fig


def consistency_boxplots(consistency: dict[str, pd.DataFrame], methods: list[str], threshold: float):
    """Per dataset and criterion: per-image SSIM of each method; the localizer's repeatability as a
    green line (reference), the pass threshold dotted."""
    criteria = ("repeatability", "reproducibility")
    fig, axes = plt.subplots(len(consistency), 2, figsize=(max(10, 1.4 * len(methods) * 2), 3.6 * len(consistency)),
                             squeeze=False)
    for row, (dataset, scores) in zip(axes, consistency.items()):
        localizer = scores[(scores["criterion"] == "repeatability") & (~scores["method"].isin(methods))]
        for ax, criterion in zip(row, criteria):
            boxes, labels = [], []
            for method in methods:
                rows = scores[(scores["criterion"] == criterion) & (scores["method"] == method)]
                if len(rows):
                    boxes.append(_per_image(rows, "ssim"))
                    labels.append(display(method))
            if boxes:
                parts = ax.boxplot(boxes, patch_artist=True, widths=0.6)
                for patch in parts["boxes"]:
                    patch.set_facecolor(TRAINED)
                    patch.set_alpha(0.6)
                ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=8)
            else:
                ax.text(0.5, 0.5, "not applicable (one architecture)", ha="center", transform=ax.transAxes)
            if len(localizer):
                ax.axhline(_per_image(localizer, "ssim").mean(), color=LOCALIZER, lw=2,
                           label=f"{localizer['method'].iloc[0]} repeatability")
            ax.axhline(threshold, color="black", ls=":", lw=1, label=f"threshold {threshold:g}")
            ax.set_ylim(-0.1, 1.05)
            ax.set_ylabel("SSIM per image")
            ax.set_title(f"{dataset}: {criterion}", fontsize=9)
            ax.legend(fontsize=7, loc="center right")
            ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def consistency_nulls(consistency: dict[str, pd.DataFrame], methods: list[str], threshold: float):
    """Per dataset and criterion: each method's median SSIM of the same image (dot) against its
    image-shuffled null (the same model pairs, other images; cross), per image, with their
    quartiles, and the pass threshold dotted. A method agrees on *where* only when its dot
    stands clearly above its cross."""
    criteria = ("repeatability", "reproducibility")
    fig, axes = plt.subplots(len(consistency), 2, figsize=(max(10, 0.9 * len(methods) * 2), 3.6 * len(consistency)),
                             squeeze=False)
    for row, (dataset, scores) in zip(axes, consistency.items()):
        for ax, criterion in zip(row, criteria):
            shown = [m for m in methods if ((scores["criterion"] == criterion) & (scores["method"] == m)).any()]
            for x, method in enumerate(shown):
                rows = scores[(scores["criterion"] == criterion) & (scores["method"] == method)]
                for column, marker, colour, dx in (("ssim", "o", TRAINED, -0.12), ("null_ssim", "x", UNTRAINED, 0.12)):
                    values = _per_image(rows, column)
                    if len(values):
                        low, middle, high = np.percentile(values, [25, 50, 75])
                        ax.errorbar(x + dx, middle, yerr=[[middle - low], [high - middle]],
                                    fmt=marker, color=colour, ms=5, capsize=2,
                                    label=("same image" if column == "ssim" else "null: other images") if x == 0 else None)
            if shown:
                ax.set_xticks(range(len(shown)), [display(m) for m in shown], fontsize=7, rotation=45, ha="right")
                ax.legend(fontsize=7, loc="lower right")
            else:
                ax.text(0.5, 0.5, "not applicable (one architecture)", ha="center", transform=ax.transAxes)
            ax.axhline(threshold, color="black", ls=":", lw=1)
            ax.set_ylim(-0.1, 1.05)
            ax.set_ylabel("SSIM per image (median, quartiles)")
            ax.set_title(f"{dataset}: {criterion} against its image-shuffled null", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def roc_curves(predictions: dict[str, dict[tuple[str, int], pd.DataFrame]]):
    """Test-split ROC curve of every classifier (architecture x fold), one panel per dataset."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, axes = plt.subplots(1, len(predictions), figsize=(5 * len(predictions), 4.6), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, (dataset, models) in zip(axes[0], predictions.items()):
        archs = list(dict.fromkeys(arch for arch, _ in models))
        for (arch, fold), frame in models.items():
            if frame["label"].nunique() < 2:
                continue
            fpr, tpr, _ = roc_curve(frame["label"], frame["prob"])
            auroc = roc_auc_score(frame["label"], frame["prob"])
            ax.plot(fpr, tpr, color=colours(archs.index(arch) % 10), alpha=0.8, lw=1,
                    label=f"{arch} fold {fold} ({auroc:.2f})")
        ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(f"{dataset}: classifiers on the test split (AUROC)", fontsize=9)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- the figures of a run

@dataclass(frozen=True)
class FigureSettings:
    """What the figures show: the datasets, methods and models; the example image (a row of
    ``eval_images.csv``) and the model whose maps it shows; the SSIM pass mark drawn."""

    datasets: list[str]
    methods: list[str]
    archs: list[str]
    folds: list[int]
    example_arch: str
    example_fold: int
    example_image: int
    ssim_threshold: float
    dpi: int = 120

    @classmethod
    def from_config(cls, config: dict) -> "FigureSettings":
        """The example model: the first randomized architecture and fold (else the first model)."""
        s = study(config)
        randomized = bool(s.randomized_archs)
        return cls(datasets=list(s.datasets), methods=s.methods, archs=s.archs, folds=s.folds,
                   example_arch=s.randomized_archs[0] if randomized else s.archs[0],
                   example_fold=s.randomized_folds[0] if randomized else s.folds[0],
                   example_image=config["evaluation"]["example_image"],
                   ssim_threshold=config["evaluation"]["ssim_threshold"])


def save(fig, path: Path, dpi: int):
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    print(f"wrote {path}", flush=True)


def example_figures(settings: "FigureSettings", results: Path, dataset: str, out: Path):
    where = {"dataset": dataset}
    eval_images = pd.read_csv(layout.path(layout.EVAL_IMAGES, results, **where), dtype={"image_id": str})
    row = min(settings.example_image, len(eval_images) - 1)
    index, image_id = int(eval_images["index"].iloc[row]), eval_images["image_id"].iloc[row]
    image = files.load_npy(layout.path(layout.IMAGES, results, **where))[index]
    mask = files.load_npy(layout.path(layout.MASKS, results, **where))[index]
    utility = read_scores(results, dataset, "utility")
    utility = utility[utility["image_id"] == image_id]

    def score_of(source, method, arch, fold):
        hit = utility[(utility["source"] == source) & (utility["method"] == method) & (utility["arch"] == arch)
                      & (utility["fold"] == fold)]
        return float(hit["auprc"].iloc[0]) if len(hit) else float("nan")

    localizer = utility.loc[utility["source"] == "localizer", "method"].iloc[0]
    panels = [("average mask", files.load_npy(layout.path(layout.AVERAGE_MASK, results, **where), mmap=False),
               score_of("average_mask", "average_mask", "-", -1)),
              (f"{localizer} (fold {settings.example_fold})",
               files.load_npy(layout.path(layout.LOCALIZER_MAPS, results, **where, localizer=localizer,
                                          fold=settings.example_fold))[row],
               score_of("localizer", localizer, localizer, settings.example_fold))]
    model = layout.path(layout.MAPS_FOLDER, results, **where, arch=settings.example_arch, fold=settings.example_fold)
    for method in settings.methods:
        panels.append((display(method), files.load_npy(layout.map_file(model, method, layout.TRAINED_STEM))[row],
                       score_of("trained", method, settings.example_arch, settings.example_fold)))
    save(example_panel(dataset, image_id, image, mask, [(n, np.asarray(m, np.float32), s) for n, m, s in panels]),
         out / layout.file_name(layout.FIGURE, name=f"examples_{dataset}"), settings.dpi)

    randomization = read_scores(results, dataset, "randomization")
    mode = randomization_mode(randomization["mode"])
    randomization = randomization[randomization["mode"] == mode]
    if randomization.empty:
        fig = plt.figure(figsize=(4, 1))
        fig.text(0.5, 0.5, f"{dataset}: no randomized maps configured", ha="center")
        save(fig, out / layout.file_name(layout.FIGURE, name=f"cascade_strip_{dataset}"), settings.dpi)
        return
    arch = settings.example_arch if settings.example_arch in set(randomization["arch"]) else randomization["arch"].iloc[0]
    folds = sorted(set(randomization.loc[randomization["arch"] == arch, "fold"]))
    fold = settings.example_fold if settings.example_fold in folds else folds[0]
    steps = (randomization[randomization["arch"] == arch].drop_duplicates("step_index")
             .sort_values("step_index")["step"].tolist())
    model = layout.path(layout.MAPS_FOLDER, results, **where, arch=arch, fold=fold)
    strip = {method: [np.asarray(files.load_npy(layout.map_file(model, method, layout.TRAINED_STEM))[row], np.float32)]
             + [np.asarray(files.load_npy(layout.map_file(model, method, layout.randomized_stem(mode, step)))[row], np.float32)
                for step in steps]
             for method in settings.methods}
    save(cascade_strip(dataset, image_id, f"{arch} fold {fold}", steps, strip, mode),
         out / layout.file_name(layout.FIGURE, name=f"cascade_strip_{dataset}"), settings.dpi)


def write_figures(settings: "FigureSettings", results: str | Path, tables: str | Path, out: str | Path) -> None:
    """Every figure of the study into ``out`` (file names: `layout.FIGURE`), from the scores and
    maps under the results root and the aggregated tables in ``tables``."""
    results, out = Path(results), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save(utility_boxplots({d: read_scores(results, d, "utility") for d in settings.datasets}, settings.methods),
         out / layout.file_name(layout.FIGURE, name="utility"), settings.dpi)
    save(cascade_curves(pd.read_csv(Path(tables) / layout.file_name(layout.TABLE, name="randomization")), settings.methods),
         out / layout.file_name(layout.FIGURE, name="cascade"), settings.dpi)
    consistency = {d: read_scores(results, d, "consistency") for d in settings.datasets}
    save(consistency_boxplots(consistency, settings.methods, settings.ssim_threshold),
         out / layout.file_name(layout.FIGURE, name="consistency"), settings.dpi)
    save(consistency_nulls(consistency, settings.methods, settings.ssim_threshold),
         out / layout.file_name(layout.FIGURE, name="consistency_null"), settings.dpi)
    predictions = {d: {(arch, fold): pd.read_csv(layout.path(layout.PREDICTIONS, results, dataset=d, arch=arch, fold=fold))
                       for arch in settings.archs for fold in settings.folds} for d in settings.datasets}
    save(roc_curves(predictions), out / layout.file_name(layout.FIGURE, name="roc"), settings.dpi)
    for dataset in settings.datasets:
        example_figures(settings, results, dataset, out)
