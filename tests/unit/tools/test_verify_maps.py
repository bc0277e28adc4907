"""tools/verify_maps.py: PAIR's library recomputes a results tree's maps; it accepts the
workflow's maps and rejects maps computed another way."""

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import verify_maps
from salaudit import models
from salaudit.saliency import maps

METHODS = ["grad", "sg", "ig", "sig", "gcam", "gbp", "ggcam", "xrai"]
CONFIG = {"seed": 3, "torch_threads": 1, "datasets": {"siim": {"format": "siim", "demo": {}}},
          "saliency": {"batch_size": 2, "max_batch": 5, "sg": {"samples": 3}, "ig": {"steps": 4},
                       "sig": {"samples": 2, "steps": 3}, "xrai": {"steps": 3}}}
KEY = ("siim", "tiny_cnn", 0, "trained")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A results tree of one tiny_cnn (5 evaluation images of 32 px, batches of 2 and 1) whose
    maps the workflow's `maps.compute_all` wrote."""
    root = tmp_path_factory.mktemp("verify")
    torch.manual_seed(0)
    model = models.build_model("tiny_cnn").eval()
    with torch.no_grad():
        for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
    d = root / "results" / "siim"
    (d / "data").mkdir(parents=True)
    yy, xx = np.mgrid[:32, :32]
    noise = np.random.default_rng(1).normal(0, 20, (7, 32, 32))
    images = np.stack([128 + 60 * np.sin(xx / (3 + i)) + 40 * np.cos(yy / (2 + i)) for i in range(7)]) + noise
    images = np.clip(images, 0, 255).astype(np.uint8)
    np.save(d / "data" / "images.npy", images)
    index = np.arange(1, 6)
    pd.DataFrame({"index": index, "image_id": [f"im{i}" for i in index]}).to_csv(d / "eval_images.csv", index=False)
    models.save_checkpoint(d / "models" / "tiny_cnn" / "fold0" / "model.pt", model, "classifier", "tiny_cnn",
                           settings={"fold": 0}, image_size=32)
    (root / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    # the run's validated saliency block (batch_size 2, max_batch 5, the settings above), METHODS only
    saliency = {**verify_maps.run_settings(root / "config.yaml")["saliency"], "methods": METHODS}
    assert (saliency["batch_size"], saliency["max_batch"]) == (2, 5)
    torch.set_num_threads(1)
    out = maps.compute_all(model, "tiny_cnn", images[index], saliency, seed=3, device="cpu", model_key=KEY)
    for method, (m, f) in out.items():
        maps.save_maps(d / "maps" / "tiny_cnn" / "fold0", method, "trained", m, f)
    return {"root": root, "model": model, "images": images[index], "saliency": saliency}


def verify(tree, capsys, *methods):
    code = verify_maps.main(["--results", str(tree["root"] / "results"), "--dataset", "siim", "--arch", "tiny_cnn",
                             "--configfile", str(tree["root"] / "config.yaml"), "--methods", *methods])
    return code, capsys.readouterr().out


def test_the_workflows_maps_equal_pairs(tree, capsys):
    code, out = verify(tree, capsys, *METHODS)
    assert code == 0, out
    assert out.count("(OK)") == 8
    for line in out.splitlines():  # float16 rounding of PAIR's value, nearly everywhere exactly
        share = float(line.split("min r ")[1].split(", ")[1].split(" %")[0])
        assert share > 99.0, line


def replace_maps(tree, method, new_maps):
    folder = tree["root"] / "results" / "siim" / "maps" / "tiny_cnn" / "fold0"
    saved = maps.load_maps(folder, method, "trained")
    maps.save_maps(folder, method, "trained", new_maps, saved[1])
    return lambda: maps.save_maps(folder, method, "trained", *saved)


@pytest.mark.parametrize("method, change", [
    ("ig", {"ig_method": "riemann_trapezoid"}),  # Captum's rule, not PAIR's
    ("sg", "other_noise"),  # the noise of another model
    ("gcam", "abs_minmax"),  # the previous post-processing: min-max without the percentile clip
])
def test_maps_computed_another_way_are_rejected(tree, capsys, method, change):
    x = models.preprocess(tree["images"])
    if change == "other_noise":
        saliency = {**tree["saliency"], "methods": [method]}
        wrong = maps.compute_all(tree["model"], "tiny_cnn", tree["images"], saliency, seed=3, device="cpu",
                                 model_key=("siim", "tiny_cnn", 1, "trained"))[method][0]
    elif change == "abs_minmax":
        from salaudit.saliency import cam, methods

        t = methods.predicted_class(tree["model"], x)
        raw = cam.raw_gcam(tree["model"], x, t, layer=None, arch="tiny_cnn")
        wrong = np.stack([(r - r.min()) / (r.max() - r.min()) for r in raw[:, 0].numpy()]).astype(np.float16)
    else:
        saliency = {**tree["saliency"], "methods": [method], method: {**tree["saliency"][method], **change}}
        wrong = maps.compute_all(tree["model"], "tiny_cnn", tree["images"], saliency, seed=3, device="cpu",
                                 model_key=KEY)[method][0]
    restore = replace_maps(tree, method, wrong)
    try:
        code, out = verify(tree, capsys, method)
    finally:
        restore()
    assert code == 1 and "(MISMATCH)" in out, out
