import numpy as np
import pandas as pd
import pytest
import torch

from salaudit import config
from salaudit.models import classifier
from salaudit.models import training


def toy_dataset(n=96, size=32, seed=0):
    """Positives carry a bright square somewhere; negatives are noise."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 2).astype(int)
    images = rng.integers(40, 140, (n, size, size)).astype(np.uint8)
    for i in np.flatnonzero(labels):
        r, c = rng.integers(2, size - 10, 2)
        images[i, r:r + 8, c:c + 8] = 230
    order = rng.permutation(n)
    images, labels = images[order], labels[order]
    split = np.where(np.arange(n) < 24, "test", "train")
    fold = np.where(split == "test", -1, np.arange(n) % 3)
    splits = pd.DataFrame({"image_id": [f"i{j}" for j in range(n)], "split": split, "fold": fold})
    return images, labels, splits


def settings(seed=4, **changes):
    """`TrainSettings` of tiny_cnn fold 1 from a config: the schema's defaults, a short run, and
    ``changes`` in ``classifiers`` (epochs, lr, patience, memory_format, ...)."""
    short = {"epochs": 3, "batch_size": 16, "lr": 0.01, "patience": 5}
    resolved = config.resolve({"seed": seed, "classifiers": {**short, **changes}})
    return classifier.TrainSettings.from_config(resolved, "tiny_cnn", 1)


def test_fold_indices_never_touch_test():
    _, _, splits = toy_dataset()
    train, val, test = classifier.fold_indices(splits, 1)
    assert set(train) | set(val) | set(test) == set(range(96))
    assert not set(train) & set(val) and not (set(train) | set(val)) & set(test)
    assert (splits.fold.iloc[val] == 1).all() and (splits.split.iloc[test] == "test").all()
    with pytest.raises(ValueError, match="fold 7"):
        classifier.fold_indices(splits, 7)


def test_tiny_training_run_learns(tmp_path):
    images, labels, splits = toy_dataset()
    torch.set_num_threads(1)
    _, metrics, probs = classifier.train_classifier(images, labels, splits, settings(epochs=6), tmp_path / "s.pt",
                                                    torch.device("cpu"), log=lambda _: None)
    assert metrics["test_auroc"] > 0.9
    assert metrics["val_auroc"] > 0.9
    assert probs.shape == (24,) and ((probs >= 0) & (probs <= 1)).all()
    assert 1 <= metrics["best_epoch"] <= metrics["epochs_run"] <= 6
    assert len(metrics["history"]) == metrics["epochs_run"]


def weights(model):
    return [t.clone() for t in model.state_dict().values()]


def test_same_config_gives_bit_identical_weights(tmp_path):
    images, labels, splits = toy_dataset()
    a, _, pa = classifier.train_classifier(images, labels, splits, settings(), tmp_path / "a.pt", torch.device("cpu"), log=lambda _: None)
    b, _, pb = classifier.train_classifier(images, labels, splits, settings(), tmp_path / "b.pt", torch.device("cpu"), log=lambda _: None)
    assert all(torch.equal(x, y) for x, y in zip(weights(a), weights(b)))
    np.testing.assert_array_equal(pa, pb)
    c, _, _ = classifier.train_classifier(images, labels, splits, settings(seed=5), tmp_path / "c.pt", torch.device("cpu"), log=lambda _: None)
    assert not all(torch.equal(x, y) for x, y in zip(weights(a), weights(c)))


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    images, labels, splits = toy_dataset()
    full, full_metrics, _ = classifier.train_classifier(images, labels, splits, settings(), tmp_path / "full.pt",
                                                        torch.device("cpu"), log=lambda _: None)

    def interrupt_in_epoch_2(line):
        if line.startswith("epoch 2/"):
            raise KeyboardInterrupt  # as if the job were killed before epoch 2 was saved

    with pytest.raises(KeyboardInterrupt):
        classifier.train_classifier(images, labels, splits, settings(), tmp_path / "cut.pt", torch.device("cpu"),
                                    log=interrupt_in_epoch_2, checkpoint_seconds=0)
    assert torch.load(tmp_path / "cut.pt", weights_only=False)["epoch"] == 0
    lines = []
    resumed, metrics, _ = classifier.train_classifier(images, labels, splits, settings(), tmp_path / "cut.pt",
                                                      torch.device("cpu"), log=lines.append, checkpoint_seconds=0)
    assert any(line.startswith("resuming after epoch 1 of 3") for line in lines)
    assert not any(line.startswith("epoch 1/") for line in lines)
    assert all(torch.equal(x, y) for x, y in zip(weights(full), weights(resumed)))
    assert metrics["best_epoch"] == full_metrics["best_epoch"]


def test_state_of_other_settings_is_not_resumed(tmp_path):
    images, labels, splits = toy_dataset()
    classifier.train_classifier(images, labels, splits, settings(epochs=2), tmp_path / "s.pt", torch.device("cpu"),
                                log=lambda _: None, checkpoint_seconds=0)
    lines = []
    classifier.train_classifier(images, labels, splits, settings(epochs=1, lr=0.02), tmp_path / "s.pt", torch.device("cpu"), log=lines.append)
    assert any("belongs to other settings" in line for line in lines)


def test_augment_shifts_masks_with_images():
    generator = torch.Generator().manual_seed(0)
    images = torch.zeros(4, 3, 16, 16)
    images[:, :, 6:10, 6:10] = 1
    masks = (images[:, :1] > 0).float()
    out, out_masks = training.augment(images, generator, max_shift=0.2, intensity=0.0, masks=masks)
    assert torch.equal(out[:, :1] > 0, out_masks > 0)
    assert not torch.equal(out, images)  # something moved
    assert out.min() >= -1 and out.max() <= 1


def test_training_state_is_saved_at_most_every_checkpoint_seconds_and_never_after_the_last_epoch(tmp_path):
    images, labels, splits = toy_dataset()
    saves = []
    real_save = torch.save

    def counting_save(obj, path, *args, **kwargs):
        saves.append(obj["epoch"])
        return real_save(obj, path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "save", counting_save)
        _, metrics, _ = classifier.train_classifier(images, labels, splits, settings(patience=10), tmp_path / "every.pt",
                                                    torch.device("cpu"), log=lambda _: None, checkpoint_seconds=0)
        assert metrics["epochs_run"] == 3 and saves == [0, 1]  # not after epoch 3: model.pt comes next
        saves.clear()
        classifier.train_classifier(images, labels, splits, settings(patience=10), tmp_path / "rare.pt",
                                    torch.device("cpu"), log=lambda _: None, checkpoint_seconds=3600)
        assert saves == [] and not (tmp_path / "rare.pt").exists()


def test_auroc_equals_sklearn_with_ties_and_is_nan_for_one_class():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    for n in (2, 7, 50):
        labels = rng.integers(0, 2, n)
        labels[:2] = [0, 1]
        scores = np.round(rng.random(n), 1)  # many ties
        assert classifier.auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert classifier.auroc(np.array([0, 1, 1]), np.array([0.2, 0.9, 0.1])) == 0.5
    assert classifier.auroc(np.array([1, 0]), np.array([0.5, 0.5])) == 0.5
    assert np.isnan(classifier.auroc(np.ones(4), np.arange(4.0)))


def test_memory_format_auto_and_channels_last_learns_the_same_model(tmp_path):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert training.memory_format("auto", "densenet121", cpu) == torch.channels_last
    assert training.memory_format("auto", "inception_v3", cpu) == torch.contiguous_format
    assert training.memory_format("auto", "inception_v3", cuda) == torch.channels_last
    assert training.memory_format("contiguous", "densenet121", cuda) == torch.contiguous_format
    with pytest.raises(ValueError, match="unknown memory_format 'nhwc'"):
        training.memory_format("nhwc", "densenet121", cpu)
    images, labels, splits = toy_dataset()
    runs = {}
    for fmt in ("contiguous", "channels_last"):
        _, metrics, probs = classifier.train_classifier(images, labels, splits, settings(memory_format=fmt),
                                                        tmp_path / f"{fmt}.pt", cpu, log=lambda _: None)
        assert metrics["memory_format"] == fmt
        runs[fmt] = ([h["loss"] for h in metrics["history"]], probs)
    # Only the order of float operations differs. (Weights are no test: a convolution's bias before
    # a BatchNorm has no true gradient, and Adam turns its rounding noise into steps of lr.)
    np.testing.assert_allclose(runs["contiguous"][0], runs["channels_last"][0], rtol=1e-3)
    np.testing.assert_allclose(runs["contiguous"][1], runs["channels_last"][1], atol=0.01)
