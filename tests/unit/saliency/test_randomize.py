import pytest
import torch

from salaudit import models, registry
from salaudit.saliency import randomize


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def owner(key, step_modules):
    return any(key == path or key.startswith(path + ".") for path in step_modules)


def trained_tiny():
    torch.manual_seed(0)
    model = models.build_model("tiny_cnn")
    with torch.no_grad():  # make every tensor differ from a fresh init, buffers included
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(0.5)
    return model


def test_steps_follow_the_registry():
    steps = randomize.steps("inception_v3")
    assert [s.label for s in steps[:3]] == ["01_fc", "02_Mixed_7c", "03_Mixed_7b"]
    assert steps[-1].label == "11_Mixed_5c"
    assert randomize.steps("densenet121")[1].modules == ("features.norm5", "features.denseblock4")
    for arch in ("inception_v3", "densenet121", "tiny_cnn"):  # the stems the rules declare (torch-free registry)
        assert [s.label for s in randomize.steps(arch)] == registry.step_labels(arch)


def test_cascade_changes_exactly_the_named_blocks_cumulatively():
    model = trained_tiny()
    trained = snapshot(model)
    done = []
    for step, randomized in randomize.randomized_models(model, "tiny_cnn", seed=3, mode="cascade"):
        done += step.modules
        state = randomized.state_dict()
        for key, value in state.items():
            if key.endswith("num_batches_tracked"):
                continue
            changed = not torch.equal(value, trained[key])
            assert changed == owner(key, done), f"step {step.label}: {key}"
    assert all(torch.equal(v, trained[k]) for k, v in model.state_dict().items())  # input untouched


def test_batchnorm_statistics_are_reset():
    model = trained_tiny()
    _, randomized = next(s for s in randomize.randomized_models(model, "tiny_cnn", 0, "cascade")
                         if s[0].name == "block3")
    bn = randomized.block3[1]
    assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))
    assert torch.equal(bn.weight, torch.ones_like(bn.weight))


def test_independent_changes_one_block_and_matches_the_cascade_weights():
    model = trained_tiny()
    trained = snapshot(model)
    cascade = {s.name: snapshot(m) for s, m in randomize.randomized_models(model, "tiny_cnn", 5, "cascade")}
    for step, randomized in randomize.randomized_models(model, "tiny_cnn", 5, "independent"):
        for key, value in randomized.state_dict().items():
            if key.endswith("num_batches_tracked"):
                continue
            if owner(key, step.modules):
                assert torch.equal(value, cascade[step.name][key])  # same random weights in both modes
            else:
                assert torch.equal(value, trained[key])


def test_same_seed_same_weights_and_global_rng_untouched():
    model = trained_tiny()
    torch.manual_seed(42)
    before = torch.rand(1)
    torch.manual_seed(42)
    a = [snapshot(m) for _, m in randomize.randomized_models(model, "tiny_cnn", 7, "cascade")]
    after = torch.rand(1)
    assert torch.equal(before, after)
    b = [snapshot(m) for _, m in randomize.randomized_models(model, "tiny_cnn", 7, "cascade")]
    c = [snapshot(m) for _, m in randomize.randomized_models(model, "tiny_cnn", 8, "cascade")]
    assert all(torch.equal(x[k], y[k]) for x, y in zip(a, b) for k in x)
    assert not torch.equal(a[0]["fc.weight"], c[0]["fc.weight"])
    with pytest.raises(ValueError, match="unknown randomization mode"):
        next(randomize.randomized_models(model, "tiny_cnn", 0, "shuffle"))


def test_inception_cascade_leaves_lower_blocks_alone():
    torch.manual_seed(0)
    model = models.build_model("inception_v3")
    trained = snapshot(model)
    step, randomized = next(s for s in randomize.randomized_models(model, "inception_v3", 0, "cascade")
                            if s[0].index == 2)
    state = randomized.state_dict()
    assert not torch.equal(state["fc.weight"], trained["fc.weight"])
    assert not torch.equal(state["Mixed_7c.branch1x1.conv.weight"], trained["Mixed_7c.branch1x1.conv.weight"])
    assert torch.equal(state["Mixed_7b.branch1x1.conv.weight"], trained["Mixed_7b.branch1x1.conv.weight"])
    assert torch.equal(state["Conv2d_1a_3x3.conv.weight"], trained["Conv2d_1a_3x3.conv.weight"])


def test_every_replicate_gets_its_own_random_blocks():
    """Step k of fold 0 and of fold 1 (or of another dataset) draws other weights; the same
    replicate draws the same ones, in both modes."""
    model = trained_tiny()

    def weights(replicate, mode="cascade"):
        return {s.name: snapshot(m) for s, m in randomize.randomized_models(model, "tiny_cnn", 7, mode, replicate)}

    fold0, again, fold1, other = weights(("siim", 0)), weights(("siim", 0)), weights(("siim", 1)), weights(("rsna", 0))
    for name in ("fc", "block2"):
        key = f"{name}.weight" if name == "fc" else f"{name}.0.weight"
        assert torch.equal(fold0[name][key], again[name][key])
        assert not torch.equal(fold0[name][key], fold1[name][key])
        assert not torch.equal(fold0[name][key], other[name][key])
    independent = weights(("siim", 1), "independent")
    assert torch.equal(independent["fc"]["fc.weight"], fold1["fc"]["fc.weight"])


def test_bottom_up_randomizes_from_the_input_and_names_each_step_by_its_block():
    """bottom_up: the model of label k has block k and every block below it random (the same
    random weights as the other modes); the order of the steps is the registry's, reversed."""
    model = trained_tiny()
    trained = snapshot(model)
    cascade = {s.name: snapshot(m) for s, m in randomize.randomized_models(model, "tiny_cnn", 5, "cascade")}
    seen, done = [], []
    for step, randomized in randomize.randomized_models(model, "tiny_cnn", 5, "bottom_up"):
        seen.append(step.label)
        done += step.modules
        for key, value in randomized.state_dict().items():
            if key.endswith("num_batches_tracked"):
                continue
            if owner(key, done):
                assert torch.equal(value, cascade["block1"][key]), f"step {step.label}: {key}"  # the random weights
            else:
                assert torch.equal(value, trained[key]), f"step {step.label}: {key}"
    assert seen == registry.mode_step_labels("tiny_cnn", "bottom_up") == registry.step_labels("tiny_cnn")[::-1]
    # its last step is the fully random model, as the cascade's
    assert all(torch.equal(v, cascade["block1"][k]) for k, v in randomized.state_dict().items())
    with pytest.raises(ValueError, match="unknown randomization mode 'sideways'"):
        next(randomize.randomized_models(model, "tiny_cnn", 5, "sideways"))
