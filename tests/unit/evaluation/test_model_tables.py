"""summarize_models.py: the tables of model quality, from the files it is given and no others."""

import json

import numpy as np
import pandas as pd

import summarize_models


def test_only_the_declared_models_are_summarized(tmp_path):
    """Folders of an earlier configuration with more folds (fold3, fold4 here) stay out."""
    results = tmp_path / "results"
    root = results / "siim"
    (root / "data").mkdir(parents=True)
    masks = np.zeros((4, 8, 8), np.uint8)
    masks[:, 2:5, 2:5] = 1
    np.save(root / "data" / "masks.npy", masks)
    pd.DataFrame({"index": [1, 2], "image_id": ["a", "b"]}).to_csv(root / "eval_images.csv", index=False)
    (root / "baselines").mkdir()
    np.save(root / "baselines" / "average_mask.npy", np.full((8, 8), 0.5, np.float32))
    metrics, maps = [], []
    for fold in range(5):
        path = root / "models" / "tiny_cnn" / f"fold{fold}" / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"val_auroc": 0.5 + fold / 10, "test_auroc": 0.6, "best_epoch": 1}))
        loc = root / "localizers" / "unet" / f"fold{fold}" / "maps.npy"
        loc.parent.mkdir(parents=True)
        np.save(loc, masks[1:3].astype(np.float16))
        if fold < 3:
            metrics.append(str(path))
            maps.append(str(loc))
    out = tmp_path / "tables"
    args = summarize_models.get_args_parser().parse_args([
        "--results", str(results), "--classifier-metrics", *metrics, "--localizer-maps", *maps,
        "--out-classifiers", str(out / "classifiers.csv"), "--out-localizers", str(out / "localizers.csv")])
    assert summarize_models.main(args) == 0
    classifiers = pd.read_csv(out / "classifiers.csv")
    assert classifiers[["dataset", "arch", "fold"]].values.tolist() == [["siim", "tiny_cnn", k] for k in range(3)]
    assert classifiers["val_auroc"].tolist() == [0.5, 0.6, 0.7]
    localizers = pd.read_csv(out / "localizers.csv")
    assert localizers["fold"].tolist() == [0, 1, 2] and (localizers["mean_auprc"] == 1.0).all()
    assert (localizers["average_mask_auprc"] < 1).all()
