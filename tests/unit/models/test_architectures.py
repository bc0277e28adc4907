import numpy as np
import pytest
import torch

from salaudit import models
from salaudit.models.architectures import TinyCNN


@pytest.mark.parametrize("arch, size", [("inception_v3", 75), ("inception_v3", 96), ("densenet121", 64), ("tiny_cnn", 16)])
def test_every_architecture_builds_and_runs(arch, size):
    torch.manual_seed(0)
    model = models.build_model(arch).eval()
    x = models.preprocess(np.zeros((2, size, size), np.uint8))
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 2)


@pytest.mark.parametrize("arch", list(models.ARCHITECTURES))
def test_cascade_and_gradcam_layers_exist(arch):
    model = models.build_model(arch)
    names = dict(model.named_modules())
    spec = models.get_architecture(arch)
    assert spec.gradcam_layer in names and spec.head in names
    steps = models.cascade_blocks(arch)
    assert steps[0] == spec.head or steps[0] == "classifier"
    assert len(set(steps)) == len(steps)
    for _, paths in spec.cascade:
        for path in paths:
            assert path in names, f"{arch}: {path}"


def test_inception_cascade_is_the_papers():
    assert models.cascade_blocks("inception_v3") == [
        "fc", "Mixed_7c", "Mixed_7b", "Mixed_7a", "Mixed_6e", "Mixed_6d", "Mixed_6c", "Mixed_6b",
        "Mixed_6a", "Mixed_5d", "Mixed_5c"]
    assert models.cascade_blocks("densenet121")[0] == "classifier"
    assert models.cascade_blocks("densenet121")[-1] == "denseblock1"


def test_preprocess_scales_to_minus_one_one():
    x = models.preprocess(np.array([[[0, 255], [127, 128]]], np.uint8))
    assert x.shape == (1, 3, 2, 2) and x.dtype == torch.float32
    assert x[0, 0, 0, 0] == -1 and x[0, 0, 0, 1] == 1
    assert torch.equal(x[:, 0], x[:, 2])
    with pytest.raises(ValueError, match="uint8"):
        models.preprocess(np.zeros((1, 2, 2), np.float32))


def test_bad_requests_are_clear():
    with pytest.raises(models.ModelError, match="unknown architecture 'resnet9'"):
        models.build_model("resnet9")
    with pytest.raises(models.ModelError, match="inception_v3 needs image_size >= 75"):
        models.check_image_size("inception_v3", 64)
    with pytest.raises(models.ModelError, match="does not exist"):
        models.build_model("tiny_cnn", pretrained="/nonexistent/weights.pth")


def test_pretrained_reads_a_local_file_and_skips_the_head(tmp_path):
    torch.manual_seed(1)
    source = TinyCNN(num_classes=7)  # a different head shape, like ImageNet's 1000 classes
    torch.save(source.state_dict(), tmp_path / "w.pth")
    model = models.build_model("tiny_cnn", pretrained=tmp_path / "w.pth")
    assert torch.equal(model.block1[0].weight, source.block1[0].weight)
    assert model.fc.weight.shape == (2, 16)
    torch.save({"unrelated.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(models.ModelError, match="not tiny_cnn weights"):
        models.build_model("tiny_cnn", pretrained=tmp_path / "other.pth")


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(2)
    model = models.build_model("tiny_cnn")
    models.save_checkpoint(tmp_path / "model.pt", model, "classifier", "tiny_cnn", settings={"lr": 0.1}, image_size=32)
    loaded, meta = models.load_checkpoint(tmp_path / "model.pt")
    assert not loaded.training
    # one format for classifiers and localizers: the architecture is the checkpoint's ``name``
    assert meta["kind"] == "classifier" and meta["name"] == "tiny_cnn"
    assert meta["settings"] == {"lr": 0.1} and meta["image_size"] == 32
    assert meta["versions"]["torch"] == torch.__version__
    assert "127.5" in meta["preprocessing"]
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
