"""Classifiers brought as weights (issue 18): the files a team has, checked in one line each."""

import numpy as np
import pandas as pd
import pytest
import torch

from salaudit import models
from salaudit.models import imported
from salaudit.saliency import methods


@pytest.fixture
def resnet18():
    torch.manual_seed(0)
    return models.build_model("resnet18").eval()


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.script/save
def test_a_state_dict_a_wrapped_one_a_data_parallel_one_and_torchscript_load_the_same(tmp_path, resnet18):
    state = resnet18.state_dict()
    torch.save(state, tmp_path / "plain.pt")
    torch.save({"epoch": 3, "state_dict": state}, tmp_path / "wrapped.pth")
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "parallel.pt")
    torch.jit.save(torch.jit.script(resnet18), tmp_path / "scripted.pt")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = resnet18(x)
        for name in ("plain.pt", "wrapped.pth", "parallel.pt", "scripted.pt"):
            model = imported.load_weights(tmp_path / name, "resnet18")
            torch.testing.assert_close(model(x), expected, rtol=0, atol=0, msg=name)


def test_weights_of_another_architecture_are_one_line_naming_the_file(tmp_path, resnet18):
    torch.save(resnet18.state_dict(), tmp_path / "r18.pt")
    with pytest.raises(models.ModelError) as err:
        imported.load_weights(tmp_path / "r18.pt", "resnet34")
    assert str(err.value) == f"{tmp_path / 'r18.pt'}: not resnet34 weights: 80 missing (e.g. layer1.2.conv1.weight) tensors"
    with pytest.raises(models.ModelError, match=r"r18.pt: not densenet121 weights: \d+ missing .* \d+ unexpected"):
        imported.load_weights(tmp_path / "r18.pt", "densenet121")


def test_an_imagenet_head_is_refused_with_its_class_count(tmp_path):
    from torchvision.models import resnet18

    torch.save(resnet18(weights=None).state_dict(), tmp_path / "imagenet.pt")
    with pytest.raises(models.ModelError) as err:
        imported.load_weights(tmp_path / "imagenet.pt", "resnet18")
    assert str(err.value) == (f"{tmp_path / 'imagenet.pt'}: resnet18 weights with 1000 output classes at fc; "
                              "the audit needs 2 (normal, abnormal)")


def test_what_is_not_a_weights_file_says_so(tmp_path):
    (tmp_path / "notes.pt").write_text("hello")
    with pytest.raises(models.ModelError, match="notes.pt: not a torch weights file"):
        imported.load_weights(tmp_path / "notes.pt", "resnet18")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(models.ModelError, match="list.pt: holds no state_dict"):
        imported.load_weights(tmp_path / "list.pt", "resnet18")
    with pytest.raises(models.ModelError, match="absent.pt: no such weights file"):
        imported.load_weights(tmp_path / "absent.pt", "resnet18")


def test_a_grey_model_takes_one_channel_and_the_mismatch_says_how(tmp_path):
    torch.manual_seed(0)
    grey = models.build_model("resnet18", channels=1)
    torch.save(grey.state_dict(), tmp_path / "grey.pt")
    with pytest.raises(models.ModelError, match=r"conv1.weight \(64, 1, 7, 7\) instead of \(64, 3, 7, 7\) "
                                                r"\(a grey model: set classifiers.preprocess.resnet18.channels: 1\)"):
        imported.load_weights(tmp_path / "grey.pt", "resnet18")
    model = imported.load_weights(tmp_path / "grey.pt", "resnet18", channels=1)
    spec = models.input_spec({"channels": 1, "range": [0.0, 1.0]})
    x = models.preprocess(np.full((2, 32, 32), 255, np.uint8), spec)
    assert x.shape == (2, 1, 32, 32) and float(x.max()) == 1.0
    for method in ("grad", "gcam", "gbp", "ggcam", "smooth_random", "edge"):
        maps, _ = methods.compute_maps(method, model, x, arch="resnet18")
        assert maps.shape == (2, 32, 32), method


def test_preprocessing_an_imagenet_model_expects():
    spec = models.input_spec({"range": [0.0, 1.0], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]})
    x = models.preprocess(np.array([[[0, 255]]], np.uint8), spec)
    expected = (torch.tensor([0.0, 1.0]).view(1, 1, 2) - torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)) \
        / torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    torch.testing.assert_close(x[0], expected)
    default = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    assert torch.equal(models.preprocess(default, models.input_spec(None)), models.preprocess(default))


def test_an_imported_replicate_is_evaluated_on_its_fold_and_the_test_split(resnet18):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (12, 32, 32), dtype=np.uint8)
    labels = np.array([0, 1] * 6)
    splits = pd.DataFrame({"split": ["train"] * 8 + ["test"] * 4, "fold": [0, 1] * 4 + [-1] * 4})
    metrics, test = imported.evaluate(resnet18, images, labels, splits, 1, models.input_spec(None),
                                      torch.device("cpu"), 4)
    assert (metrics["n_val"], metrics["n_test"], metrics["epochs_run"]) == (4, 4, 0) and test.shape == (4,)
    with torch.no_grad():
        probs = torch.softmax(resnet18(models.preprocess(images[8:])), 1)[:, 1].numpy()
    np.testing.assert_allclose(test, probs, rtol=1e-6)
    assert metrics["test_auroc"] == pytest.approx(models.classifier.auroc(labels[8:], probs))


def test_baselines_are_black_as_an_imported_model_sees_it():
    """DeepLift's, occlusion's and IG's baseline (-1: black in the project's scale) and LRP's box
    bounds follow classifiers.preprocess: for an ImageNet-normalized model, black is
    (0 - mean) / std per channel, and DeepLift's completeness holds against that image."""
    from salaudit.saliency import maps

    spec = models.input_spec({"range": [0.0, 1.0], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]})
    black = models.to_input(-1.0, spec)
    torch.testing.assert_close(black.flatten(), -torch.tensor([0.485, 0.456, 0.406]) / torch.tensor([0.229, 0.224, 0.225]))
    torch.testing.assert_close(models.to_input(1.0, spec), models.preprocess(np.full((1, 1, 1), 255, np.uint8), spec))
    assert models.to_input(-1.0, None) == -1.0  # the project's own models: unchanged
    torch.manual_seed(0)
    model = models.build_model("resnet18").eval()
    images = np.random.default_rng(0).integers(0, 255, (2, 32, 32), dtype=np.uint8)
    saliency = {"methods": ["deeplift", "occlusion", "ig", "lrp"], "batch_size": 2, "max_batch": 16,
                "deeplift": {"baseline": -1.0}, "occlusion": {"window": 16, "stride": 8, "baseline": -1.0},
                "ig": {"steps": 4, "baseline": -1.0, "ig_method": "pair"},
                "lrp": {"composite": "epsilon_gamma_box", "epsilon": 1e-6}}
    seen = {}
    real = methods.METHODS.copy()
    try:
        for name in saliency["methods"]:
            methods.METHODS[name] = lambda m, x, t, _n=name, **s: (seen.__setitem__(_n, s), real[_n](m, x, t, **s))[1]
        maps.compute_all(model, "resnet18", images, saliency, seed=0, device="cpu", input_spec=spec)
    finally:
        methods.METHODS.update(real)
    for name in ("deeplift", "occlusion", "ig"):
        torch.testing.assert_close(seen[name]["baseline"], black, msg=name)
    torch.testing.assert_close(seen["lrp"]["bounds"][0], black)
    x = models.preprocess(images, spec)
    from salaudit.saliency.captum_methods import raw_deeplift

    target = methods.predicted_class(model, x)
    attr = raw_deeplift(model, x, target, baseline=black)
    with torch.no_grad():
        gap = model(x)[torch.arange(2), target] - model(black.expand_as(x))[torch.arange(2), target]
    torch.testing.assert_close(attr.sum(dim=(1, 2, 3)), gap, rtol=1e-3, atol=1e-4)
