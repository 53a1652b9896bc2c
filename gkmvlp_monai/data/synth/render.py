"""Radiograph formation for iu-synth: attenuation composition, positioning warp, exposure and noise.

Densities are composed on the canonical grid (dense = bright, as on a radiograph), then one affine warp
(random scale, shift and small rotation: the patient's positioning) maps them and the label bit maps
into the picture, where exposure, gamma and quantum-like noise are applied at full resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from gkmvlp_monai.data.synth.anatomy import Anatomy

#: attenuation weight of each anatomy layer (lung air subtracts)
LAYER_WEIGHTS: dict[str, float] = {
    "body": 0.75,
    "lung": -0.62,
    "heart": 0.26,
    "mediastinum": 0.25,
    "spine": 0.16,
    "ribs": 0.07,
    "clavicles": 0.2,
    "abdomen": 0.25,
    "hila": 0.1,
    "trachea": -0.28,
    "gastric": -0.3,
    "breast": 0.14,
}


@dataclass
class Positioning:
    """Patient positioning: zoom (> 1 = patient larger in the picture), shift (fraction of the
    picture, ``(dy, dx)``) and rotation in degrees."""

    zoom: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)
    rotation: float = 0.0


@dataclass
class Exposure:
    """Film-like response: attenuation gain, gamma, black/white levels, noise and blur."""

    gain: float = 2.2
    gamma: float = 1.0
    black: float = 0.02
    white: float = 0.98
    noise: float = 0.012
    mottle: float = 0.01
    blur: float = 0.6


def random_positioning(rng: np.random.Generator) -> Positioning:
    """Draw a plausible PA positioning."""
    return Positioning(
        zoom=float(rng.uniform(0.9, 1.1)),
        shift=(float(rng.uniform(-0.04, 0.04)), float(rng.uniform(-0.04, 0.04))),
        rotation=float(rng.normal(0.0, 2.0)),
    )


def random_exposure(rng: np.random.Generator) -> Exposure:
    """Draw exposure, contrast and noise settings."""
    return Exposure(
        gain=float(rng.uniform(1.7, 2.8)),
        gamma=float(rng.uniform(0.8, 1.25)),
        black=float(rng.uniform(0.0, 0.06)),
        white=float(rng.uniform(0.9, 1.0)),
        noise=float(rng.uniform(0.006, 0.018)),
        mottle=float(rng.uniform(0.004, 0.015)),
        blur=float(rng.uniform(0.4, 0.9)),
    )


def vessel_markings(anat: Anatomy, rng: np.random.Generator, density: float = 1.0) -> np.ndarray:
    """Branching, tapering vessel markings fanning out from both hila, confined to the lungs.

    Args:
        anat: the case anatomy (hila and lung masks).
        rng: random generator.
        density: number-of-branches factor (> 1 for prominent markings).

    Returns:
        float32 ``(g, g)`` marking density in [0, ~1].
    """
    g = anat.labels.shape[0]
    acc = np.zeros((g, g), dtype=np.float32)
    hl, wt = float(anat.geom["hl"]), float(anat.geom["wt"])
    step = max(1.0, g / 256)
    ys: list[np.ndarray] = []
    xs: list[np.ndarray] = []
    ws: list[np.ndarray] = []
    for side, sgn in (("r", -1.0), ("l", 1.0)):
        cy, cx = anat.geom[f"hilum_{side}"]  # type: ignore[misc]
        n = int(rng.integers(14, 20) * density)
        base_angles = np.linspace(-0.45 * np.pi, 0.55 * np.pi, n) + rng.normal(0, 0.08, n)
        for a0 in base_angles:
            length = int(rng.uniform(0.35, 0.6) * max(hl, 0.5 * wt) / step)
            a = a0 + np.cumsum(rng.normal(0, 0.08, length))
            dx = sgn * np.cos(a) * step
            dy = np.sin(a) * step
            y = cy + np.cumsum(dy)
            x = cx + np.cumsum(dx)
            w = np.linspace(1.0, 0.15, length)
            ys.append(y)
            xs.append(x)
            ws.append(w)
            if length > 10:  # one side branch
                k = int(rng.integers(length // 4, length // 2))
                m = length - k
                a2 = (
                    a[k] + rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 0.6) + np.cumsum(rng.normal(0, 0.08, m))
                )
                ys.append(y[k] + np.cumsum(np.sin(a2) * step))
                xs.append(x[k] + np.cumsum(sgn * np.cos(a2) * step))
                ws.append(np.linspace(0.6, 0.1, m))
    y = np.concatenate(ys)
    x = np.concatenate(xs)
    w = np.concatenate(ws).astype(np.float32)
    ok = (y >= 0) & (y < g - 1) & (x >= 0) & (x < g - 1)
    np.add.at(acc, (y[ok].astype(np.intp), x[ok].astype(np.intp)), w[ok])
    acc = ndi.gaussian_filter(acc, 0.7 * step)
    acc = np.minimum(acc / (acc.max() + 1e-6) * 2.5, 1.0)
    return acc * anat.layers["lung"]


def compose(
    anat: Anatomy, extra: np.ndarray | None = None, markings: np.ndarray | None = None, lung_air: float = 1.0
) -> np.ndarray:
    """Sum the anatomy layers (and finding density ``extra``) into one attenuation map.

    Args:
        anat: anatomy layers.
        extra: finding density to add (negative for lucencies).
        markings: vessel markings (already confined to the lungs).
        lung_air: factor on the lungs' air (> 1 for emphysematous, darker lungs).

    Returns:
        float32 attenuation on the canonical grid.
    """
    acc = np.zeros_like(anat.layers["body"])
    for name, wgt in LAYER_WEIGHTS.items():
        if name == "lung":
            wgt = wgt * lung_air
        acc += np.float32(wgt) * anat.layers[name]
    if markings is not None:
        acc += np.float32(0.1) * markings
    if extra is not None:
        acc += extra
    return acc


def warp_matrix(grid: int, size: int, pos: Positioning) -> tuple[np.ndarray, np.ndarray]:
    """Matrix and offset mapping picture ``(row, col)`` to canonical ``(row, col)`` coordinates."""
    s = grid / size / pos.zoom
    th = np.deg2rad(pos.rotation)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    mat = s * rot
    centre_pic = np.array([(size - 1) / 2, (size - 1) / 2])
    centre_can = np.array([(grid - 1) / 2 + pos.shift[0] * grid, (grid - 1) / 2 + pos.shift[1] * grid])
    offset = centre_can - mat @ centre_pic
    return mat, offset


def warp_density(img: np.ndarray, size: int, pos: Positioning) -> np.ndarray:
    """Warp a canonical float map into the picture (bilinear; edges extend the border)."""
    mat, off = warp_matrix(img.shape[0], size, pos)
    return ndi.affine_transform(img, mat, offset=off, output_shape=(size, size), order=1, mode="nearest")


def warp_labels(bits: np.ndarray, size: int, pos: Positioning) -> np.ndarray:
    """Warp a canonical bit map into the picture (nearest neighbour; outside = 0)."""
    mat, off = warp_matrix(bits.shape[0], size, pos)
    return ndi.affine_transform(
        bits, mat, offset=off, output_shape=(size, size), order=0, mode="constant", cval=0
    )


def develop(atten: np.ndarray, exp: Exposure) -> np.ndarray:
    """Film-like response on the canonical grid: saturating exposure, blur, gamma, black/white levels."""
    sig = (1.0 - np.exp(-exp.gain * np.clip(atten, 0.0, None))) / (1.0 - np.exp(-exp.gain * 1.6))
    if exp.blur > 0:
        sig = ndi.gaussian_filter(sig, exp.blur * 0.5)
    sig = np.clip(sig, 0.0, 1.0) ** exp.gamma
    return (exp.black + (exp.white - exp.black) * sig).astype(np.float32)


def add_noise(img: np.ndarray, exp: Exposure, rng: np.random.Generator) -> np.ndarray:
    """Quantum-like noise (stronger in dark areas) and a smooth exposure ramp, in the picture."""
    size = img.shape[0]
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    ramp = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    tilt = exp.mottle * (np.cos(exp.gain * 7.0) * ramp[:, None] + np.sin(exp.gain * 7.0) * ramp[None, :])
    out = img + tilt + exp.noise * noise * (1.2 - 0.6 * img)
    return np.clip(out, 0.0, 1.0)
