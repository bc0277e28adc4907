"""The evaluation images (salaudit.datasets.eval_images): seeded, test positives only, masks at size."""

import pandas as pd
from salaudit.datasets import eval_images


def test_select_eval_images_is_seeded_and_test_positive_only():
    manifest = pd.DataFrame({"image_id": [f"i{j}" for j in range(20)], "label": [1, 0] * 10,
                             "mask_pixels": [7, 0] * 10})
    splits = pd.DataFrame({"split": ["test"] * 10 + ["train"] * 10})
    a = eval_images.select_eval_images(manifest, splits, 3, seed=0)
    b = eval_images.select_eval_images(manifest, splits, 3, seed=0)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["index", "image_id"] and len(a) == 3
    assert set(a["index"]) <= {0, 2, 4, 6, 8}
    assert (a["image_id"] == manifest["image_id"].iloc[a["index"]].to_numpy()).all()
    everything = eval_images.select_eval_images(manifest, splits, 50, seed=0)
    assert sorted(everything["index"]) == [0, 2, 4, 6, 8]
    assert everything["index"].tolist()[:3] == a["index"].tolist()  # a prefix: n_eval only truncates
    assert eval_images.select_eval_images(manifest, splits, 5, seed=1)["index"].tolist() != everything["index"].tolist()


def test_eval_images_have_a_mask_at_the_converted_size():
    """A positive whose lesion vanished in resizing (mask_pixels 0 at image_size) is never an
    evaluation image: its AUPRC would be undefined."""
    manifest = pd.DataFrame({"image_id": [f"i{j}" for j in range(6)], "label": [1, 1, 1, 0, 1, 1],
                             "mask_pixels": [5, 0, 3, 0, 0, 9]})
    splits = pd.DataFrame({"split": ["test"] * 5 + ["train"]})
    candidates, empty = eval_images.eval_candidates(manifest, splits)
    assert candidates.tolist() == [0, 2] and empty.tolist() == [1, 4]
    chosen = eval_images.select_eval_images(manifest, splits, 10, seed=0)
    assert sorted(chosen["index"]) == [0, 2]
