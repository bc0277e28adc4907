"""Fixtures of the saliency tests: a tiny CNN with non-trivial BatchNorm statistics and a batch."""

import pytest
import torch
from torch import nn
from helpers.reference import S, B
from salaudit.models import build_model


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = build_model("tiny_cnn").eval()
    # non-trivial BatchNorm statistics, so eval mode is not the identity
    with torch.no_grad():
        for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
    return model


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(1)
    x = torch.rand((B, 3, S, S), generator=g) * 2 - 1
    x[1] *= 0.5  # a different (max - min) per image: per-image SmoothGrad sigma
    return x
