"""The paper's computations, recomputed the paper's way (PAIR's `saliency` library, plain
autograd) to compare the project's methods against; sizes of the tiny test batches."""

import numpy as np
import torch


S = 16


B = 3


GRADIENT_METHODS = ["grad", "sg", "ig", "sig", "gcam", "gbp", "ggcam"]


# a prior (average mask) of the test batches' size: brighter towards the bottom right
PRIOR = np.add.outer(np.linspace(0, 1, S), np.linspace(0, 0.5, S))


FAST = {"sg": {"samples": 4}, "sig": {"samples": 2, "steps": 3}, "ig": {"steps": 4}, "xrai": {"steps": 3},
        "occlusion": {"window": 4, "stride": 2}, "prior": {"prior": PRIOR}}


def vig(mask_3d):
    """PAIR's VisualizeImageGrayscale of an HWC (or HW) map, then saliency_ttest's min-max."""
    from saliency.core import VisualizeImageGrayscale

    m = VisualizeImageGrayscale(mask_3d if mask_3d.ndim == 3 else mask_3d[..., None])
    return (m - m.min()) / (m.max() - m.min())


def ref_post(attr):
    """The paper's post-processing of a batch [B, C, S, S] (PAIR's function, per image)."""
    a = np.asarray(attr, np.float64)
    return np.stack([vig(ai.transpose(1, 2, 0) if ai.ndim == 3 else ai) for ai in a]).astype(np.float32)


def minmax(m):
    m = np.asarray(m, np.float64)
    return (m - m.min()) / (m.max() - m.min())


def grad_of_logit(model, x, target):
    """d logit[target] / d x for a batch, with plain autograd."""
    x = x.detach().clone().requires_grad_(True)
    out = model(x)
    (g,) = torch.autograd.grad(out[torch.arange(len(x)), target].sum(), x)
    return g


def predicted(model, x):
    with torch.no_grad():
        return model(x).argmax(1)


def pair_cmf(model):
    """A PAIR call_model_function around a torch model (HWC float64 batches in, float32 out)."""
    from saliency.core import base as pair_base

    def call_model_function(xb, call_model_args=None, expected_keys=None):
        xt = torch.tensor(np.asarray(xb), dtype=torch.float32).permute(0, 3, 1, 2).contiguous().requires_grad_(True)
        (gr,) = torch.autograd.grad(model(xt)[:, call_model_args["target"]].sum(), xt)
        return {pair_base.INPUT_OUTPUT_GRADIENTS: gr.permute(0, 2, 3, 1).numpy()}

    return call_model_function


def hwc(x):
    return x.permute(1, 2, 0).double().numpy()
