"""Figures of the evaluation (matplotlib, Agg backend): each function returns a Figure.

Colours are fixed across figures: the average mask grey, the localization network green,
trained maps blue, fully randomized ("untrained") maps orange.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

BASELINE, LOCALIZER, TRAINED, UNTRAINED = "#8c8c8c", "#2ca02c", "#1f77b4", "#ff7f0e"


def display(method: str) -> str:
    """Display name: salaudit.methods.DISPLAY_NAMES is every id upper-cased (a test keeps them equal);
    importing it would pull torch into the report environment."""
    return method.upper()


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


def randomization_mode(modes) -> str | None:
    """The randomization mode the figures show: ``cascade`` (the paper's) when computed, else
    ``independent``; None when neither."""
    modes = set(modes)
    return next((mode for mode in ("cascade", "independent") if mode in modes), None)


def cascade_curves(table: pd.DataFrame, methods: list[str]):
    """SSIM with the trained map along the randomization (`randomization_mode`: the cascade when
    computed), mean ± std across replicates, one panel per dataset and architecture; each
    method's random-pair baseline dashed in its colour."""
    mode = randomization_mode(table["mode"])
    table = table[table["mode"] == mode]
    panels = list(table.groupby(["dataset", "arch"], sort=False))
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(6 * max(1, len(panels)), 4.5), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, ((dataset, arch), rows) in zip(axes[0], panels):
        steps = rows.drop_duplicates("step_index").sort_values("step_index")
        x = np.arange(len(steps) + 1)
        for i, method in enumerate(methods):
            m = rows[rows["method"] == method].sort_values("step_index")
            if m.empty:
                continue
            colour = colours(i % 10)
            mean = np.concatenate([[1.0], m["mean_ssim"].to_numpy()])  # step 0: the trained map itself
            std = np.concatenate([[0.0], m["std_ssim"].to_numpy()])
            ax.plot(x, mean, marker="o", ms=3, color=colour, label=display(method))
            ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.15)
            ax.axhline(m["random_pair_ssim"].iloc[0], color=colour, ls="--", lw=1)
        ax.set_xticks(x, ["trained"] + steps["step"].tolist(), rotation=60, ha="right", fontsize=7)
        ax.set_ylim(-0.1, 1.05)
        ax.set_ylabel("SSIM with the trained map")
        ax.set_title(f"{dataset}, {arch}: {'cascading' if mode == 'cascade' else 'independent'} randomization\n"
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
    along = "the cascade" if mode == "cascade" else "the independent randomization"
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
