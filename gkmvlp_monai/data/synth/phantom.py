"""A parametric chest-radiograph phantom with its 29 region boxes: the project's one phantom generator
(tests, the image-pipeline demo's sample files, smoke runs and atlas seeding).

It is not iu-synth (which renders real lung masks): it draws a body, two lungs, heart, spine, clavicles
and abdomen as smooth analytic shapes, places the 29 Chest ImaGenome boxes by fixed rules relative to
them, and applies a known affine (patient positioning), so registration and box models can be checked
against an exact answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from gkmvlp_monai.core.boxes import warp_boxes
from gkmvlp_monai.core.vocab import regions

__all__ = ["PhantomPose", "canonical_boxes", "chest_phantom"]


@dataclass(frozen=True)
class PhantomPose:
    """Positioning of the phantom: per-axis zoom about the picture centre, shift (fractions of the picture)
    and in-plane rotation in degrees."""

    zoom_x: float = 1.0
    zoom_y: float = 1.0
    shift_x: float = 0.0
    shift_y: float = 0.0
    rotation: float = 0.0

    def affine(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """``(matrix [2, 2], offset [2])`` mapping canonical pixel points ``(x, y)`` to picture points."""
        th = np.deg2rad(self.rotation)
        rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
        m = rot @ np.diag([self.zoom_x, self.zoom_y])
        c = np.array([width / 2.0, height / 2.0])
        t = c - m @ c + np.array([self.shift_x * width, self.shift_y * height])
        return m, t


def _lung_fracs(lung_scale: float) -> tuple[np.ndarray, np.ndarray]:
    r = np.array([0.33, 0.45, 0.13 * lung_scale, 0.26 * lung_scale])  # centre x, y, semi-axes
    left = np.array([0.67, 0.46, 0.12 * lung_scale, 0.25 * lung_scale])
    return r, left


def canonical_boxes(lung_scale: float = 1.0) -> np.ndarray:
    """Region boxes of the unposed phantom as fractions of the picture, ``[29, 4]`` in canonical order.

    Args:
        lung_scale: size factor of both lungs (lung-relative regions follow it).

    Returns:
        float32 ``[29, 4]`` boxes in [0, 1] units.
    """
    lr, ll = _lung_fracs(lung_scale)
    lung_box = {
        "right": np.array([lr[0] - lr[2], lr[1] - lr[3], lr[0] + lr[2], lr[1] + lr[3]]),
        "left": np.array([ll[0] - ll[2], ll[1] - ll[3], ll[0] + ll[2], ll[1] + ll[3]]),
    }
    out = []
    for reg in regions():
        name, side, group = reg.name.lower(), reg.side, reg.group
        lb = lung_box.get(side, lung_box["right"])
        x1, y1, x2, y2 = lb
        w, h = x2 - x1, y2 - y1
        medial_right = side == "right"  # the patient's right lung has its medial edge on the picture's right
        if group == "lung":
            if "upper" in name:
                box = [x1, y1, x2, y1 + h / 3]
            elif "mid" in name:
                box = [x1, y1 + h / 3, x2, y1 + 2 * h / 3]
            elif "lower" in name:
                box = [x1, y1 + 2 * h / 3, x2, y2]
            elif "apical" in name:
                box = [x1, y1, x2, y1 + h / 6]
            else:
                box = [x1, y1, x2, y2]
        elif group == "hilum":
            box = (
                [x2 - 0.4 * w, y1 + 0.35 * h, x2, y1 + 0.6 * h]
                if medial_right
                else [x1, y1 + 0.35 * h, x1 + 0.4 * w, y1 + 0.6 * h]
            )
        elif group == "pleura":
            box = (
                [x1, y2 - 0.2 * h, x1 + 0.3 * w, y2] if medial_right else [x2 - 0.3 * w, y2 - 0.2 * h, x2, y2]
            )
        elif group == "diaphragm":
            box = [x1, y2 - 0.12 * h, x2, y2 + 0.05 * h]
        elif group == "airway":
            box = [0.46, 0.33, 0.54, 0.39] if "carina" in name else [0.47, 0.05, 0.53, 0.35]
        elif group == "bone":
            if side == "midline":
                box = [0.46, 0.05, 0.54, 0.95]
            elif side == "right":
                box = [0.18, 0.14, 0.47, 0.22]
            else:
                box = [0.53, 0.14, 0.82, 0.22]
        elif group == "mediastinum":
            if "arch" in name:
                box = [0.5, 0.22, 0.6, 0.3]
            elif "upper" in name:
                box = [0.42, 0.1, 0.58, 0.35]
            elif side == "right":
                box = [0.42, 0.2, 0.49, 0.4]
            else:
                box = [0.4, 0.1, 0.62, 0.75]
        elif group == "heart":
            if "silhouette" in name:
                box = [0.41, 0.5, 0.69, 0.74]
            elif "junction" in name:
                box = [0.42, 0.42, 0.48, 0.48]
            else:
                box = [0.4, 0.48, 0.5, 0.7]
        elif group == "abdomen":
            box = [0.2, 0.72, 0.8, 0.98]
        else:
            box = [0.1, 0.05, 0.9, 0.98]
        out.append(box)
    return np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)


def chest_phantom(
    width: int = 128,
    height: int = 128,
    pose: PhantomPose | None = None,
    lung_scale: float = 1.0,
    noise: float = 0.01,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Render the phantom.

    Args:
        width: picture width ``W`` (array dim 0).
        height: picture height ``H`` (array dim 1).
        pose: positioning affine; identity by default.
        lung_scale: lung size factor.
        noise: standard deviation of additive Gaussian noise.
        seed: noise seed.

    Returns:
        ``(image float32 [W, H] in [0, 1], boxes float32 [29, 4])`` with boxes in picture pixels.
    """
    pose = pose or PhantomPose()
    m, t = pose.affine(width, height)
    xs, ys = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5, indexing="ij")
    pts = np.stack([xs.ravel() - t[0], ys.ravel() - t[1]])
    q = np.linalg.solve(m, pts)
    u = (q[0] / width).reshape(width, height)
    v = (q[1] / height).reshape(width, height)

    def ellipse(cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
        return (((u - cx) / ax) ** 2 + ((v - cy) / ay) ** 2 <= 1.0).astype(np.float32)

    lr, ll = _lung_fracs(lung_scale)
    img = 0.05 + 0.55 * ellipse(0.5, 0.55, 0.44, 0.52)
    img -= 0.38 * ellipse(*lr) + 0.38 * ellipse(*ll)
    img += 0.22 * ellipse(0.56, 0.62, 0.14, 0.11)
    img += 0.12 * ((np.abs(u - 0.5) < 0.035) & (v > 0.05) & (v < 0.95))
    for sgn in (-1, 1):
        bar = (np.abs(v - (0.18 + 0.03 * np.abs(u - 0.5) / 0.3)) < 0.012) & (
            np.abs(u - 0.5 - sgn * 0.17) < 0.14
        )
        img += 0.18 * bar
    img += 0.12 * ((v > 0.74) & (np.abs(u - 0.5) < 0.32))
    img += 0.05 * np.cos(v * 60.0) * (ellipse(*lr) + ellipse(*ll))  # rib-like texture in the lungs
    img = ndi.gaussian_filter(img, sigma=max(width, height) / 256.0)
    if noise > 0:
        img = img + np.random.default_rng(seed).normal(0.0, noise, img.shape)
    boxes = canonical_boxes(lung_scale) * np.array([width, height, width, height], dtype=np.float32)
    return np.clip(img, 0, 1).astype(np.float32), warp_boxes(boxes, m, t)
