"""salaudit.files: a damaged array or checkpoint is one line naming it and the rule that remakes it."""

import numpy as np
import pytest

from salaudit import files


@pytest.mark.parametrize("path, rule", [
    ("results/siim/data/images.npy", "convert"),
    ("/elsewhere/results/rsna/maps/inception_v3/fold0/grad/trained.flags.npy", "saliency"),
    ("results/rsna/maps/inception_v3/fold0/gcam/bottom_up/03_Mixed_7b.npy", "randomized_saliency_inception_v3"),
    ("results/rsna/maps/densenet121/fold2/sg/label_randomized.npy", "label_randomized_saliency"),
    ("results/siim/localizers/unet/fold1/maps.npy", "train_localizer"),
    ("results/siim/label_randomization/inception_v3/fold0/model.pt", "train_label_randomized"),
    ("results/siim/baselines/average_mask.npy", "average_mask"),
    ("notes/elsewhere.npy", None),
])
def test_the_rule_that_makes_each_file(path, rule):
    assert files.producer(path) == rule


def test_a_truncated_array_is_one_line_naming_it_and_its_rule(tmp_path):
    folder = tmp_path / "results" / "siim" / "data"
    folder.mkdir(parents=True)
    path = folder / "images.npy"
    np.save(path, np.zeros((4, 8, 8), np.uint8))
    assert files.check_npy(path) == ((4, 8, 8), np.dtype(np.uint8))
    assert files.load_npy(path).shape == (4, 8, 8)
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[:-100])  # a copy cut short
    with pytest.raises(files.DamagedFile) as info:
        files.load_npy(path)
    assert str(info.value) == (f"{path}: damaged ({size - 100} of {size} bytes); "
                               "remake it: snakemake --forcerun convert")
    path.write_bytes(b"not numpy")
    with pytest.raises(files.DamagedFile, match=r"damaged \(not a \.npy file"):
        files.check_npy(path)


def test_a_truncated_checkpoint_or_npz_is_one_line(tmp_path):
    import torch

    folder = tmp_path / "results" / "siim" / "models" / "tiny_cnn" / "fold0"
    folder.mkdir(parents=True)
    path = folder / "model.pt"
    torch.save({"w": torch.zeros(100)}, path)
    files.check_zip(path)
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(files.DamagedFile, match=r"model\.pt: damaged \(not a complete archive: .*\); "
                                                r"remake it: snakemake --forcerun train_classifier$"):
        files.check_zip(path)
