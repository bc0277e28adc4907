"""Localizers: models trained on the annotations themselves, the upper reference for saliency maps.

Two localizers, both taking ``[B, 3, S, S]`` input in [-1, 1] (`models.preprocess`) and giving
a float map ``[S, S]`` in [0, 1] per image:

* ``unet``: a compact U-Net (`UNet`) trained on the masks (BCE + soft Dice); the map is the
  sigmoid probability. Epoch selection: mean soft Dice over the validation images that have a
  mask (higher is better). Default for mask datasets (``siim``).
* ``retinanet``: torchvision's RetinaNet on a ResNet-FPN backbone built from scratch (no
  pretrained weights, trainable BatchNorm), one foreground class, trained on the boxes of
  ``boxes.csv``. The map paints each detection's score over its box (`paint_boxes`). Epoch
  selection: mean AUPRC of the painted maps against the masks over the validation images that
  have a mask. Default for box datasets (``rsna``).

Every image of the training folds is used, negatives included (empty mask, zero boxes).
Training goes through `training.fit` (the seed stream of the localizer and fold, a state file,
early stopping), so a rerun
after an interruption resumes and, on CPU, ends with bit-identical weights.

Box pixel convention (``boxes.csv`` and `paint_boxes`): pixel ``(r, c)`` covers the unit square
``[c, c + 1) x [r, r + 1)``; a box ``(x0, y0, x1, y1)`` in these continuous coordinates covers
the pixels whose centre lies inside it, half-open: ``x0 <= c + 0.5 < x1`` and
``y0 <= r + 0.5 < y1``. For the integer boxes of ``boxes.csv`` that is exactly
``x0 <= c < x1``, ``y0 <= r < y1``; RetinaNet is trained on, and predicts, the same coordinates.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import classifier, metrics, models, seeds, training
from .data import read_eval_images  # noqa: F401  (re-exported: used by train_localizer.py)
from .models import ModelError
from .registry import FORMAT_LOCALIZER  # noqa: F401  (masks → U-Net, boxes → RetinaNet)

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

    def __init__(self, in_channels: int = 3, base_channels: int = 16, depth: int = 4):
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


def check_unet_size(size: int, depth: int) -> None:
    if size % 2 ** depth:
        deepest = (size & -size).bit_length() - 1 if size > 0 else 0
        raise ModelError(f"unet depth {depth} needs image_size divisible by 2**{depth} = {2 ** depth}, got {size}"
                         + (f" (use depth <= {deepest})" if deepest >= 1 else ""))


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


def build_retinanet(backbone: str = "resnet18", image_size: int = 128, score_threshold: float = 0.001,
                    fpn_channels: int = 256, detections_per_img: int = 100) -> nn.Module:
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


def check_retinanet(backbone: str, image_size: int, score_threshold: float, fpn_channels: int = 256) -> None:
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

@dataclass
class LocalizerSettings:
    localizer: str
    fold: int
    epochs: int = 10
    batch_size: int = 16
    lr: float | None = None  # None: the localizer's default (`Localizer.default_lr`)
    weight_decay: float = 0.0
    patience: int = 3
    augment: bool = True
    seed: int = 0
    base_channels: int = 16  # unet
    depth: int = 4  # unet
    backbone: str = "resnet18"  # retinanet (the paper: resnet50)
    score_threshold: float = 0.001  # retinanet: detections kept for the map (AUPRC ranks pixels)
    fpn_channels: int = 256  # retinanet: FPN and head width (torchvision: 256)

    def __post_init__(self):
        spec = get_localizer(self.localizer)
        if self.lr is None:
            self.lr = spec.default_lr


@dataclass(frozen=True)
class Localizer:
    build: Callable[[LocalizerSettings, int], nn.Module]
    check: Callable[[LocalizerSettings, int], None]
    loss: Callable  # (model, x [B,3,S,S], masks [B,1,S,S], boxes list of [K,4]) -> scalar
    maps: Callable  # (model, x [B,3,S,S]) -> float [B,S,S] in [0, 1]
    score: Callable[[np.ndarray, np.ndarray], float]  # (maps, masks) of the validation lesions: selection
    score_name: str
    default_lr: float
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
        build=lambda s, size: UNet(3, s.base_channels, s.depth),
        check=lambda s, size: check_unet(s.base_channels, s.depth, size),
        loss=_unet_loss, maps=_unet_maps, score=mean_soft_dice, score_name="val_dice",
        default_lr=1e-3, use_autocast=True, uses_boxes=False,
    ),
    "retinanet": Localizer(
        build=lambda s, size: build_retinanet(s.backbone, size, s.score_threshold, s.fpn_channels),
        check=lambda s, size: check_retinanet(s.backbone, size, s.score_threshold, s.fpn_channels),
        loss=_retinanet_loss, maps=_retinanet_maps, score=mean_auprc, score_name="val_auprc",
        default_lr=1e-4, use_autocast=False, uses_boxes=True,
    ),
}


def get_localizer(name: str) -> Localizer:
    if name not in LOCALIZERS:
        raise ModelError(f"unknown localizer {name!r}; known: {', '.join(LOCALIZERS)}")
    return LOCALIZERS[name]


def localizer_for(fmt: str) -> str:
    """The localizer of a dataset format: ``unet`` for masks (siim), ``retinanet`` for boxes (rsna)."""
    if fmt not in FORMAT_LOCALIZER:
        raise ModelError(f"no localizer for format {fmt!r}; known: {', '.join(FORMAT_LOCALIZER)}")
    return FORMAT_LOCALIZER[fmt]


def check_settings(settings: LocalizerSettings, image_size: int) -> None:
    """A `ModelError` naming the problem when the localizer cannot run at ``image_size``."""
    get_localizer(settings.localizer).check(settings, image_size)


def build_localizer(settings: LocalizerSettings, image_size: int) -> nn.Module:
    check_settings(settings, image_size)
    return get_localizer(settings.localizer).build(settings, image_size)


# -------------------------------------------------------------------------------- data helpers

def read_boxes(path: str | Path, image_ids) -> list[np.ndarray]:
    """``boxes.csv`` as one float32 ``[K, 4]`` array (x0, y0, x1, y1) per image, in ``image_ids`` order."""
    table = pd.read_csv(path, dtype={"image_id": str}, keep_default_na=False)
    missing = {"image_id", "x0", "y0", "x1", "y1"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {', '.join(sorted(missing))}")
    position = {image_id: i for i, image_id in enumerate(image_ids)}
    unknown = sorted(set(table["image_id"]) - set(position))
    if unknown:
        raise ValueError(f"{path}: {len(unknown)} image ids not in the manifest, e.g. {unknown[0]}")
    coords = table[["x0", "y0", "x1", "y1"]].to_numpy(dtype=np.float32)
    bad = (coords[:, 2] <= coords[:, 0]) | (coords[:, 3] <= coords[:, 1])
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{path}: empty box on line {row + 2} ({table['image_id'].iloc[row]})")
    boxes = [[] for _ in position]
    for image_id, box in zip(table["image_id"], coords):
        boxes[position[image_id]].append(box)
    return [np.asarray(b, dtype=np.float32).reshape(-1, 4) for b in boxes]


def _boxes_from_masks(shifted: torch.Tensor, counts: list[int]) -> list[torch.Tensor]:
    """Boxes back from per-box masks ``[B, Kmax, S, S]`` (after a shift); boxes shifted out are dropped."""
    out = []
    for i, count in enumerate(counts):
        found = []
        for k in range(count):
            inside = shifted[i, k] > 0.5
            rows, cols = torch.nonzero(inside.any(1)).flatten(), torch.nonzero(inside.any(0)).flatten()
            if len(rows) and len(cols):
                found.append([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1])
        out.append(torch.tensor(found, dtype=torch.float32).reshape(-1, 4))
    return out


def _box_masks(boxes: list[np.ndarray], size: int) -> torch.Tensor:
    """One 0/1 channel per box (`paint_boxes` convention), ``[B, max K, S, S]``."""
    kmax = max(1, max(len(b) for b in boxes))
    out = torch.zeros(len(boxes), kmax, size, size)
    for i, image_boxes in enumerate(boxes):
        for k, box in enumerate(image_boxes):
            out[i, k] = torch.from_numpy(paint_boxes(box[None], [1.0], size))
    return out


# ------------------------------------------------------------------------------------- predict

def predict_maps(model: nn.Module, localizer: str, images: np.ndarray, indices, batch_size: int = 16,
                 device: torch.device | str = "cpu") -> np.ndarray:
    """float16 ``[len(indices), S, S]`` maps in [0, 1] for ``images[indices]``, in ``indices`` order."""
    spec = get_localizer(localizer)
    device = torch.device(device)
    indices = np.asarray(indices, dtype=np.int64)
    size = images.shape[-1]
    out = np.zeros((len(indices), size, size), dtype=np.float16)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            batch = indices[start:start + batch_size]
            x = models.preprocess(images[batch]).to(device)
            with training.autocast(device) if spec.use_autocast else nullcontext():
                maps = spec.maps(model, x)
            out[start:start + len(batch)] = maps.float().clamp(0, 1).cpu().numpy().astype(np.float16)
    return out


# --------------------------------------------------------------------------------------- train

def train_localizer(
    images: np.ndarray,
    masks: np.ndarray,
    boxes: list[np.ndarray],
    splits: pd.DataFrame,
    settings: LocalizerSettings,
    state_path: str | Path,
    device: torch.device,
    log=print,
    checkpoint_seconds: float = training.CHECKPOINT_SECONDS,
) -> tuple[nn.Module, dict]:
    """Train one fold (train on folds != k, select the epoch on fold k). Returns the best model
    (on ``device``) and metrics. ``boxes[i]`` are the ``[K, 4]`` boxes of image ``i``;
    ``checkpoint_seconds``: how often the resumable training state is saved (`training.fit`)."""
    began = time.perf_counter()
    spec = get_localizer(settings.localizer)
    size = images.shape[-1]
    if images.shape != masks.shape or images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images {images.shape} and masks {masks.shape} must both be [N, S, S]")
    if len(boxes) != len(images):
        raise ValueError(f"{len(boxes)} box lists for {len(images)} images")
    check_settings(settings, size)
    train_idx, val_idx, _ = classifier.fold_indices(splits, settings.fold)
    has_mask = np.asarray(masks.reshape(len(masks), -1).max(axis=1) > 0)
    val_pos = val_idx[has_mask[val_idx]]
    if len(val_pos) == 0:
        raise ValueError(f"fold {settings.fold} has no validation image with a mask: nothing to select on")
    stream = ("train_localizer", settings.localizer, settings.fold)  # salaudit.seeds: one stream per model
    torch.manual_seed(seeds.derive(settings.seed, *stream, "init"))
    model = spec.build(settings, size).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    amp = (lambda: training.autocast(device)) if spec.use_autocast else nullcontext
    log(f"{settings.localizer} fold {settings.fold}: {len(train_idx)} train ({int(has_mask[train_idx].sum())} with "
        f"lesions), {len(val_idx)} val ({len(val_pos)} with lesions) images of {size} px on {device}")

    def train_epoch(epoch: int) -> dict:
        began_epoch = time.perf_counter()
        generator = training.epoch_generator(settings.seed, *stream, epoch)
        training.restart_batchnorm_statistics(model)  # evaluation-mode statistics of this epoch's weights
        order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
        total, count = 0.0, 0
        for start in range(0, len(order), settings.batch_size):
            batch = np.sort(order[start:start + settings.batch_size])
            if len(batch) < 2:  # BatchNorm cannot train on a single image
                continue
            x = models.preprocess(images[batch])
            y = torch.from_numpy(np.asarray(masks[batch], dtype=np.float32)).unsqueeze(1)
            batch_boxes = [torch.from_numpy(boxes[i]) for i in batch] if spec.uses_boxes else None
            if settings.augment and spec.uses_boxes:
                # Boxes get the images' shift through one mask channel per box (then their extent).
                per_box = _box_masks([boxes[i] for i in batch], size)
                x, shifted = training.augment(x, generator, masks=torch.cat([y, per_box], dim=1))
                y, batch_boxes = shifted[:, :1], _boxes_from_masks(shifted[:, 1:], [len(boxes[i]) for i in batch])
            elif settings.augment:
                x, y = training.augment(x, generator, masks=y)
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad(set_to_none=True)
            with amp():
                loss = spec.loss(model, x, y, batch_boxes)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
            count += len(batch)
        return {"loss": total / max(count, 1), "img_per_s": count / (time.perf_counter() - began_epoch)}

    def validate() -> float:
        maps = predict_maps(model, settings.localizer, images, val_pos, settings.batch_size, device)
        return spec.score(maps, masks[val_pos])

    result = training.fit(
        model, optimizer, train_epoch, validate, epochs=settings.epochs, patience=settings.patience,
        state_path=state_path, settings={**asdict(settings), "n_images": len(images), "size": size},
        log=log, score_name=spec.score_name, checkpoint_seconds=checkpoint_seconds,
    )
    trained_images = len(train_idx) * len(result.history)
    summary = {
        "localizer": settings.localizer, "fold": settings.fold,
        "score_name": spec.score_name, "val_score": result.best_score,
        "best_epoch": result.best_epoch + 1, "epochs_run": len(result.history),
        "train_seconds": round(result.seconds, 2), "seconds": round(time.perf_counter() - began, 2),
        "train_images_per_s": round(trained_images / max(result.seconds, 1e-9), 2),
        "device": str(device), "n_train": len(train_idx), "n_val": len(val_idx), "n_val_lesion": len(val_pos),
        "history": result.history,
    }
    return model, summary


# -------------------------------------------------------------------------------- checkpoints

def save_localizer(path: str | Path, model: nn.Module, settings: LocalizerSettings, image_size: int, **meta) -> None:
    """model.pt: state dict + localizer name + settings + image size + preprocessing + versions + meta."""
    payload = {
        "localizer": settings.localizer,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "settings": asdict(settings),
        "image_size": int(image_size),
        "preprocessing": models.PREPROCESSING,
        "versions": models.library_versions(),
        **meta,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)


def load_localizer(path: str | Path) -> tuple[nn.Module, dict]:
    """The localizer of a ``model.pt`` in eval mode on CPU, and everything saved beside it."""
    payload = torch.load(path, map_location="cpu", weights_only=False)
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    settings = LocalizerSettings(**payload["settings"])
    model = build_localizer(settings, payload["image_size"])
    model.load_state_dict(payload["state_dict"])
    return model.eval(), meta
