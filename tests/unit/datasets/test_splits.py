import numpy as np
import pandas as pd
import pytest

from salaudit.datasets.splits import SplitError, assign_folds, make_splits, read_paper_split_file, splits_from_file


def toy_manifest(n_patients=120, seed=0):
    """Patients with 1-3 images each; a patient's images share its label."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        label = int(rng.random() < 0.4)
        for i in range(rng.choice([1, 1, 1, 2, 3])):
            rows.append({"image_id": f"img{p:03d}_{i}", "patient_id": f"pat{p:03d}", "label": label})
    return pd.DataFrame(rows)


def test_splits_disjoint_stratified_grouped():
    manifest = toy_manifest()
    splits = make_splits(manifest, test_fraction=0.2, k=5, seed=0)
    assert list(splits.columns) == ["image_id", "split", "fold"]
    assert splits["image_id"].tolist() == manifest["image_id"].tolist()  # row i <-> manifest row i
    assert set(splits["split"]) == {"train", "test"}
    assert (splits.loc[splits.split == "test", "fold"] == -1).all()
    assert set(splits.loc[splits.split == "train", "fold"]) == set(range(5))

    merged = manifest.merge(splits, on="image_id")
    # grouped: every patient lives in exactly one (split, fold)
    assert (merged.groupby("patient_id")[["split", "fold"]].nunique() == 1).all().all()
    # stratified: test fraction per label close to 0.2 (patients hold up to 3 images)
    for label, group in merged.groupby("label"):
        assert abs((group.split == "test").mean() - 0.2) <= 3 / len(group) + 0.01
    # folds balanced per label within the largest patient size
    train = merged[merged.split == "train"]
    per_fold = train.groupby(["label", "fold"]).size().unstack()
    assert (per_fold.max(axis=1) - per_fold.min(axis=1) <= 3).all()


def test_singletons_are_exactly_stratified():
    manifest = pd.DataFrame({"image_id": [f"i{j}" for j in range(100)], "patient_id": [f"p{j}" for j in range(100)],
                             "label": [1] * 50 + [0] * 50})
    splits = make_splits(manifest, 0.2, 4, seed=3)
    merged = manifest.merge(splits, on="image_id")
    assert (merged[merged.split == "test"].groupby("label").size() == 10).all()
    counts = merged[merged.split == "train"].groupby(["label", "fold"]).size()
    assert set(counts) == {10}


def test_reproducible_from_seed():
    manifest = toy_manifest()
    a = make_splits(manifest, 0.2, 5, seed=7)
    b = make_splits(manifest, 0.2, 5, seed=7)
    c = make_splits(manifest, 0.2, 5, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_missing_patient_id_falls_back_to_image_id():
    manifest = pd.DataFrame({"image_id": [f"i{j}" for j in range(40)], "patient_id": [""] * 40,
                             "label": [0, 1] * 20})
    splits = make_splits(manifest, 0.25, 3, seed=0)
    assert (splits.split == "test").sum() == 10


def test_too_few_positives_for_folds():
    manifest = pd.DataFrame({"image_id": [f"i{j}" for j in range(30)], "patient_id": [f"p{j}" for j in range(30)],
                             "label": [1] * 4 + [0] * 26})
    with pytest.raises(SplitError, match="folds=5 needs at least 5 positive"):
        make_splits(manifest, 0.25, 5, seed=0)
    with pytest.raises(SplitError, match="at least 2"):
        assign_folds(manifest, np.ones(30, bool), 1, 0)


def test_paper_split_file(tmp_path):
    manifest = pd.DataFrame({"image_id": [f"1.2.{j}" for j in range(20)], "patient_id": [f"p{j}" for j in range(20)],
                             "label": [0, 1] * 10})
    split_values = ["test"] * 4 + ["val"] * 4 + ["train"] * 12
    path = tmp_path / "siim_split.csv"
    pd.DataFrame({"Image_ID": [f"1.2.{j}.png" for j in range(20)] + ["1.2.99.png"],
                  "Split": split_values + ["train"]}).to_csv(path)  # writes the unnamed index column
    assert path.read_text().startswith(",Image_ID,Split")
    given = read_paper_split_file(path)
    assert given["1.2.0"] == "test" and given["1.2.5"] == "val"
    splits, notes = splits_from_file(manifest, path, k=2, seed=0)
    assert (splits.split == "test").sum() == 4
    assert set(splits.loc[splits.split == "train", "fold"]) == {0, 1}
    assert "1 ids" in notes[0]

    short = tmp_path / "short.csv"
    pd.DataFrame({"Image_ID": ["1.2.0"], "Split": ["test"]}).to_csv(short)
    with pytest.raises(SplitError, match="19 converted images have no row.*rerun the convert job"):
        splits_from_file(manifest, short, k=2, seed=0)

    bad = tmp_path / "bad.csv"
    pd.DataFrame({"Image_ID": ["1.2.0"], "Split": ["holdout"]}).to_csv(bad)
    with pytest.raises(SplitError, match="unknown Split values"):
        read_paper_split_file(bad)
