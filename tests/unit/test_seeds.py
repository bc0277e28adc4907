"""salaudit.seeds: one helper names every random stream."""

import numpy as np
import torch

from salaudit import seeds


def test_streams_are_named_not_added():
    """seed + fold made fold 1 at seed 0 draw what fold 0 at seed 1 draws; named streams do not."""
    assert seeds.derive(0, "train_classifier", "inception_v3", 1) != seeds.derive(1, "train_classifier", "inception_v3", 0)
    assert seeds.derive(0, "split_test") != seeds.derive(0, "split_folds")
    assert seeds.derive(3, "saliency", "sg", "siim", "densenet121", 2, "trained", 8) == \
        seeds.derive(3, "saliency", "sg", "siim", "densenet121", 2, "trained", 8)
    assert seeds.derive(0, "x", -1) != seeds.derive(0, "x", 1)  # negative parts (fold -1) are allowed
    assert seeds.derive(0, "x", "1") != seeds.derive(0, "x", 1)
    assert 0 <= seeds.derive(2**40, "x") < 2**63


def test_generators_draw_the_named_stream():
    a = seeds.rng(5, "bootstrap").random(4)
    np.testing.assert_array_equal(a, np.random.default_rng(seeds.sequence(5, "bootstrap")).random(4))
    assert not np.array_equal(a, seeds.rng(5, "random_pairs").random(4))
    # a torch generator on a stream (as the saliency and training code seed theirs) is reproducible
    first, again = (torch.Generator().manual_seed(seeds.derive(5, "noise", 1)) for _ in range(2))
    assert torch.equal(torch.randn(3, generator=first), torch.randn(3, generator=again))


def test_a_stage_name_is_required():
    import pytest

    with pytest.raises(ValueError, match="stage name"):
        seeds.derive(0, "")
