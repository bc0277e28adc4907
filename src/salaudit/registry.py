"""What the workflow needs to know about architectures, methods and localizers before any job
runs, without importing torch: names, minimum image sizes, Grad-CAM layers, the blocks of the
weight randomization (top-down), the methods' display names and config sections, and which
localizer each dataset format gets.

`salaudit.models` builds the networks from these entries; `Snakefile` and the rule files read
them at parse time, so a dry run or a no-op rerun never pays for importing torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path


class ModelError(ValueError):
    """A model that cannot be built or loaded as asked; the message says why."""


@dataclass(frozen=True)
class ArchSpec:
    min_size: int
    head: str  # the classification layer (skipped when loading pretrained weights)
    # Grad-CAM's layer: the activations the classifier head receives (after the last ReLU).
    gradcam_layer: str
    # Cascade steps top-down: (step name, module paths re-initialised at that step).
    cascade: tuple[tuple[str, tuple[str, ...]], ...]
    # Training on a CPU in channels-last memory format (classifiers.memory_format: auto; a GPU
    # always trains channels-last under auto). DenseNet121: 1.3x faster. InceptionV3 is 1.2x
    # faster too but stays contiguous: its channels-last demo models differ in the last bits, and
    # one of them gave an all-zero Grad-CAM, which the demo's headline check rejects (BENCHMARKS.md).
    cpu_channels_last: bool = False
    # Every activation a ReLU: guided backpropagation (GBP, GGCAM) is defined (README, "Any
    # torchvision CNN"); False for SiLU, GELU, Hardswish... networks, where they are refused.
    guided: bool = True
    activations: tuple[str, ...] = ("ReLU",)


_INCEPTION_BLOCKS = ("Mixed_7c", "Mixed_7b", "Mixed_7a", "Mixed_6e", "Mixed_6d", "Mixed_6c", "Mixed_6b",
                     "Mixed_6a", "Mixed_5d", "Mixed_5c")

ARCH_SPECS: dict[str, ArchSpec] = {
    # The paper's "Logits, 10 ... 1": fc, then the inception blocks from the top down.
    "inception_v3": ArchSpec(
        min_size=75, head="fc", gradcam_layer="Mixed_7c",
        cascade=(("fc", ("fc",)),) + tuple((name, (name,)) for name in _INCEPTION_BLOCKS),
    ),
    "densenet121": ArchSpec(
        # `features` ends with norm5 (BatchNorm); the head receives its ReLU, the module `relu`.
        min_size=32, head="classifier", gradcam_layer="relu", cpu_channels_last=True,
        cascade=(
            ("classifier", ("classifier",)),
            ("denseblock4", ("features.norm5", "features.denseblock4")),
            ("transition3", ("features.transition3",)),
            ("denseblock3", ("features.denseblock3",)),
            ("transition2", ("features.transition2",)),
            ("denseblock2", ("features.denseblock2",)),
            ("transition1", ("features.transition1",)),
            ("denseblock1", ("features.denseblock1",)),
        ),
    ),
    "tiny_cnn": ArchSpec(
        min_size=8, head="fc", gradcam_layer="block3",
        cascade=(("fc", ("fc",)), ("block3", ("block3",)), ("block2", ("block2",)), ("block1", ("block1",))),
    ),
}

PAPER_ARCHS = ("inception_v3", "densenet121")

# Every other torchvision classification model: its entry derived from its structure
# (`salaudit.models.structure`), written by tools/gen_torchvision_archs.py; "refused": the models
# that cannot be audited and why (a one-line config error names the reason).
TORCHVISION_TABLE = Path(__file__).with_name("torchvision_archs.json")
_TORCHVISION = json.loads(TORCHVISION_TABLE.read_text())
TORCHVISION_REFUSED: dict[str, str] = _TORCHVISION["refused"]
for _name, _entry in _TORCHVISION["archs"].items():
    ARCH_SPECS[_name] = ArchSpec(
        min_size=_entry["min_size"], head=_entry["head"], gradcam_layer=_entry["gradcam_layer"],
        cascade=tuple((step, tuple(paths)) for step, paths in _entry["cascade"]),
        guided=_entry["guided"], activations=tuple(_entry["activations"]),
    )
# Methods that need every activation to be a ReLU: guided backpropagation rewrites ReLU's backward,
# GGCAM is built on it, DeepLift's rescale rule is applied to every ReLU only
# (`salaudit.saliency.captum_methods`): another activation would silently keep its gradient.
GUIDED_METHODS = ("gbp", "ggcam", "deeplift")

# The config section (saliency.<section>) holding each method's settings; GGCAM, Grad-CAM++,
# Eigen-CAM and the smooth_random control use Grad-CAM's layer. Methods without settings (grad,
# gbp, ixg, random, edge, prior) have none.
METHOD_CONFIG_SECTIONS = {"sg": "sg", "ig": "ig", "sig": "sig", "gcam": "gcam", "ggcam": "gcam", "xrai": "xrai",
                          "deeplift": "deeplift", "occlusion": "occlusion", "gcampp": "gcam", "eigencam": "gcam",
                          "lrp": "lrp", "smooth_random": "gcam"}

# How tables and figures name each method (the report environment has no torch: they live here),
# in the registry's order: the paper's eight, the follow-up benchmarks', the controls.
DISPLAY_NAMES: dict[str, str] = {
    "grad": "GRAD", "sg": "SG", "ig": "IG", "sig": "SIG", "gcam": "GCAM", "gbp": "GBP",
    "ggcam": "GGCAM", "xrai": "XRAI",
    "ixg": "IXG", "deeplift": "DEEPLIFT", "occlusion": "OCCLUSION", "gcampp": "GCAMPP", "eigencam": "EIGENCAM",
    "lrp": "LRP",
    "random": "RANDOM", "smooth_random": "SMOOTH_RANDOM", "edge": "EDGE", "prior": "PRIOR",
}

# The methods of the follow-up benchmarks (Saporta et al. 2022: Grad-CAM++, Eigen-CAM, DeepLIFT,
# occlusion, LRP; and input x gradient): opt-in, not in the default saliency.methods (the demo's
# time budget), computed and scored like every method when configured.
FOLLOW_UP_METHODS = ("ixg", "deeplift", "occlusion", "gcampp", "eigencam", "lrp")

# The controls: maps whose answers are known, scored like every method. A control that passes a
# criterion listed here is a bug in that criterion (README, "Controls"; tests assert it).
CONTROLS = ("random", "smooth_random", "edge", "prior")
UTILITY_CRITERIA = ("utility", "utility_ap", "pointing_game", "iou_otsu")
RANDOMIZATION_CRITERIA = ("randomization", "randomization_spearman", "randomization_bottom_up",
                          "randomization_independent", "randomization_entropy", "label_randomization",
                          "label_randomization_spearman")
CONSISTENCY_CRITERIA = ("repeatability", "reproducibility")
CRITERIA = UTILITY_CRITERIA + RANDOMIZATION_CRITERIA + CONSISTENCY_CRITERIA
CONTROL_MUST_FAIL: dict[str, tuple[str, ...]] = {
    "random": CRITERIA,  # white noise: every criterion
    "smooth_random": UTILITY_CRITERIA + CONSISTENCY_CRITERIA,  # smooth, but random: no location, no agreement
    "edge": RANDOMIZATION_CRITERIA,  # no model involved: it cannot change when the weights or labels do
    "prior": CONSISTENCY_CRITERIA,  # the same map for every image: agreement that the null matches
}


# Methods that only some architectures support (every other method: every architecture). LRP needs
# a rule for every layer: DenseNet121's BatchNorms of the concatenated features, before each dense
# layer's and transition's convolution, have none (salaudit.saliency.lrp).
# Torchvision's ResNets (their residual additions canonized by zennit's ResNetCanonizer), VGGs and
# AlexNet conserve relevance too (tests/unit/saliency/test_lrp.py); EfficientNet, ConvNeXt,
# MobileNet and the others have layers without a rule.
LRP_FAMILIES = ("resnet", "resnext", "wide_resnet", "vgg", "alexnet")
METHOD_ARCHS: dict[str, tuple[str, ...]] = {
    "lrp": ("tiny_cnn", "inception_v3") + tuple(a for a in ARCH_SPECS if a.startswith(LRP_FAMILIES)),
}


def check_method_arch(method: str, arch: str | None) -> None:
    """One line (`ModelError`, a ValueError) when ``method`` does not support ``arch``; the workflow
    checks every configured pair before any job (common.smk, ``check_models``)."""
    supported = METHOD_ARCHS.get(method)
    if supported is not None and arch not in supported:
        shown = [a for a in supported if not a.startswith(LRP_FAMILIES)] + [f"{f}*" for f in LRP_FAMILIES
                                                                         if method == "lrp"]
        raise ModelError(f"saliency method {method} does not support architecture {arch} "
                         f"(supported: {', '.join(shown)})")


def is_control(method: str) -> bool:
    return method in CONTROLS


def display(method: str) -> str:
    """The display name of a method id (ids not in the registry, e.g. a localizer: upper-cased)."""
    return DISPLAY_NAMES.get(method, method.upper())


# Masks → U-Net, boxes → RetinaNet. A dataset of format table: by its abnormality encoding
# (salaudit.datasets.formats.localizer reads the table's header).
FORMAT_LOCALIZER = {"siim": "unet", "rsna": "retinanet"}
ENCODING_LOCALIZER = {"mask": "unet", "rle": "unet", "boxes": "retinanet"}


def get_spec(name: str) -> ArchSpec:
    if name in TORCHVISION_REFUSED:
        raise ModelError(f"{name} cannot be audited: {TORCHVISION_REFUSED[name]}")
    if name not in ARCH_SPECS:
        raise ModelError(f"unknown architecture {name!r}: not the project's (inception_v3, densenet121, tiny_cnn) "
                         f"nor a torchvision {_TORCHVISION['torchvision']} classification model")
    return ARCH_SPECS[name]


def override_cascades(blocks: dict) -> None:
    """``saliency.randomization.blocks``: each architecture's randomization steps top-down,
    ``[{name, modules}, ...]``, instead of its entry's (step names must be distinct). Applied by
    the workflow at parse time and by every script whose settings hold the ``saliency`` block
    (`salaudit.config.settings_argument`), so rules, jobs and tables agree."""
    for arch, steps in blocks.items():
        try:
            spec = get_spec(arch)
        except ModelError as err:
            raise ModelError(f"saliency.randomization.blocks.{arch}: {err}") from None
        names = [step["name"] for step in steps]
        if len(set(names)) != len(names):
            raise ModelError(f"saliency.randomization.blocks.{arch}: step names repeat ({', '.join(names)})")
        ARCH_SPECS[arch] = replace(spec, cascade=tuple((step["name"], tuple(step["modules"])) for step in steps))


def check_guided(arch: str, methods) -> None:
    """Guided backpropagation (and GGCAM, built on it) rewrites ReLU's backward, DeepLift gives
    ReLUs its rescale rule: on an architecture with other activations they are refused, naming
    them."""
    spec = get_spec(arch)
    asked = [m for m in methods if m in GUIDED_METHODS]
    if asked and not spec.guided:
        raise ModelError(f"{', '.join(asked)} need(s) ReLU activations; {arch} has {', '.join(spec.activations)} "
                         f"(remove {', '.join(asked)} from saliency.methods or {arch} from classifiers.archs)")


def check_image_size(arch: str, image_size: int) -> None:
    spec = get_spec(arch)
    if image_size < spec.min_size:
        raise ModelError(f"{arch} needs image_size >= {spec.min_size} px, got {image_size}")


def check_unet_size(size: int, depth: int) -> None:
    """The U-Net halves the image ``depth`` times: ``size`` must divide by ``2**depth`` (checked at
    parse time too, so a config that cannot train fails before any job)."""
    if size % 2 ** depth:
        deepest = (size & -size).bit_length() - 1 if size > 0 else 0
        raise ModelError(f"unet depth {depth} needs image_size divisible by 2**{depth} = {2 ** depth}, got {size}"
                         + (f" (use depth <= {deepest})" if deepest >= 1 else ""))


def cascade_blocks(arch: str) -> list[str]:
    """Step names of the weight randomization, top (logits) first."""
    return [name for name, _ in get_spec(arch).cascade]


def step_label(index: int, block: str) -> str:
    """File stem of the maps of randomization step ``index`` (from 1, top-down): ``{k:02d}_{block}``."""
    return f"{index:02d}_{block}"


def step_labels(arch: str) -> list[str]:
    """File stems of the randomization steps of ``arch``, top-down (`step_label`)."""
    return [step_label(k, name) for k, name in enumerate(cascade_blocks(arch), start=1)]


# Orders of weight randomization (salaudit.saliency.randomize): every mode writes the same step
# labels; the cumulative modes end at the fully random model.
RANDOMIZATION_MODES = ("cascade", "independent", "bottom_up")
CUMULATIVE_MODES = ("cascade", "bottom_up")


def mode_step_labels(arch: str, mode: str) -> list[str]:
    """``arch``'s step labels in the order ``mode`` randomizes them (bottom_up: bottom block first);
    in a cumulative mode the last one is the fully random model."""
    if mode not in RANDOMIZATION_MODES:
        raise ModelError(f"unknown randomization mode {mode!r}; known: {', '.join(RANDOMIZATION_MODES)}")
    labels = step_labels(arch)
    return labels[::-1] if mode == "bottom_up" else labels
