"""The synthetic chest radiographs of the demo (`salaudit.datasets.demo`): anatomy, acquisition,
lesions and devices, rendered to one image.

What is simulated. Each image is a density map built at 256 px from analytic shapes in a
"body frame" and mapped to brightness (air dark, bone and soft tissue bright): the torso
outline with neck, two lung fields (narrow apex, wide base, cut by the diaphragm domes),
lung texture (blood vessels as random walks fanning out from the hila, plus faint
band-pass noise), the mediastinum with vertebrae, the heart shadow (larger in AP views
and in "No Lung Opacity / Not Normal" RSNA negatives), posterior ribs (curved bands) and
clavicles. Per patient the anatomy varies (lung size and position, heart, ribs,
vessels); per image the acquisition varies (rotation, shift, zoom, brightness, contrast,
gamma, noise). The map is upsampled bilinearly to 1024 px, fine noise is added there.
The positive images are picked by systematic sampling along the exposure brightness, so
both classes share the same spread of exposures: the label cannot be read from the
global brightness (AUROC of the mean pixel value ~0.5), not even by chance in a small demo.

Lesions, drawn into the same 256 px map (so a lesion-free image is the same render
without them):

* pneumothorax (SIIM): a crescent at the apex/lateral edge of one lung (sometimes
  both) in which the lung texture is gone and the image is darker, bounded medially by
  a thin bright pleural line. The mask is the crescent at 1024 px.
* pneumonia (RSNA): one or two (then one per lung) fluffy, irregular, brighter
  opacities. The box is the tight bounding box of the opacity's non-zero support at
  1024 px, so the opacity lies entirely inside its box.

One module (about 380 lines) on purpose: the anatomy, the lesions, the devices and the renderer
share one body frame and one lung geometry; split apart, one image's drawing would be spread
over files that only make sense together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from salaudit import seeds

SIZE = 1024  # written image size (rows = columns)
GRID = 256  # size at which the anatomy is synthesized


# ----------------------------------------------------------------------------- anatomy
@dataclass(frozen=True)
class Lung:
    side: int  # -1 = image left (patient's right), +1 = image right
    cx: float  # body-frame coordinates: x, y in [-1, 1], y down
    top: float
    base: float
    half_width: float
    dome: float  # height of the diaphragm dome


@dataclass(frozen=True)
class Patient:
    body_x: float
    body_half_width: float
    lungs: tuple[Lung, Lung]
    heart: tuple[float, float, float, float]  # cx, cy, rx, ry
    rib_top: float
    rib_spacing: float
    density: float  # soft-tissue density (body habitus)
    vessel_seed: int
    sex: str
    age: int


@dataclass(frozen=True)
class Exposure:
    view: str  # "PA" or "AP"
    angle: float  # radians
    shift: tuple[float, float]
    zoom: float
    offset: float
    contrast: float
    gamma: float
    noise: float


def sample_patient(rng: np.random.Generator) -> Patient:
    body_x = rng.normal(0, 0.02)
    spread, width = rng.uniform(0.34, 0.42), rng.uniform(0.24, 0.30)
    top, base = rng.uniform(-0.74, -0.6), rng.uniform(0.5, 0.64)
    lungs = tuple(
        Lung(
            side=side,
            cx=body_x + side * spread + rng.normal(0, 0.01),
            top=top + rng.normal(0, 0.015),
            # the right hemidiaphragm (image left) sits a little higher
            base=base + (0.04 if side > 0 else 0.0) + rng.normal(0, 0.015),
            half_width=width * rng.uniform(0.95, 1.05),
            dome=rng.uniform(0.10, 0.18),
        )
        for side in (-1, 1)
    )
    heart = (
        body_x + rng.uniform(0.08, 0.15),
        base - rng.uniform(0.22, 0.30),
        rng.uniform(0.22, 0.28),
        rng.uniform(0.20, 0.26),
    )
    return Patient(
        body_x=body_x,
        body_half_width=rng.uniform(0.80, 0.92),
        lungs=lungs,
        heart=heart,
        rib_top=top + rng.uniform(0.0, 0.06),
        rib_spacing=rng.uniform(0.115, 0.135),
        density=rng.uniform(0.44, 0.54),
        vessel_seed=int(rng.integers(2**31)),
        sex=str(rng.choice(["M", "F"])),
        age=int(rng.integers(18, 90)),
    )


def sample_exposure(rng: np.random.Generator, ap_probability: float) -> Exposure:
    return Exposure(
        view="AP" if rng.random() < ap_probability else "PA",
        angle=math.radians(rng.normal(0, 2.5)),
        shift=(rng.normal(0, 0.03), rng.normal(0, 0.03)),
        zoom=rng.uniform(0.93, 1.05),
        offset=rng.uniform(0.02, 0.12),
        contrast=rng.uniform(0.85, 1.2),
        gamma=rng.uniform(0.8, 1.25),
        noise=rng.uniform(0.008, 0.02),
    )


class Frame:
    """Pixel grid in image coordinates ([-1, 1], pixel centres) and in the body frame."""

    def __init__(self, size: int, exposure: Exposure):
        p = ((np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1).astype(np.float32)
        self.x, self.y = p[None, :], p[:, None]
        c, s = math.cos(exposure.angle), math.sin(exposure.angle)
        dx, dy = (self.x - exposure.shift[0]) / exposure.zoom, (self.y - exposure.shift[1]) / exposure.zoom
        self.bx, self.by = c * dx + s * dy, -s * dx + c * dy
        self.exposure = exposure

    def body_to_pixel(self, bx: np.ndarray, by: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        e = self.exposure
        c, s = math.cos(e.angle), math.sin(e.angle)
        x = (c * bx - s * by) * e.zoom + e.shift[0]
        y = (s * bx + c * by) * e.zoom + e.shift[1]
        return (y + 1) / 2 * size - 0.5, (x + 1) / 2 * size - 0.5


@dataclass
class _LungGeometry:
    sdf: np.ndarray  # approximate signed distance to the lung border (body units, > 0 inside)
    r: np.ndarray  # normalised radius (1 on the elliptic border)
    theta: np.ndarray  # 0 = towards the apex, pi/2 = lateral
    scale: float


def lung_geometry(lung: Lung, f: Frame) -> _LungGeometry:
    base_ext = lung.base + 0.10
    cy, ry = (lung.top + base_ext) / 2, (base_ext - lung.top) / 2
    u = (f.bx - lung.cx) * lung.side  # > 0 lateral
    v = (f.by - cy) / ry
    narrowing = 0.62 + 0.38 * np.clip((v + 1) / 1.6, 0, 1) ** 0.6  # narrow apex, wide base
    un = u / (lung.half_width * narrowing)
    r = np.sqrt(un**2 + v**2)
    scale = 0.8 * lung.half_width
    dome_shape = np.clip(1 - ((u - 0.05 * lung.half_width) / (1.15 * lung.half_width)) ** 2, 0, 1)
    dome = lung.base - lung.dome * dome_shape
    sdf = np.minimum((1 - r) * scale, dome - f.by)
    return _LungGeometry(sdf=sdf, r=r, theta=np.arctan2(un, -v), scale=scale)


def _soft(field: np.ndarray, width: float) -> np.ndarray:
    return np.clip(field / width + 0.5, 0, 1)


def _vessels(patient: Patient, lung: Lung, geo: _LungGeometry, f: Frame) -> np.ndarray:
    """Vessel tree of one lung: random walks from the hilum, drawn at GRID px and blurred."""
    rng = seeds.rng(patient.vessel_seed, "demo_vessels", lung.side)
    n, steps = 70, 45
    hilum = np.array([lung.cx - lung.side * 0.45 * lung.half_width, (lung.top + lung.base) / 2 + 0.05])
    angle = rng.uniform(-0.75 * np.pi, 0.75 * np.pi, n)  # 0 = lateral, spread up and down
    pos = hilum + rng.normal(0, 0.035, (n, 2))
    weight = rng.uniform(0.6, 1.0, n)
    image = np.zeros((GRID, GRID), np.float32)
    inside = geo.sdf > 0
    for step in range(steps):
        angle += rng.normal(0, 0.18, n)
        pos = pos + 0.014 * np.stack([lung.side * np.cos(angle), np.sin(angle)], axis=1)
        rows, cols = f.body_to_pixel(pos[:, 0], pos[:, 1], GRID)
        rows, cols = np.rint(rows).astype(int), np.rint(cols).astype(int)
        ok = (rows >= 0) & (rows < GRID) & (cols >= 0) & (cols < GRID)
        ok[ok] &= inside[rows[ok], cols[ok]]
        weight = np.where(ok, weight, 0.0)
        taper = min(1.0, 0.3 + step / 8) * (1 - step / steps) ** 1.5  # faint at the hilum and the tips
        np.add.at(image, (rows[ok], cols[ok]), (weight * taper)[ok])
    return ndimage.gaussian_filter(image, 0.8)


# ----------------------------------------------------------------------------- lesions
@dataclass(frozen=True)
class Crescent:  # pneumothorax
    side: int
    theta: float  # centre angle (0 = apex, pi/2 = lateral)
    span: float  # half-width in angle
    thickness: float  # maximal depth, in normalised radius


@dataclass(frozen=True)
class Opacity:  # pneumonia
    side: int
    u: float  # centre in lung-relative coordinates (-1..1)
    v: float
    size: float  # body units
    seed: int


@dataclass(frozen=True)
class Device:  # radio-opaque, in both classes: what a saliency map may show that the label does not
    kind: str  # "electrode" (ECG pad with its wire, on the skin) or "granuloma" (calcified nodule)
    x: float  # body-frame centre
    y: float
    radius: float
    wire: tuple[tuple[float, float], ...] = ()  # control points of the wire (quadratic Bezier), if any


def _crescent_fields(c: Crescent, geo: _LungGeometry) -> tuple[np.ndarray, np.ndarray]:
    """(field > 0 inside the crescent, the pleural line along its inner edge)."""
    angle = np.clip(np.abs(geo.theta - c.theta) / c.span, 0, 1)
    depth = c.thickness * np.clip(np.cos(angle * np.pi / 2), 0, 1) ** 0.7
    inner = (geo.r - (1 - depth)) * geo.scale
    field = np.minimum(geo.sdf, inner)
    pleura = np.exp(-((inner / 0.007) ** 2)) * np.clip(depth / 0.04, 0, 1) * _soft(geo.sdf, 0.02)
    return field, pleura


def _opacity_field(o: Opacity, lung: Lung, geo: _LungGeometry, f: Frame) -> np.ndarray:
    """Compactly supported, irregular opacity (0 outside), restricted to the lung."""
    rng = seeds.rng(o.seed, "demo_opacity")
    cx = lung.cx + lung.side * o.u * lung.half_width
    cy = (lung.top + lung.base) / 2 + o.v * (lung.base - lung.top) / 2
    field = np.zeros((GRID, GRID), np.float32)
    for _ in range(int(rng.integers(3, 7))):
        px, py = cx + rng.normal(0, 0.5 * o.size), cy + rng.normal(0, 0.7 * o.size)
        s = o.size * rng.uniform(0.5, 0.7)
        field += rng.uniform(0.6, 1.0) * np.exp(-((f.bx - px) ** 2 + (0.8 * (f.by - py)) ** 2) / (2 * s * s))
    fluff = ndimage.gaussian_filter(rng.standard_normal((GRID, GRID)).astype(np.float32), 3.5)
    field *= np.clip(1 + 0.45 * fluff / fluff.std(), 0, None)
    field /= field.max()
    return np.clip((field - 0.25) / 0.75, 0, None) * np.clip(geo.sdf / 0.03, 0, 1)


@dataclass(frozen=True)
class Case:
    """Everything that determines one image."""

    image_id: str
    patient_id: str
    uids: tuple[str, str, str]  # study, series, SOP instance
    patient: Patient
    exposure: Exposure
    lesions: tuple[Crescent | Opacity, ...]
    noise_seed: tuple  # (seed, stage, index): a stream of salaudit.seeds
    heart_scale: float = 1.0
    split_overlap: int | None = None  # SIIM: write the single crescent as two rows
    rsna_class: str = ""
    devices: tuple[Device, ...] = ()


# ----------------------------------------------------------------------------- rendering
_PNEUMOTHORAX_DARK = 0.25  # density removed inside the crescent
_PLEURA = 0.10
_OPACITY = 0.6  # density added at the opacity's peak


def render(case: Case, draw_lesions: bool = True) -> tuple[np.ndarray, list[np.ndarray]]:
    """uint8 SIZE x SIZE image and, per lesion, its field at GRID px (> 0 on the lesion).

    With ``draw_lesions=False`` the same image is rendered without its lesions.
    """
    patient, exposure = case.patient, case.exposure
    rng = seeds.rng(*case.noise_seed)
    f = Frame(GRID, exposure)
    bx, by = f.bx, f.by
    ax = bx - patient.body_x
    d = np.abs(ax)
    # torso: neck widening into sloping shoulders; soft tissue thickest in the middle
    shoulder = np.clip((by - patient.rib_top + 0.32) / 0.3, 0, 1)
    half = 0.2 + (patient.body_half_width - 0.2) * (shoulder * shoulder * (3 - 2 * shoulder)) ** 0.5
    thickness = np.sqrt(np.clip(1 - (ax / half) ** 2, 0, 1))
    density = patient.density * _soft(half - d, 0.03) * (0.55 + 0.45 * thickness)
    # heart (replaces most of the lung air it overlaps) and mediastinum with vertebrae
    hx, hy, hrx, hry = patient.heart
    hrx, hry = hrx * case.heart_scale * (1.12 if exposure.view == "AP" else 1.0), hry * case.heart_scale
    heart = _soft(1 - np.sqrt(((bx - hx) / hrx) ** 2 + ((by - hy) / hry) ** 2), 0.25)
    # lungs: air, thinner near the borders; vessels and faint texture
    noise = rng.standard_normal((GRID, GRID)).astype(np.float32)
    texture = ndimage.gaussian_filter(noise, 1.0) - ndimage.gaussian_filter(noise, 3.0)
    geometries = {lung.side: lung_geometry(lung, f) for lung in patient.lungs}
    air = np.zeros((GRID, GRID), np.float32)
    markings = np.zeros((GRID, GRID), np.float32)
    for lung in patient.lungs:
        geo = geometries[lung.side]
        soft = _soft(geo.sdf, 0.03)
        air = np.maximum(air, soft * (0.65 + 0.35 * np.clip(geo.sdf / 0.12, 0, 1)))
        markings += soft * (0.10 * _vessels(patient, lung, geo, f) + 0.05 * texture)
    markings *= 1 - 0.75 * heart
    density -= 0.36 * air * (1 - 0.75 * heart)
    spine = np.exp(-((ax / 0.08) ** 4)) * (1 - 0.5 * heart) * (0.12 + 0.015 * np.cos(by * 2 * np.pi / 0.11))
    density += 0.04 * heart + spine
    # posterior ribs and clavicles (bone), most visible over the lungs
    k = np.arange(10, dtype=np.float32)[:, None, None]
    rib_y = patient.rib_top + k * patient.rib_spacing - 0.35 * d + 1.1 * d**2
    ribs = np.exp(-(((by - rib_y) / 0.03) ** 2)).max(axis=0)
    ribs *= (0.15 + 0.85 * air * (1 - 0.75 * heart)) * _soft(half - 0.08 - d, 0.06) * _soft(d - 0.06, 0.05)
    density += 0.07 * ribs
    clavicle_y = patient.rib_top + 0.06 - 0.45 * (d - 0.1) + 0.35 * (d - 0.1) ** 2
    clavicles = np.exp(-(((by - clavicle_y) / 0.028) ** 2)) * _soft(0.6 - d, 0.06) * _soft(d - 0.07, 0.03)
    density += 0.09 * clavicles
    markings = ndimage.gaussian_filter(markings, 0.7)
    density = ndimage.gaussian_filter(density, 0.7) + markings
    # lesions, added after the blur so that they stay inside their fields' support
    fields = []
    for lesion in case.lesions:
        lung = next(lung for lung in patient.lungs if lung.side == lesion.side)
        geo = geometries[lesion.side]
        if isinstance(lesion, Crescent):
            field, pleura = _crescent_fields(lesion, geo)
            if draw_lesions:
                density -= np.clip(field / 0.008, 0, 1) * (markings + _PNEUMOTHORAX_DARK)
                density += _PLEURA * pleura
        else:
            field = _opacity_field(lesion, lung, geo, f)
            if draw_lesions:
                density += _OPACITY * field**0.7
        fields.append(field)
    for device in case.devices:
        density += _device_density(device, f)

    e = exposure
    low = np.clip(e.offset + e.contrast * density, 0, 1) ** e.gamma
    low += ndimage.gaussian_filter(noise, 6.0) * 0.05  # mottle, reuses the noise draw
    image = upsample(low.astype(np.float32))
    image += e.noise * rng.standard_normal((SIZE, SIZE), dtype=np.float32)
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8), fields


_ELECTRODE, _WIRE, _GRANULOMA = 0.3, 0.25, 0.35  # density of each device


def _device_density(device: Device, f: Frame) -> np.ndarray:
    """Sharp, bright: an ECG pad (a disc with a brighter rim) and its wire, or a calcified nodule."""
    dist = np.hypot(f.bx - device.x, f.by - device.y)
    if device.kind == "granuloma":
        return _GRANULOMA * _soft(device.radius - dist, 0.006)
    out = _ELECTRODE * (0.6 * _soft(device.radius - dist, 0.006) + np.exp(-(((dist - device.radius) / 0.008) ** 2)))
    if device.wire:
        (x0, y0), (x1, y1), (x2, y2) = device.wire
        t = np.linspace(0, 1, 200, dtype=np.float32)[:, None, None]  # points closer than the wire is wide
        px = (1 - t) ** 2 * x0 + 2 * (1 - t) * t * x1 + t**2 * x2
        py = (1 - t) ** 2 * y0 + 2 * (1 - t) * t * y1 + t**2 * y2
        gap = np.sqrt(((f.bx[None] - px) ** 2 + (f.by[None] - py) ** 2).min(axis=0))
        out = out + _WIRE * np.exp(-((gap / 0.007) ** 2)) * _soft(dist - device.radius, 0.01)
    return out


def sample_devices(rng: np.random.Generator, patient: Patient) -> tuple[Device, ...]:
    """0-3 ECG pads (most with a wire running off the image) and 0-3 calcified nodules in the
    lungs, drawn independently of the label: an image's brightest edges are often not its lesion."""
    devices = []
    for _ in range(int(rng.choice(4, p=[0.3, 0.3, 0.25, 0.15]))):
        x, y = patient.body_x + rng.uniform(-0.75, 0.75), rng.uniform(-0.55, 0.65)
        wire = ()
        if rng.random() < 0.7:
            end = (float(np.sign(x) * rng.uniform(1.05, 1.3)), float(rng.uniform(-1.2, 1.2)))
            bend = (float((x + end[0]) / 2 + rng.normal(0, 0.2)), float((y + end[1]) / 2 + rng.normal(0, 0.2)))
            wire = ((float(x), float(y)), bend, end)
        devices.append(Device("electrode", float(x), float(y), float(rng.uniform(0.035, 0.055)), wire))
    for _ in range(int(rng.choice(4, p=[0.4, 0.3, 0.2, 0.1]))):
        lung = patient.lungs[int(rng.integers(2))]
        x = lung.cx + lung.side * rng.uniform(-0.6, 0.6) * lung.half_width
        y = (lung.top + lung.base) / 2 + rng.uniform(-0.7, 0.7) * (lung.base - lung.top) / 2
        devices.append(Device("granuloma", float(x), float(y), float(rng.uniform(0.012, 0.022))))
    return tuple(devices)


def upsample(field: np.ndarray) -> np.ndarray:
    """GRID → SIZE bilinear (so a field's support only grows by one GRID pixel)."""
    return np.array(Image.fromarray(field).resize((SIZE, SIZE), Image.Resampling.BILINEAR))
