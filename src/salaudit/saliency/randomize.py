"""Weight randomization of a trained classifier, block by block (the paper's model test).

Each architecture declares its blocks top-down in `salaudit.registry` (``ArchSpec.cascade``;
the config's ``saliency.randomization.blocks`` overrides them): InceptionV3 ``fc, Mixed_7c, ...,
Mixed_5c`` (the paper's "Logits, 10 ... 1"). Re-initialising a
block calls ``reset_parameters()`` on every submodule that has one, so BatchNorm weights,
biases and running statistics are reset too.

* `cascade`: step *k* has blocks 1..k re-initialised (cumulative, from the logits down); the last
  step is the paper's "untrained" model.
* `independent`: step *k* has only block *k* re-initialised, the rest trained.
* `bottom_up` (Quantus's order, Binder et al. 2023): the blocks from the bottom (input side) up to
  block *k* re-initialised, cumulative; randomization proceeds from the last block to the first,
  and the maps of block *k* (file ``{k:02d}_{block}``) are those of the model whose block *k* and
  every block below it are random. Its last step (block 1) is the fully random model again.

Every mode's map files carry the same step labels (`registry.step_labels`); the order in which a
mode randomizes them is `registry.mode_step_labels`.

Block *k* of a replicate is re-initialised from the stream ``(seed, "randomize", *replicate, arch,
k)`` of `salaudit.seeds`, where ``replicate`` names the model (dataset and fold): its random
weights are the same in both modes and do not depend on the other steps, and every replicate
(fold) gets its own random blocks.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from salaudit import registry, seeds

MODES = registry.RANDOMIZATION_MODES


@dataclass(frozen=True)
class Step:
    index: int  # 1-based, top-down
    name: str  # block name as declared in the registry
    modules: tuple[str, ...]  # module paths re-initialised at this step

    @property
    def label(self) -> str:
        """File stem of this step's maps (`registry.step_label`, which the workflow's rules use)."""
        return registry.step_label(self.index, self.name)


def steps(arch: str) -> list[Step]:
    """The randomization steps of ``arch``, top-down (its registry entry, or the config's
    ``saliency.randomization.blocks``: `salaudit.registry.override_cascades`)."""
    return [Step(k, name, paths) for k, (name, paths) in enumerate(registry.get_spec(arch).cascade, start=1)]


def reinitialise(model: nn.Module, step: Step, seed: int, stream: tuple = ()) -> None:
    """Re-initialise the modules of one step in place, from the stream ``(seed, "randomize",
    *stream, step.index)``; ``stream`` names the model (`randomized_models` passes
    ``(*replicate, arch)``).

    ``reset_parameters`` draws from torch's global generator, which is seeded here and
    restored afterwards so callers' random streams are not disturbed.
    """
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seeds.derive(seed, "randomize", *stream, step.index))
        for path in step.modules:
            try:
                block = model.get_submodule(path)
            except AttributeError:
                raise registry.ModelError(f"randomization step {step.name}: the model has no module {path!r}") from None
            for module in block.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
                elif any(True for _ in module.parameters(recurse=False)):
                    _reset_own_parameters(module, path)
    finally:
        torch.random.set_rng_state(state)


# Parameters held by a module without ``reset_parameters`` and the value its constructor gives
# them (torchvision's ConvNeXt blocks: ``layer_scale``, 1e-6 by default). Any other such parameter
# is an error: a block the cascade "randomizes" must not keep trained weights.
_CONSTANT_INITS = {("CNBlock", "layer_scale"): 1e-6}


def _reset_own_parameters(module: nn.Module, path: str) -> None:
    for name, parameter in module.named_parameters(recurse=False):
        value = _CONSTANT_INITS.get((type(module).__name__, name))
        if value is None:
            raise registry.ModelError(f"cannot re-initialise {path}: {type(module).__name__}.{name} has no "
                                      "reset_parameters (add its initial value to randomize._CONSTANT_INITS)")
        with torch.no_grad():
            parameter.fill_(value)


def randomized_models(model: nn.Module, arch: str, seed: int, mode: str,
                      replicate: tuple = ()) -> Iterator[tuple[Step, nn.Module]]:
    """Yield ``(step, model)`` for every step in the mode's order (top-down; bottom-up for
    ``bottom_up``); ``model`` is never modified.

    ``replicate`` names the trained model (e.g. ``(dataset, fold)``): every replicate gets its
    own random weights, the same in every mode.

    In the cumulative modes one copy is randomized further at each step (cheap, sequential); in
    independent mode each step gets a fresh copy of the trained model.
    """
    if mode not in MODES:
        raise ValueError(f"unknown randomization mode {mode!r}; expected one of {MODES}")
    current = None if mode == "independent" else copy.deepcopy(model)
    for step in (reversed(steps(arch)) if mode == "bottom_up" else steps(arch)):
        if mode == "independent":
            current = copy.deepcopy(model)
        reinitialise(current, step, seed, (*replicate, arch))
        yield step, current.eval()
