"""Gradient methods (salaudit.saliency.gradients): GRAD, IG, SmoothGrad and SmoothGrad-IG against
PAIR's library and a known integral."""

import numpy as np
import pytest
import torch
from torch import nn
from helpers.reference import B, vig, predicted, pair_cmf, hwc
from salaudit.saliency import gradients as Gr, methods as M


def test_grad_equals_pairs_gradient_saliency(tiny, images):
    from saliency.core import GradientSaliency

    maps, _ = M.compute_maps("grad", tiny, images)
    t = predicted(tiny, images)
    for i in range(B):
        mask = GradientSaliency().GetMask(hwc(images[i]), pair_cmf(tiny), {"target": int(t[i])})
        np.testing.assert_allclose(maps[i], vig(mask), atol=1e-5)


class Cubic(nn.Module):
    """logit_1 = Σ w x³ (logit_0 = 0): IG has a closed form."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        z = (self.w * x ** 3).flatten(1).sum(1)
        return torch.stack([torch.zeros_like(z), z], dim=1)


@pytest.mark.parametrize("steps", [2, 5, 10])
def test_ig_is_pairs_rule_on_a_known_integral(steps):
    """PAIR's rule: (x - b) × mean of ∇f at b + α (x - b), α = linspace(0, 1, n), equal weights,
    both ends included. For f = Σ w x³: 3 w d (b² + b d + d² (2n - 1) / (6 (n - 1))), d = x - b —
    not the true integral w (x³ - b³), whose d² term is 1/3. Captum's riemann_trapezoid halves the
    end weights of 1/n: (n - 1)/n times the trapezoid rule, whose d² term is 1/3 + 1/(6 (n - 1)²)."""
    g = torch.Generator().manual_seed(0)
    w = torch.rand((1, 3, 4, 4), generator=g, dtype=torch.float64) + 0.5
    model = Cubic(w.float())
    x = torch.rand((2, 3, 4, 4), generator=g) * 2 - 1
    target = torch.ones(2, dtype=torch.long)
    b = -1.0
    d = x.double() - b
    want = 3 * w * d * (b ** 2 + b * d + d ** 2 * (2 * steps - 1) / (6 * (steps - 1)))
    got = Gr.integrated_gradients(model, x, target, b, steps=steps, ig_method="pair", points_per_image=3)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    exact = w * (x.double() ** 3 - b ** 3)
    assert not torch.allclose(got, exact, rtol=1e-3)
    # points_per_image 64: every step in one pass (no default any more)
    trap = Gr.integrated_gradients(model, x, target, b, steps=steps, ig_method="riemann_trapezoid",
                                   points_per_image=64)
    want_trap = 3 * w * d * (steps - 1) / steps * (b ** 2 + b * d + d ** 2 * (1 / 3 + 1 / (6 * (steps - 1) ** 2)))
    torch.testing.assert_close(trap, want_trap, rtol=1e-5, atol=1e-6)


def test_ig_equals_pairs_integrated_gradients(tiny, images):
    """The map of every image equals PAIR's IntegratedGradients.GetMask, whose batch_size is the
    points of one image per pass (max_batch 7 over 3 images: 2 → chunks 2 + 2 + 1 of 5 steps)."""
    from saliency.core import IntegratedGradients

    maps, _ = M.compute_maps("ig", tiny, images, {"steps": 5, "max_batch": 7})
    t = predicted(tiny, images)
    for i in range(B):
        xi = hwc(images[i])
        mask = IntegratedGradients().GetMask(xi, pair_cmf(tiny), {"target": int(t[i])},
                                             x_baseline=np.full_like(xi, -1.0), x_steps=5, batch_size=2)
        np.testing.assert_allclose(maps[i], vig(mask), atol=1e-5)


def noise_draws(images, samples, seed):
    """The project's documented noise: sample k is the k-th randn(images.shape) of a generator
    seeded with the batch's seed."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(images.shape, generator=g) for _ in range(samples)]


def pair_smoothed(images, t, draws, get_smoothed_mask, samples):
    """PAIR's GetSmoothedMask per image, its np.random.normal(0, stdev, shape) fed stdev × the draws."""
    import saliency.core.base as pair_base

    out, original = [], pair_base.np

    class Numpy:
        def __getattr__(self, name):
            return getattr(original, name)

    for i in range(len(images)):
        queue = [d[i].permute(1, 2, 0).double().numpy() for d in draws]
        fake = Numpy()
        fake.random = type("R", (), {"normal": staticmethod(lambda loc, scale, size: scale * queue.pop(0))})
        pair_base.np = fake
        try:
            out.append(get_smoothed_mask(hwc(images[i]), {"target": int(t[i])}))
        finally:
            pair_base.np = original
        assert not queue  # every draw used, in order
    return np.stack(out)


def test_sg_equals_pairs_get_smoothed_mask_with_the_projects_noise(tiny, images):
    from saliency.core import GradientSaliency

    t = predicted(tiny, images)
    draws = noise_draws(images, 5, 7)
    want = pair_smoothed(images, t, draws, lambda x, args: GradientSaliency().GetSmoothedMask(
        x, pair_cmf(tiny), args, stdev_spread=0.15, nsamples=5, magnitude=True), 5)
    maps, _ = M.compute_maps("sg", tiny, images, {"samples": 5, "seed": 7})
    np.testing.assert_allclose(maps, np.stack([vig(m) for m in want]), atol=1e-5)
    mean, _ = M.compute_maps("sg", tiny, images, {"samples": 5, "seed": 7, "nt_type": "smoothgrad"})
    want = pair_smoothed(images, t, draws, lambda x, args: GradientSaliency().GetSmoothedMask(
        x, pair_cmf(tiny), args, stdev_spread=0.15, nsamples=5, magnitude=False), 5)
    np.testing.assert_allclose(mean, np.stack([vig(m) for m in want]), atol=1e-5)


def test_sig_equals_pairs_smoothed_integrated_gradients(tiny, images):
    from saliency.core import IntegratedGradients

    t = predicted(tiny, images)
    draws = noise_draws(images, 3, 11)
    want = pair_smoothed(images, t, draws, lambda x, args: IntegratedGradients().GetSmoothedMask(
        x, pair_cmf(tiny), args, stdev_spread=0.15, nsamples=3, magnitude=True, x_baseline=np.full_like(x, -1.0),
        x_steps=3, batch_size=3), 3)
    maps, _ = M.compute_maps("sig", tiny, images, {"samples": 3, "steps": 3, "seed": 11, "max_batch": 10})
    np.testing.assert_allclose(maps, np.stack([vig(m) for m in want]), atol=1e-5)
