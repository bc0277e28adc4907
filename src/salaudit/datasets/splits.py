"""Held-out test set and k cross-validation folds, stratified by label, grouped by patient.

``splits.csv`` (one row per manifest row, same order): ``image_id,split,fold`` where
``split`` is ``test`` (never used for training or model selection, ``fold = -1``) or
``train`` (the cross-validation pool, ``fold`` in ``0..k-1``). Model ``fold{k}`` trains
on the ``train`` rows with ``fold != k`` and selects its epoch on ``fold == k``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from salaudit import seeds

SPLIT_COLUMNS = ["image_id", "split", "fold"]
PAPER_SPLIT_VALUES = ("train", "val", "test")


class SplitError(ValueError):
    """Splits that cannot be made as asked; the message says why."""


def _groups(manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per patient: its image indices and its label (positive if any image is)."""
    patient = manifest["patient_id"].where(manifest["patient_id"].astype(str) != "", manifest["image_id"])
    frame = pd.DataFrame({"patient": patient.astype(str), "label": manifest["label"].astype(int)})
    grouped = frame.groupby("patient", sort=True)
    return pd.DataFrame({
        "indices": grouped.apply(lambda g: list(g.index), include_groups=False),
        "label": grouped["label"].max(),
    })


def _shuffled_by_label(groups: pd.DataFrame, rng: np.random.Generator) -> dict[int, list[list[int]]]:
    strata = {}
    for label in sorted(groups["label"].unique()):
        members = groups.loc[groups["label"] == label, "indices"].tolist()
        strata[int(label)] = [members[i] for i in rng.permutation(len(members))]
    return strata


def assign_folds(manifest: pd.DataFrame, pool: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold per row of ``manifest`` for the rows where ``pool`` is True (else -1).

    Within each label stratum, patients in a seeded order (the stream ``(seed, "split_folds")``)
    go one by one to the fold with the fewest images of that stratum so far, so folds are
    balanced and stratified and a patient never spans two folds.
    """
    if k < 2:
        raise SplitError(f"folds must be at least 2, got {k}")
    manifest = manifest.reset_index(drop=True)
    folds = np.full(len(manifest), -1, dtype=int)
    sub = manifest[pool]
    counts = sub["label"].astype(int).value_counts()
    n_pos, n_neg = int(counts.get(1, 0)), int(counts.get(0, 0))
    if min(n_pos, n_neg) < k:
        raise SplitError(
            f"folds={k} needs at least {k} positive and {k} negative non-test images "
            f"(each validation fold needs both classes); have {n_pos} positive, {n_neg} negative"
        )
    rng = seeds.rng(seed, "split_folds")
    for members in _shuffled_by_label(_groups(sub), rng).values():
        sizes = np.zeros(k, dtype=int)
        for indices in members:
            target = int(np.argmin(sizes))
            folds[indices] = target  # group indices are manifest row labels
            sizes[target] += len(indices)
    for fold in range(k):
        labels_in_fold = set(manifest.loc[folds == fold, "label"].astype(int))
        if labels_in_fold != {0, 1}:
            raise SplitError(f"fold {fold} lacks a class (patients too large to balance); use fewer folds")
    return folds


def make_splits(manifest: pd.DataFrame, test_fraction: float, k: int, seed: int) -> pd.DataFrame:
    """Seeded (stream ``(seed, "split_test")``), label-stratified, patient-grouped test split, then
    k folds over the rest."""
    if not 0 < test_fraction < 1:
        raise SplitError(f"test_fraction must be in (0, 1), got {test_fraction}")
    manifest = manifest.reset_index(drop=True)
    rng = seeds.rng(seed, "split_test")
    is_test = np.zeros(len(manifest), dtype=bool)
    for members in _shuffled_by_label(_groups(manifest), rng).values():
        wanted = round(test_fraction * sum(len(m) for m in members))
        taken = 0
        for indices in members:
            if taken >= wanted:
                break
            is_test[indices] = True
            taken += len(indices)
    folds = assign_folds(manifest, ~is_test, k, seed)
    return pd.DataFrame({
        "image_id": manifest["image_id"].astype(str),
        "split": np.where(is_test, "test", "train"),
        "fold": folds,
    })


def read_paper_split_file(path: str | Path) -> pd.Series:
    """The paper's published split files (``,Image_ID,Split``) → Series image_id → split.

    ``Image_ID`` may carry an image suffix (``.png``, ``.dcm``), which is dropped.
    """
    table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")  # a BOM: a spreadsheet export
    if not {"Image_ID", "Split"} <= set(table.columns):
        raise SplitError(f"{path}: expected columns Image_ID and Split, got {list(table.columns)}")
    ids = table["Image_ID"].str.strip().str.replace(r"\.(png|dcm|jpg|jpeg)$", "", regex=True, case=False)
    split = table["Split"].str.strip().str.lower()
    bad = sorted(set(split) - set(PAPER_SPLIT_VALUES))
    if bad:
        raise SplitError(f"{path}: unknown Split values {bad}; expected {list(PAPER_SPLIT_VALUES)}")
    if ids.duplicated().any():
        raise SplitError(f"{path}: Image_ID repeated, e.g. {ids[ids.duplicated()].iloc[0]}")
    return pd.Series(split.to_numpy(), index=ids.to_numpy())


def splits_from_file(manifest: pd.DataFrame, path: str | Path, k: int, seed: int) -> tuple[pd.DataFrame, list[str]]:
    """Test set from a split file; its train and val rows together form the k-fold pool.

    Returns the splits and notes (split-file ids absent from the manifest, e.g. rejected
    images). The convert job keeps only the images the file lists (`salaudit.datasets.convert`), so a
    manifest image missing from the file means the conversion is stale: an error.
    """
    return splits_from_assignment(manifest, read_paper_split_file(path), path, k, seed)


def splits_from_table(manifest: pd.DataFrame, path: str | Path, k: int, seed: int) -> tuple[pd.DataFrame, list[str]]:
    """`splits_from_file` for a dataset of format table whose table has a ``split`` column
    (`salaudit.datasets.table.read_splits`): the same rules, the column in the file's place."""
    from salaudit.datasets import table

    return splits_from_assignment(manifest, table.read_splits(path), path, k, seed)


def splits_from_assignment(manifest: pd.DataFrame, given: pd.Series, path: str | Path, k: int,
                           seed: int) -> tuple[pd.DataFrame, list[str]]:
    """Splits from ``given`` (image id → ``train|val|test``, read from ``path``); see `splits_from_file`."""
    manifest = manifest.reset_index(drop=True)
    ids = manifest["image_id"].astype(str)
    missing = ids[~ids.isin(given.index)]
    if len(missing):
        shown = ", ".join(missing.iloc[:5])
        raise SplitError(f"{path}: {len(missing)} converted images have no row, e.g. {shown} (the convert job keeps "
                         f"only the images the split file lists: rerun the convert job)")
    notes = []
    extra = given.index.difference(ids)
    if len(extra):
        notes.append(f"{len(extra)} ids in {path} are not among the converted images (rejected or absent)")
    is_test = (given.loc[ids].to_numpy() == "test")
    folds = assign_folds(manifest, ~is_test, k, seed)
    splits = pd.DataFrame({"image_id": ids, "split": np.where(is_test, "test", "train"), "fold": folds})
    return splits, notes


def check_splits(manifest: pd.DataFrame, splits: pd.DataFrame) -> list[str]:
    """Leakage warnings: patients that appear both in the test set and the training pool."""
    merged = manifest[["image_id", "patient_id"]].astype(str).merge(splits, on="image_id")
    per_patient = merged.groupby("patient_id")["split"].nunique()
    shared = per_patient[per_patient > 1]
    return [f"{len(shared)} patients have images in both test and train (e.g. {shared.index[0]})"] if len(shared) else []


def fold_indices(splits: pd.DataFrame, fold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Array indices (rows of splits.csv = rows of the arrays) of fold ``fold``'s training images
    (the other folds), its validation images (fold ``fold``) and the test split."""
    folds = splits["fold"].to_numpy()
    is_test = (splits["split"] == "test").to_numpy()
    if fold not in set(folds[~is_test]):
        raise ValueError(f"fold {fold} is not in splits (folds: {sorted(set(folds[~is_test]))})")
    train = np.flatnonzero(~is_test & (folds != fold))
    val = np.flatnonzero(~is_test & (folds == fold))
    return train, val, np.flatnonzero(is_test)

