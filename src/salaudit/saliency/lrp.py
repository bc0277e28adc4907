"""Layer-wise relevance propagation (LRP) by zennit, on the architectures whose every layer has a
rule (`salaudit.registry.METHOD_ARCHS`): ``tiny_cnn``, ``inception_v3``, torchvision's VGGs and
AlexNet — convolution, then BatchNorm (merged into the convolution by zennit's
``SequentialMergeBatchNorm``), then ReLU — and its ResNets, ResNeXts and Wide ResNets (zennit's
``ResNetCanonizer``: BatchNorms merged, the residual additions given a rule).
DenseNet121 is refused (every dense layer and transition starts with a BatchNorm of the
concatenated features, before its convolution: no canonizer merges that into a linear layer, and
zennit has none for DenseNet), as is any other architecture: `salaudit.registry.check_method_arch` raises one line naming both.

zennit's rules are module hooks, so the functional operations of a model would back-propagate the
plain gradient instead of relevance — the trap guided backpropagation had with functional ReLUs.
Within `functional_rules` every ReLU (functional ones included, `salaudit.saliency.guided.relu_replaced`)
passes relevance on unchanged (zennit's ``Pass`` for ``nn.ReLU``) and every average pooling
(``F.avg_pool2d``, ``F.adaptive_avg_pool2d``: the global pooling before the head of ``tiny_cnn``,
InceptionV3's pool branches; and the pooling modules, which call them) applies zennit's ``Norm``
rule, ``R_in = x ⊙ pool^T(R_out / pool(x))``; zennit's own hook is then left off the pooling
modules so that no rule is applied twice. Max pooling keeps the gradient (winner takes all).

The relevance starts at the target logit (``R = f_c(x)`` at the output): with ``epsilon`` small,
the input relevance sums to about the logit where biases are zero (conservation).
"""

from __future__ import annotations

import contextlib
import functools

import torch

from salaudit.registry import check_method_arch
from salaudit.saliency.guided import relu_replaced

COMPOSITES = ("epsilon_plus_flat", "epsilon_plus", "epsilon_gamma_box", "epsilon_alpha2_beta1_flat")
# The preprocessed pixel range (`salaudit.models.preprocess`): ZBox's bounds in epsilon_gamma_box.
INPUT_LOW, INPUT_HIGH = -1.0, 1.0
STABILIZER = 1e-6


class _PassReLU(torch.autograd.Function):
    """ReLU that passes relevance on unchanged (zennit's ``Pass`` rule)."""

    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, relevance):
        return relevance


class _NormPool(torch.autograd.Function):
    """An average pooling ``pool`` whose backward is zennit's ``Norm`` rule."""

    @staticmethod
    def forward(ctx, x, pool):
        ctx.save_for_backward(x)
        ctx.pool = pool
        return pool(x)

    @staticmethod
    def backward(ctx, relevance):
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            xd = x.detach().requires_grad_(True)
            z = ctx.pool(xd)
            stabilized = z + STABILIZER * torch.where(z >= 0, 1.0, -1.0)
            (g,) = torch.autograd.grad(z, xd, relevance / stabilized)
        return x * g, None


_POOLS = ("avg_pool2d", "adaptive_avg_pool2d")


def _call_pool(original, args, kwargs, x):
    return original(x, *args, **kwargs)


@contextlib.contextmanager
def functional_rules():
    """Every ReLU passes relevance, every 2-D average pooling applies the Norm rule (module docstring)."""
    functional = torch.nn.functional
    originals = {name: getattr(functional, name) for name in _POOLS}

    def norm_pool(original):
        def call(x, *args, **kwargs):
            return _NormPool.apply(x, functools.partial(_call_pool, original, args, kwargs))
        return call

    try:
        for name, original in originals.items():
            setattr(functional, name, norm_pool(original))
        with relu_replaced(_PassReLU.apply):
            yield
    finally:
        for name, original in originals.items():
            setattr(functional, name, original)


def composite_of(name: str, images: torch.Tensor, epsilon: float, arch: str | None = None, bounds=None):
    """zennit's composite ``name`` with BatchNorm merged into the preceding layer (torchvision's
    ResNets: zennit's ``ResNetCanonizer``, which also gives the residual additions a rule), the
    pooling modules left to `functional_rules`."""
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import EpsilonAlpha2Beta1Flat, EpsilonGammaBox, EpsilonPlus, EpsilonPlusFlat
    from zennit.torchvision import ResNetCanonizer
    from zennit.types import AvgPool

    residual = arch is not None and arch.startswith(("resnet", "resnext", "wide_resnet"))
    common = dict(epsilon=float(epsilon), stabilizer=STABILIZER, layer_map=[(AvgPool, None)],
                  canonizers=[ResNetCanonizer() if residual else SequentialMergeBatchNorm()])
    if name == "epsilon_plus_flat":
        return EpsilonPlusFlat(**common)
    if name == "epsilon_plus":
        return EpsilonPlus(**common)
    if name == "epsilon_alpha2_beta1_flat":
        return EpsilonAlpha2Beta1Flat(**common)
    if name == "epsilon_gamma_box":
        low, high = bounds if bounds is not None else (INPUT_LOW, INPUT_HIGH)  # per channel for an imported model
        return EpsilonGammaBox(low=torch.as_tensor(low, dtype=images.dtype, device=images.device).expand_as(images),
                               high=torch.as_tensor(high, dtype=images.dtype, device=images.device).expand_as(images),
                               **common)
    raise ValueError(f"unknown LRP composite {name!r}; known: {', '.join(COMPOSITES)}")


def raw_lrp(model, images, target, *, composite, epsilon, arch, bounds=None, **_):
    """LRP relevance ``[B, 3, S, S]`` of the target logit under zennit's ``composite``; refuses
    (one-line ValueError) an architecture it does not support. One pass."""
    check_method_arch("lrp", arch)
    from zennit.attribution import Gradient

    rules = composite_of(composite, images, epsilon, arch, bounds)

    def start(out):  # R = the target logit, 0 for the other classes
        return out * torch.nn.functional.one_hot(target, out.shape[1]).to(out.dtype)

    with functional_rules(), Gradient(model=model, composite=rules) as attributor:
        _, relevance = attributor(images.detach().clone(), start)
    return relevance.detach()
