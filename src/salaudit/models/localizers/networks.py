"""The localizers' networks and their registry: a compact U-Net (masks) and RetinaNet (boxes),
their losses, the maps they give, the score that selects their epoch (`LOCALIZERS`), and their
settings (`LocalizerSettings`). Overview: `salaudit.models.localizers`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from salaudit.evaluation import metrics
from salaudit.registry import FORMAT_LOCALIZER, ModelError, check_unet_size

BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


# --------------------------------------------------------------------------------------- U-Net

def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """A compact U-Net: ``depth`` 2x poolings, widths ``base_channels * 2**level``, one logit out.

    Input ``[B, in_channels, H, W]`` with H and W divisible by ``2**depth``; output ``[B, 1, H, W]``.
    """

    def __init__(self, in_channels: int, base_channels: int, depth: int):
        super().__init__()
        if depth < 1 or base_channels < 1:
            raise ModelError(f"unet needs depth >= 1 and base_channels >= 1, got {depth} and {base_channels}")
        self.depth = depth
        widths = [base_channels * 2 ** level for level in range(depth + 1)]
        self.down = nn.ModuleList([_double_conv(in_channels, widths[0])]
                                  + [_double_conv(widths[i - 1], widths[i]) for i in range(1, depth + 1)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                 for i in reversed(range(depth))])
        self.fuse = nn.ModuleList([_double_conv(2 * widths[i], widths[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(widths[0], 1, 1)
        # Start from a low lesion prior (p ~ 0.05, as RetinaNet's head does) rather than 0.5
        # everywhere: lesions cover a few percent of an image; training converges much faster.
        nn.init.constant_(self.head.bias, math.log(0.05 / 0.95))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_unet_size(x.shape[-2], self.depth)
        check_unet_size(x.shape[-1], self.depth)
        skips = []
        for level, block in enumerate(self.down):
            if level:
                x = nn.functional.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        skips.pop()  # the bottleneck
        for up, fuse in zip(self.up, self.fuse):
            x = fuse(torch.cat([skips.pop(), up(x)], dim=1))
        return self.head(x)


def check_unet(base_channels: int, depth: int, image_size: int) -> None:
    if depth < 1 or base_channels < 1:
        raise ModelError(f"unet needs depth >= 1 and base_channels >= 1, got {depth} and {base_channels}")
    check_unet_size(image_size, depth)


def soft_dice(probs: torch.Tensor, targets: torch.Tensor, dims=(1, 2, 3), eps: float = 1.0) -> torch.Tensor:
    """``2 sum(p t) / (sum(p) + sum(t))`` over ``dims`` (eps-smoothed)."""
    inter = (probs * targets).sum(dims)
    return (2 * inter + eps) / (probs.sum(dims) + targets.sum(dims) + eps)


# ----------------------------------------------------------------------------------- RetinaNet

def anchor_sizes(image_size: int) -> tuple[tuple[int, ...], ...]:
    """Anchor sizes of P3..P7: bases ``S/16, S/8, S/4, S/2, S`` (min 2 px), 3 octave scales each.

    torchvision's defaults (32..512 for 800 px) suit COCO objects; lesions are large relative
    to the image, so the anchors span S/16 to ~1.6 S.
    """
    sizes = []
    for level in range(5):
        base = max(2.0, image_size / 16 * 2 ** level)
        sizes.append(tuple(int(round(base * 2 ** (octave / 3))) for octave in range(3)))
    return tuple(sizes)


def build_retinanet(backbone: str, image_size: int, score_threshold: float, fpn_channels: int,
                    detections_per_img: int = 100) -> nn.Module:
    """RetinaNet, ResNet-FPN (P3-P7) from scratch, one foreground class, input passed through as is.

    The backbone is what ``resnet_fpn_backbone(backbone_name=backbone, weights=None,
    norm_layer=BatchNorm2d, trainable_layers=5, returned_layers=[2, 3, 4],
    extra_blocks=LastLevelP6P7(256, 256))`` builds (torchvision's recipe when nothing is
    pretrained), except that the FPN width ``fpn_channels`` (256 there) is a setting: the heads
    run at that width on every level and dominate the cost at small image sizes.
    torchvision's RetinaNet head is a per-class sigmoid with no background column, so one
    class (label 0) is all it needs. The internal transform is made an identity for our input:
    mean 0, std 1 (already in [-1, 1]) and min_size = max_size = S (scale factor 1: no resize).
    """
    from torchvision.models import resnet
    from torchvision.models.detection import RetinaNet
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7

    check_retinanet(backbone, image_size, score_threshold, fpn_channels)
    trunk = getattr(resnet, backbone)(weights=None, norm_layer=nn.BatchNorm2d)
    stage1 = trunk.inplanes // 8  # channels of layer1's output: 64 (resnet18/34), 256 (resnet50+)
    body = BackboneWithFPN(
        trunk, return_layers={"layer2": "0", "layer3": "1", "layer4": "2"},
        in_channels_list=[stage1 * 2, stage1 * 4, stage1 * 8], out_channels=fpn_channels,
        extra_blocks=LastLevelP6P7(fpn_channels, fpn_channels),
    )
    sizes = anchor_sizes(image_size)
    anchors = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    return RetinaNet(
        body, num_classes=1, min_size=image_size, max_size=image_size, image_mean=[0.0, 0.0, 0.0],
        image_std=[1.0, 1.0, 1.0], anchor_generator=anchors, score_thresh=score_threshold,
        detections_per_img=detections_per_img,
    )


def check_retinanet(backbone: str, image_size: int, score_threshold: float, fpn_channels: int) -> None:
    if backbone not in BACKBONES:
        raise ModelError(f"unknown retinanet backbone {backbone!r}; known: {', '.join(BACKBONES)}")
    if image_size < 32:
        raise ModelError(f"retinanet needs image_size >= 32 px, got {image_size}")
    if not 0 <= score_threshold < 1:
        raise ModelError(f"score_threshold must be in [0, 1), got {score_threshold}")
    if fpn_channels < 8 or fpn_channels % 8:
        raise ModelError(f"fpn_channels must be a multiple of 8 (>= 8), got {fpn_channels}")


def paint_boxes(boxes, scores, size: int) -> np.ndarray:
    """float32 ``[size, size]``: each box's score over the pixels it covers, the maximum where
    boxes overlap, 0 elsewhere.

    ``boxes`` ``[K, 4]`` are ``x0, y0, x1, y1`` in pixel coordinates; a pixel ``(r, c)`` is covered
    when its centre is inside, half-open: ``x0 <= c + 0.5 < x1`` and ``y0 <= r + 0.5 < y1``
    (integer boxes: ``x0 <= c < x1``, as in ``boxes.csv``). Parts outside the image are clipped.
    """
    out = np.zeros((size, size), dtype=np.float32)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
    for (x0, y0, x1, y1), score in zip(boxes, scores):
        c0, c1 = (min(size, max(0, math.ceil(v - 0.5))) for v in (x0, x1))
        r0, r1 = (min(size, max(0, math.ceil(v - 0.5))) for v in (y0, y1))
        if c0 < c1 and r0 < r1:
            np.maximum(out[r0:r1, c0:c1], score, out=out[r0:r1, c0:c1])
    return out


# ------------------------------------------------------------------------------------ registry

# Settings of every localizer; the rest of a localizer's block (localizers.<name> in the config)
# are its network's options (`Localizer.options`).
_COMMON = ("epochs", "patience", "batch_size", "lr", "weight_decay", "augment", "seed")


@dataclass
class LocalizerSettings:
    """One localizer's training settings; `from_config` takes them from the validated config
    (``localizers``, ``seed``): the schema owns the defaults. ``options``: the network's
    (unet: base_channels, depth; retinanet: backbone, score_threshold, fpn_channels)."""

    localizer: str
    fold: int
    epochs: int
    patience: int
    batch_size: int
    lr: float
    weight_decay: float
    augment: bool
    seed: int
    options: dict

    @classmethod
    def from_config(cls, config: dict, localizer: str, fold: int) -> "LocalizerSettings":
        """``localizers.<localizer>`` over ``localizers`` (its own epochs and patience first)."""
        get_localizer(localizer)
        block, own = config["localizers"], dict(config["localizers"][localizer])
        general = {"epochs": own.pop("epochs", block["epochs"]), "patience": own.pop("patience", block["patience"]),
                   "batch_size": own.pop("batch_size"), "lr": own.pop("lr"), "weight_decay": block["weight_decay"],
                   "augment": block["augment"], "seed": config["seed"]}
        return cls(localizer=localizer, fold=fold, **general, options=own)

    @classmethod
    def from_dict(cls, saved: dict) -> "LocalizerSettings":
        """The settings of a checkpoint; those saved flat (before ``options``) too."""
        saved = dict(saved)
        if "options" not in saved:
            spec = get_localizer(saved["localizer"])
            saved["options"] = {k: saved.pop(k) for k in list(saved) if k in spec.options}
            for k in [k for k in saved if k not in {"localizer", "fold", *_COMMON}]:
                saved.pop(k)
        return cls(**saved)


@dataclass(frozen=True)
class Localizer:
    build: Callable[[LocalizerSettings, int], nn.Module]
    check: Callable[[LocalizerSettings, int], None]
    loss: Callable  # (model, x [B,3,S,S], masks [B,1,S,S], boxes list of [K,4]) -> scalar
    maps: Callable  # (model, x [B,3,S,S]) -> float [B,S,S] in [0, 1]
    score: Callable[[np.ndarray, np.ndarray], float]  # (maps, masks) of the validation lesions: selection
    score_name: str
    options: tuple[str, ...]  # the network's settings (LocalizerSettings.options)
    use_autocast: bool  # bfloat16 on CUDA; RetinaNet stays in float32 (bf16 anchors are too coarse)
    uses_boxes: bool  # trains on boxes.csv (else on masks.npy)


def _unet_loss(model, x, masks, boxes):
    logits = model(x).float()
    bce = nn.functional.binary_cross_entropy_with_logits(logits, masks)
    dice = soft_dice(torch.sigmoid(logits), masks, dims=(0, 1, 2, 3))  # over the batch: negatives count
    return bce + (1 - dice)


def _unet_maps(model, x):
    return torch.sigmoid(model(x).float())[:, 0]


def _retinanet_loss(model, x, masks, boxes):
    targets = [{"boxes": b.to(x.device), "labels": torch.zeros(len(b), dtype=torch.int64, device=x.device)}
               for b in boxes]
    losses = model(list(x), targets)
    return losses["classification"] + losses["bbox_regression"]


def _retinanet_maps(model, x):
    size = x.shape[-1]
    detections = model(list(x))
    return torch.stack([torch.from_numpy(paint_boxes(d["boxes"].detach().float().cpu().numpy(),
                                                     d["scores"].detach().float().cpu().numpy(), size))
                        for d in detections])


def mean_soft_dice(maps: np.ndarray, masks: np.ndarray) -> float:
    """Mean over images of the soft Dice of maps ``[n, S, S]`` in [0, 1] against 0/1 masks."""
    probs = torch.from_numpy(np.asarray(maps, dtype=np.float32))
    truth = torch.from_numpy(np.asarray(masks, dtype=np.float32))
    return float(soft_dice(probs, truth, dims=(1, 2), eps=1e-6).mean())


def mean_auprc(maps: np.ndarray, masks: np.ndarray) -> float:
    """Mean over images of the paper's pixel AUPRC of maps against masks (images without a mask skipped)."""
    scores = [metrics.auprc(m, mask) for mask, m in zip(masks, maps)]
    return float(np.nanmean(scores)) if np.isfinite(scores).any() else float("nan")


LOCALIZERS: dict[str, Localizer] = {
    "unet": Localizer(
        build=lambda s, size: UNet(3, s.options["base_channels"], s.options["depth"]),
        check=lambda s, size: check_unet(s.options["base_channels"], s.options["depth"], size),
        loss=_unet_loss, maps=_unet_maps, score=mean_soft_dice, score_name="val_dice",
        options=("base_channels", "depth"), use_autocast=True, uses_boxes=False,
    ),
    "retinanet": Localizer(
        build=lambda s, size: build_retinanet(s.options["backbone"], size, s.options["score_threshold"],
                                              s.options["fpn_channels"]),
        check=lambda s, size: check_retinanet(s.options["backbone"], size, s.options["score_threshold"],
                                              s.options["fpn_channels"]),
        loss=_retinanet_loss, maps=_retinanet_maps, score=mean_auprc, score_name="val_auprc",
        options=("backbone", "score_threshold", "fpn_channels"), use_autocast=False, uses_boxes=True,
    ),
}


def get_localizer(name: str) -> Localizer:
    if name not in LOCALIZERS:
        raise ModelError(f"unknown localizer {name!r}; known: {', '.join(LOCALIZERS)}")
    return LOCALIZERS[name]


def localizer_for(fmt: str) -> str:
    """The localizer of a dataset format: ``unet`` for masks (siim), ``retinanet`` for boxes (rsna);
    a table's depends on its columns (`salaudit.datasets.formats.localizer`)."""
    if fmt not in FORMAT_LOCALIZER:
        raise ModelError(f"no localizer for format {fmt!r}; known: {', '.join(FORMAT_LOCALIZER)}")
    return FORMAT_LOCALIZER[fmt]


def check_settings(settings: LocalizerSettings, image_size: int) -> None:
    """A `ModelError` naming the problem when the localizer cannot run at ``image_size``."""
    get_localizer(settings.localizer).check(settings, image_size)


def build_localizer(settings: LocalizerSettings, image_size: int) -> nn.Module:
    check_settings(settings, image_size)
    return get_localizer(settings.localizer).build(settings, image_size)
