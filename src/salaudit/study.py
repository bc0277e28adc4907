"""What a validated config asks the study to compute, resolved once for the workflow (at parse
time) and the scripts alike: the classifiers (architectures x folds), the methods, the
randomized models and their steps, each dataset's localizer. Torch-free.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from salaudit import layout, registry


@dataclass(frozen=True)
class Study:
    datasets: dict[str, dict]  # name -> its config entry (format, root or demo, ...)
    archs: list[str]
    folds: list[int]
    methods: list[str]
    randomized_archs: list[str]  # saliency.randomization.archs that are trained (classifiers.archs)
    randomized_folds: list[int]  # saliency.randomization.folds; null: every fold
    modes: list[str]
    label_archs: list[str]  # evaluation.label_randomization.archs that are trained (classifiers.archs)
    label_folds: list[int]  # evaluation.label_randomization.folds; null: every fold

    def localizer(self, dataset: str) -> str:
        """Masks → U-Net, boxes → RetinaNet (a table: by its columns, `formats.localizer`)."""
        from salaudit.datasets import formats

        spec = self.datasets[dataset]
        return formats.localizer(spec, spec.get("root") or layout.DEMO_DATA.format(dataset=dataset))

    def steps(self, arch: str) -> list[str]:
        """Step labels of ``arch``'s randomization, top-down (the last: every block random)."""
        return registry.step_labels(arch)

    def randomized_steps(self) -> dict[str, list[str]]:
        return {arch: self.steps(arch) for arch in self.randomized_archs}

    def label_models(self) -> list[tuple[str, int]]:
        """(arch, fold) of every replicate retrained on permuted labels."""
        return [(arch, fold) for arch in self.label_archs for fold in self.label_folds]


def study(config: dict) -> Study:
    """The `Study` of a validated config (defaults filled in)."""
    archs = list(config["classifiers"]["archs"])
    folds = list(range(config["folds"]))
    randomization = config["saliency"]["randomization"]
    labels = config["evaluation"]["label_randomization"]
    return Study(
        datasets=dict(config.get("datasets", {})), archs=archs, folds=folds,
        methods=list(config["saliency"]["methods"]),
        randomized_archs=[a for a in randomization["archs"] if a in archs],
        randomized_folds=folds if randomization["folds"] is None else list(randomization["folds"]),
        modes=list(randomization["modes"]),
        label_archs=[a for a in labels["archs"] if a in archs],
        label_folds=folds if labels["folds"] is None else list(labels["folds"]),
    )


def run_notes(config: dict, root: str | Path = layout.RESULTS) -> list[str]:
    """What the terminal says after a run (the workflow's ``onsuccess``): per dataset, the inputs
    left out as bad input (``on_bad_input: skip``) and fewer evaluation images than ``n_eval``,
    each with the file that lists them."""
    notes = []
    for name in config["datasets"]:
        rejected = layout.path(layout.REJECTED, root, dataset=name)
        evaluated = layout.path(layout.EVAL_IMAGES, root, dataset=name)
        if rejected.is_file() and (n := _rows(rejected)):
            notes.append(f"NOTE {name}: {n} inputs left out as bad input (on_bad_input: {config['on_bad_input']}), "
                         f"listed in {rejected}")
        if evaluated.is_file() and (n := _rows(evaluated)) < config["n_eval"]:
            notes.append(f"NOTE {name}: n_eval is {config['n_eval']} but only {n} positive test images have a lesion "
                         f"at image_size: {n} evaluated ({evaluated}; the report's overview says so too)")
    return notes


def _rows(path: Path) -> int:
    with open(path, newline="") as handle:
        return max(sum(1 for _ in csv.reader(handle)) - 1, 0)  # the header
