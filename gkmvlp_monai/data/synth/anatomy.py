"""Chest anatomy for the iu-synth renderer, built around a real lung mask.

A lung mask from the torchxrayvision wheel is cleaned into a :class:`LungTemplate` (right and left lung
on a square *canonical* grid, the patient's right lung on the picture's left). :func:`build_anatomy`
then derives every other structure geometrically from the lungs (body outline, heart, mediastinum,
aortic knob, trachea and carina, hila, spine, ribs, clavicles, hemidiaphragms, abdomen) and returns
their soft density layers plus a bit-packed label map, all on the canonical grid. Arrays are row-major
``(rows, cols)`` = ``(y, x)``; the renderer warps them into the picture.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

#: bit of each anatomical structure in :attr:`Anatomy.labels` (internal to the renderer; the 29 region
#: names come from ``gkmvlp_monai/core/vocabularies/regions.json`` and are measured from these in ``truth.py``)
STRUCTURE_BITS: dict[str, int] = {
    "lung_r": 0,
    "lung_l": 1,
    "heart": 2,
    "upper_mediastinum": 3,
    "aortic_knob": 4,
    "trachea": 5,
    "spine": 6,
    "clavicle_r": 7,
    "clavicle_l": 8,
    "hemidiaphragm_r": 9,
    "hemidiaphragm_l": 10,
    "abdomen": 11,
    "hilum_r": 12,
    "hilum_l": 13,
    "svc": 14,
    "body": 15,
    "carina": 16,
    "cavoatrial": 17,
    "right_atrium": 18,
}


class MaskRejectedError(ValueError):
    """A lung mask image does not hold two plausible side-by-side lungs."""


@dataclass
class LungTemplate:
    """Two cleaned lungs of one real mask on the canonical ``grid × grid`` canvas.

    Attributes:
        name: source mask file name.
        right: the patient's right lung (on the picture's left), bool ``(grid, grid)``.
        left: the patient's left lung, bool ``(grid, grid)``.
    """

    name: str
    right: np.ndarray
    left: np.ndarray

    @property
    def grid(self) -> int:
        """Side of the canonical canvas in pixels."""
        return int(self.right.shape[0])


def _largest_two(binary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lab, n = ndi.label(binary)
    if n < 2:
        raise MaskRejectedError(f"{n} connected component(s); two lungs are needed")
    sizes = np.bincount(lab.ravel())[1:]
    order = np.argsort(sizes)[::-1]
    a, b = sizes[order[0]], sizes[order[1]]
    if b < 0.3 * a:
        raise MaskRejectedError("second lung is less than 30% of the first")
    if (a + b) < 0.6 * sizes.sum():
        raise MaskRejectedError("the two largest components hold less than 60% of the mask")
    return lab == order[0] + 1, lab == order[1] + 1


def clean_lung_mask(data: bytes | np.ndarray, grid: int, name: str = "<mask>") -> LungTemplate:
    """Turn one real lung mask image into a canonical :class:`LungTemplate`.

    The mask is binarised at half its maximum, the two largest components are kept (they must be of
    comparable size and side by side), holes are filled and edges smoothed, and the pair is scaled
    (aspect kept) so that the lungs span 62% of the canvas height (or 80% of its width) with their
    top at 13% of the height, centred horizontally.

    Args:
        data: encoded image bytes (PNG/JPEG, any size) or a 2-D array.
        grid: side of the canonical canvas.
        name: mask name used in messages.

    Returns:
        The template.

    Raises:
        MaskRejectedError: the mask does not hold two plausible lungs.
    """
    if isinstance(data, np.ndarray):
        img = Image.fromarray(np.asarray(data, dtype=np.uint8))
    else:
        img = Image.open(io.BytesIO(data))
        img.draft("L", (2 * grid, 2 * grid))
        img = img.convert("L")
    scale = (2 * grid) / max(img.size)
    if scale < 1:
        img = img.resize(
            (max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale))), Image.BILINEAR
        )
    arr = np.asarray(img)
    peak = int(arr.max())
    if peak == 0:
        raise MaskRejectedError(f"{name}: empty mask")
    a, b = _largest_two(arr > peak / 2)
    ya, xa = np.nonzero(a)
    yb, xb = np.nonzero(b)
    if xa.mean() > xb.mean():
        a, b, ya, xa, yb, xb = b, a, yb, xb, ya, xa
    overlap_y = min(ya.max(), yb.max()) - max(ya.min(), yb.min())
    if overlap_y < 0.5 * min(np.ptp(ya), np.ptp(yb)):
        raise MaskRejectedError(f"{name}: the lungs are not side by side")
    if np.percentile(xa, 90) > np.percentile(xb, 10):
        raise MaskRejectedError(f"{name}: the lungs overlap horizontally")
    y0, y1 = min(ya.min(), yb.min()), max(ya.max(), yb.max()) + 1
    x0, x1 = xa.min(), xb.max() + 1
    h, w = y1 - y0, x1 - x0
    if not 0.55 < h / w < 1.6:
        raise MaskRejectedError(f"{name}: implausible lung aspect ratio {h / w:.2f}")
    s = min(0.62 * grid / h, 0.80 * grid / w)
    nh, nw = max(8, round(h * s)), max(8, round(w * s))
    top, lft = round(0.13 * grid), (grid - nw) // 2
    out = []
    for comp in (a, b):
        crop = Image.fromarray((ndi.binary_fill_holes(comp[y0:y1, x0:x1]) * 255).astype(np.uint8))
        small = np.asarray(crop.resize((nw, nh), Image.BILINEAR), dtype=np.float32) / 255.0
        small = ndi.gaussian_filter(small, max(0.8, grid / 256)) > 0.5
        canvas = np.zeros((grid, grid), dtype=bool)
        canvas[top : top + nh, lft : lft + nw] = small
        out.append(canvas)
    return LungTemplate(name=name, right=out[0], left=out[1])


def load_lung_templates(
    masks: Iterable[tuple[str, bytes]], grid: int, limit: int | None = None
) -> tuple[list[LungTemplate], list[str]]:
    """Clean a stream of ``(name, bytes)`` masks; returns the accepted templates and rejected names."""
    kept: list[LungTemplate] = []
    rejected: list[str] = []
    for name, data in masks:
        try:
            kept.append(clean_lung_mask(data, grid, name))
        except MaskRejectedError:
            rejected.append(name)
        if limit is not None and len(kept) >= limit:
            break
    return kept, rejected


@dataclass
class AnatomyParams:
    """Per-case variation of the anatomy (1.0 / 0.0 = typical adult).

    Attributes:
        ctr: cardiothoracic ratio (heart width / thoracic width); > 0.5 is cardiomegaly.
        inflation: vertical lung scale (> 1 hyperinflation, < 1 low volumes).
        dome_flatten: 0 curved domes, 1 flat diaphragm.
        elevate_r, elevate_l: fraction of lung height by which a hemidiaphragm is raised.
        scoliosis: lateral spine deviation amplitude, fraction of thoracic width (signed).
        knob: aortic knob size factor (> 1 tortuous / unfolded aorta).
        mediastinum_width: upper mediastinal width factor.
        shift: mediastinal shift, fraction of thoracic width (+ = towards the picture's right).
        body_margin: soft tissue outside the lungs, fraction of thoracic width.
        breast: breast shadow strength (0 none).
        rib_phase: phase offset of the rib pattern.
    """

    ctr: float = 0.44
    inflation: float = 1.0
    dome_flatten: float = 0.0
    elevate_r: float = 0.0
    elevate_l: float = 0.0
    scoliosis: float = 0.0
    knob: float = 1.0
    mediastinum_width: float = 1.0
    shift: float = 0.0
    body_margin: float = 0.12
    breast: float = 0.0
    rib_phase: float = 0.0


@dataclass
class Anatomy:
    """Structures of one case on the canonical grid.

    Attributes:
        layers: soft density maps in [0, 1] keyed ``body``, ``lung``, ``heart``, ``mediastinum``,
            ``spine``, ``ribs``, ``clavicles``, ``abdomen``, ``hila``, ``trachea``, ``gastric``,
            ``breast``.
        labels: uint32 bit map (see :data:`STRUCTURE_BITS`).
        geom: measured landmarks (canonical pixels): ``top``, ``bottom``, ``xm`` (midline), ``wt``
            (thoracic width), ``hl`` (lung height), ``carina``, ``cavoatrial``, ``knob``, hila,
            lung boxes.
        lung_r, lung_l: final lung masks (bool).
    """

    layers: dict[str, np.ndarray]
    labels: np.ndarray
    geom: dict[str, float | tuple[float, ...]] = field(default_factory=dict)
    lung_r: np.ndarray | None = None
    lung_l: np.ndarray | None = None


def _stretch_rows(mask: np.ndarray, top: float, factor: float) -> np.ndarray:
    """Scale a mask vertically about row ``top`` by ``factor`` (nearest rows)."""
    rows = np.arange(mask.shape[0], dtype=np.float32)
    src = np.clip(np.round(top + (rows - top) / factor), 0, mask.shape[0] - 1).astype(np.intp)
    out = mask[src]
    if factor < 1:
        out[rows > top + (mask.shape[0] - 1 - top) * factor] = False
    return out


def _base_profile(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lowest lung row per column (``-1`` where the column holds no lung) and the column mask."""
    has = mask.any(axis=0)
    last = mask.shape[0] - 1 - np.argmax(mask[::-1], axis=0)
    return np.where(has, last, -1), has


def _flatten_base(mask: np.ndarray, amount: float, side_top: float) -> np.ndarray:
    """Push a lung's base towards a flat line at its lowest point (``amount`` in [0, 1])."""
    if amount <= 0:
        return mask
    base, has = _base_profile(mask)
    if not has.any():
        return mask
    low = base[has].max()
    has = has & (base > side_top + 0.7 * (low - side_top))
    target = np.where(has, base + amount * (low - base) * 0.85, -1)
    rows = np.arange(mask.shape[0])[:, None]
    ext = has[None, :] & (rows <= target[None, :]) & (rows > side_top + 0.5 * (low - side_top))
    return mask | ext


def _seg_dist(yy: np.ndarray, xx: np.ndarray, pts: np.ndarray, reach: float | None = None) -> np.ndarray:
    """Distance of grid points to a polyline of ``(n, 2)`` (y, x) points; beyond ``reach`` pixels
    from the polyline's bounding box the distance is left at ``inf`` (default reach: 12% of the grid)."""
    g = yy.shape[0]
    pad = 0.12 * g if reach is None else reach
    r0, r1 = int(max(0, pts[:, 0].min() - pad)), int(min(g, pts[:, 0].max() + pad + 1))
    c0, c1 = int(max(0, pts[:, 1].min() - pad)), int(min(yy.shape[1], pts[:, 1].max() + pad + 1))
    best = np.full(yy.shape, np.inf, dtype=np.float32)
    if r0 >= r1 or c0 >= c1:
        return best
    ys, xs = yy[r0:r1, c0:c1], xx[r0:r1, c0:c1]
    sub = best[r0:r1, c0:c1]
    for (ya, xa), (yb, xb) in zip(pts[:-1], pts[1:]):
        dy, dx = yb - ya, xb - xa
        den = dy * dy + dx * dx + 1e-6
        t = np.clip(((ys - ya) * dy + (xs - xa) * dx) / den, 0.0, 1.0)
        d = np.hypot(ys - (ya + t * dy), xs - (xa + t * dx))
        np.minimum(sub, d, out=sub)
    return best


def smoothstep(x: np.ndarray) -> np.ndarray:
    """Cubic smoothstep of ``x`` clipped to [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def build_anatomy(tpl: LungTemplate, p: AnatomyParams) -> Anatomy:
    """Build all structures of one case from a lung template and variation parameters.

    Args:
        tpl: cleaned real lung pair.
        p: per-case anatomy parameters.

    Returns:
        The case's :class:`Anatomy` on the template's canonical grid.
    """
    g = tpl.grid
    yy, xx = np.mgrid[0:g, 0:g].astype(np.float32)
    both0 = tpl.right | tpl.left
    rows0 = np.nonzero(both0.any(axis=1))[0]
    top = float(rows0[0])
    # lungs: inflation, flattening, elevated hemidiaphragms
    lung_r = _stretch_rows(tpl.right, top, p.inflation * (1.0 - p.elevate_r))
    lung_l = _stretch_rows(tpl.left, top, p.inflation * (1.0 - p.elevate_l))
    lung_r = _flatten_base(lung_r, p.dome_flatten, top)
    lung_l = _flatten_base(lung_l, p.dome_flatten, top)
    both = lung_r | lung_l
    rows = np.nonzero(both.any(axis=1))[0]
    bottom = float(rows[-1])
    hl = bottom - top
    cols_r = np.nonzero(lung_r.any(axis=0))[0]
    cols_l = np.nonzero(lung_l.any(axis=0))[0]
    xl, xr = float(cols_r[0]), float(cols_l[-1])
    wt = xr - xl
    # midline from the medial edges in the upper half of the lungs
    upper = slice(int(top + 0.1 * hl), int(top + 0.5 * hl))
    med_r = np.array([np.nonzero(r)[0].max() for r in lung_r[upper] if r.any()] or [g * 0.45])
    med_l = np.array([np.nonzero(r)[0].min() for r in lung_l[upper] if r.any()] or [g * 0.55])
    xm = float(0.5 * (np.median(med_r) + np.median(med_l))) + p.shift * wt
    labels = np.zeros((g, g), dtype=np.uint32)

    def put(name: str, mask: np.ndarray) -> None:
        labels[mask] |= np.uint32(1 << STRUCTURE_BITS[name])

    # body outline: chest wall around the lungs, shoulders widening at the top
    shoulder = smoothstep((top + 0.12 * hl - yy) / (0.3 * hl))
    waist = smoothstep((yy - top - 0.3 * hl) / (1.2 * hl))
    half_body = wt * (0.5 + p.body_margin) * (1.0 + 0.45 * shoulder - 0.12 * waist)
    dx_body = np.abs(xx - xm) / half_body
    body = smoothstep((1.0 - dx_body) / 0.06)
    put("body", dx_body < 1.0)
    # soft-tissue thickness: thicker towards the centre
    thick = body * (0.75 + 0.25 * np.sqrt(np.clip(1.0 - dx_body**2, 0.0, 1.0)))

    # hemidiaphragm domes: each lung's real base where it meets the diaphragm, a fitted parabola
    # elsewhere (under the heart, lateral to the lungs)
    cols = np.arange(g, dtype=np.float32)
    base = np.zeros(g, dtype=np.float32)
    for m, side_cols in ((lung_r, cols <= xm), (lung_l, cols > xm)):
        b, has = _base_profile(m)
        good = has & (b > top + 0.72 * hl)
        if good.sum() < 4:
            good = has
        coef = np.polyfit(cols[good], b[good].astype(np.float64), 2)
        if coef[0] < 0:  # a dome bulges upwards: rows grow away from its summit
            coef = np.array([0.0, 0.0, float(np.max(b[good]))])
        fit = np.polyval(coef, cols).astype(np.float32)
        real = np.where(good, b.astype(np.float32), fit)
        base = np.where(side_cols, np.maximum(real, fit - 0.02 * hl), base)
    base = np.clip(ndi.uniform_filter1d(base, max(3, g // 16)), top + 0.5 * hl, g - 1).astype(np.float32)
    below = yy > base[None, :] + 1
    abdomen = below & (dx_body < 1.0)
    dome_band = (yy >= base[None, :] - 1) & (yy <= base[None, :] + 0.07 * hl)
    put("hemidiaphragm_r", dome_band & (xx >= xl) & (xx <= min(xm, float(cols_r[-1]) + 2)))
    put("hemidiaphragm_l", dome_band & (xx <= xr) & (xx >= max(xm, float(cols_l[0]) - 2)))
    put("abdomen", abdomen & (yy < g))
    abd_soft = ndi.gaussian_filter(abdomen.astype(np.float32), 1.2)
    # gastric bubble under the left dome
    lbase = float(base[int(min(g - 1, xm + 0.22 * wt))])
    gastric = np.exp(
        -(((xx - (xm + 0.22 * wt)) / (0.07 * wt)) ** 2 + ((yy - (lbase + 0.07 * hl)) / (0.045 * hl)) ** 2)
    )
    gastric = gastric * (yy > lbase + 0.03 * hl)

    # heart: tilted ellipse resting on the diaphragm, left-leaning
    hw = p.ctr * wt
    hcx = xm + 0.17 * hw
    hcy_base = float(base[int(np.clip(hcx, 0, g - 1))])
    ha, hb = 0.5 * hw, 0.2 * hl * (0.7 + 0.3 * p.ctr / 0.44)
    hcy = hcy_base - 0.75 * hb
    ang = np.deg2rad(-20.0)
    u = (xx - hcx) * np.cos(ang) - (yy - hcy) * np.sin(ang)
    v = (xx - hcx) * np.sin(ang) + (yy - hcy) * np.cos(ang)
    rh = np.sqrt((u / ha) ** 2 + (v / hb) ** 2)
    heart_mask = (rh < 1.0) & ~below
    heart = smoothstep((1.0 - rh) / 0.15) * (1.0 - abd_soft)
    put("heart", heart_mask)
    put("right_atrium", heart_mask & (xx < hcx - 0.25 * ha))
    htop = float(np.nonzero(heart_mask.any(axis=1))[0][0]) if heart_mask.any() else top + 0.5 * hl

    # mediastinum band from the neck to the heart; aortic knob on the patient's left
    mw = 0.085 * wt * p.mediastinum_width * (1.0 + 0.4 * smoothstep((yy - top) / hl))
    med = smoothstep((mw - np.abs(xx - xm)) / (0.02 * wt)) * smoothstep((htop + 0.25 * hl - yy) / (0.2 * hl))
    knob_c = (top + 0.2 * hl, xm + 0.085 * wt + 0.03 * wt * (p.knob - 1.0))
    knob_r = 0.045 * wt * p.knob
    dk = np.hypot(yy - knob_c[0], xx - knob_c[1]) / knob_r
    knob = smoothstep((1.0 - dk) / 0.2)
    upper_med = (np.abs(xx - xm) < mw) & (yy >= top - 0.05 * hl) & (yy < htop)
    put("upper_mediastinum", upper_med)
    put("aortic_knob", dk < 1.0)
    # SVC: right border strip of the upper mediastinum, down to the cavoatrial junction
    svc_x = xm - mw
    svc = (
        (xx > svc_x - 0.012 * wt)
        & (xx < svc_x + 0.03 * wt)
        & (yy > top + 0.12 * hl)
        & (yy < htop + 0.03 * hl)
    )
    put("svc", svc)
    cav = (htop + 0.03 * hl, float(xm - 0.085 * wt * p.mediastinum_width * 1.2))
    put("cavoatrial", np.hypot(yy - cav[0], xx - cav[1]) < 0.025 * wt)

    # trachea and carina
    carina = (top + 0.3 * hl, xm - 0.005 * wt)
    tw = 0.022 * wt
    trachea_m = (np.abs(xx - xm + 0.02 * wt * (yy - carina[0]) / hl) < tw) & (yy < carina[0])
    bronchi = _seg_dist(
        yy,
        xx,
        np.array(
            [
                [carina[0] + 0.08 * hl, carina[1] - 0.07 * wt],
                [carina[0], carina[1]],
                [carina[0] + 0.1 * hl, carina[1] + 0.08 * wt],
            ],
            dtype=np.float32,
        ),
    )
    trachea = np.maximum(trachea_m.astype(np.float32), (bronchi < 0.7 * tw).astype(np.float32))
    trachea = ndi.gaussian_filter(trachea, 1.0)
    put("trachea", trachea_m)
    put("carina", np.hypot(yy - carina[0], xx - carina[1]) < 0.03 * wt)

    # hila
    hila = np.zeros((g, g), dtype=np.float32)
    hil: dict[str, tuple[float, float]] = {}
    for side, sgn in (("r", -1.0), ("l", 1.0)):
        cy, cx = top + (0.42 if side == "r" else 0.38) * hl, xm + sgn * 0.16 * wt
        d = ((yy - cy) / (0.1 * hl)) ** 2 + ((xx - cx) / (0.06 * wt)) ** 2
        hila += np.exp(-d * 1.5)
        put(f"hilum_{side}", d < 1.0)
        hil[side] = (cy, cx)

    # spine (optionally scoliotic) with vertebral segmentation
    sp_c = xm + p.scoliosis * wt * np.sin(np.pi * np.clip((yy - top + 0.1 * hl) / (1.2 * hl), 0, 1))
    sw = 0.055 * wt
    ds = np.abs(xx - sp_c) / sw
    period = 0.075 * hl
    seg = 0.75 + 0.25 * np.cos(2 * np.pi * (yy - top) / period) ** 8
    spine = smoothstep((1.0 - ds) / 0.25) * seg * (0.8 + 0.2 * ds**2)
    put("spine", (ds < 1.0) & (yy < bottom + 0.12 * hl))

    # ribs: posterior (arched) and anterior (sloping) bands inside the chest wall
    lat = np.abs(xx - xm) / (0.5 * wt)
    post_phase = (yy - 0.24 * hl * lat**2.5 + 0.05 * hl * lat - top + 0.06 * hl) / (
        0.095 * hl * p.inflation
    ) + p.rib_phase
    fp = post_phase - np.floor(post_phase)
    post = np.exp(-(((fp - 0.5) / 0.17) ** 6)) * (
        0.7 + 0.6 * np.exp(-(((np.abs(fp - 0.5) - 0.15) / 0.05) ** 2))
    )
    ant_phase = (yy + 0.3 * hl * lat - top) / (0.11 * hl) + 0.3 + p.rib_phase
    fa = ant_phase - np.floor(ant_phase)
    ant = np.exp(-(((fa - 0.5) / 0.14) ** 4)) * smoothstep((lat - 0.4) / 0.3)
    rib_zone = smoothstep((1.08 - lat) / 0.08) * smoothstep((lat - 0.12) / 0.1)
    rib_zone = (
        rib_zone
        * smoothstep((yy - top + 0.08 * hl) / (0.05 * hl))
        * smoothstep((bottom + 0.05 * hl - yy) / (0.1 * hl))
    )
    ribs = (post + 0.45 * ant) * rib_zone

    # clavicles: gently S-curved bands from the sternal notch to the shoulders
    clav = np.zeros((g, g), dtype=np.float32)
    for side, sgn in (("r", -1.0), ("l", 1.0)):
        t = np.linspace(0.0, 1.0, 7, dtype=np.float32)
        px = xm + sgn * (0.05 * wt + t * 0.55 * wt)
        py = top + 0.06 * hl - t * 0.1 * hl + 0.03 * hl * np.sin(np.pi * t)
        d = _seg_dist(yy, xx, np.stack([py, px], axis=1))
        cw = 0.026 * hl
        band = smoothstep((cw - d) / (0.5 * cw)) * (
            1.0 + 0.5 * np.exp(-(((d - 0.8 * cw) / (0.25 * cw)) ** 2))
        )
        clav = np.maximum(clav, band)
        put(f"clavicle_{side}", d < cw)

    # breast shadows over the lower lungs
    breast = np.zeros((g, g), dtype=np.float32)
    if p.breast > 0:
        for sgn in (-1.0, 1.0):
            d = ((yy - (bottom - 0.05 * hl)) / (0.3 * hl)) ** 2 + (
                (xx - (xm + sgn * 0.3 * wt)) / (0.28 * wt)
            ) ** 2
            breast += p.breast * smoothstep((1.0 - d) / 0.4)

    lungs = lung_r | lung_l
    # air thickness: thin at the lung edges, thick in the middle of each lung
    depth = smoothstep(ndi.distance_transform_edt(lungs) / (0.1 * wt))
    lung_soft = ndi.gaussian_filter(lungs.astype(np.float32) * (0.55 + 0.45 * depth), max(0.8, g / 300))
    put("lung_r", lung_r)
    put("lung_l", lung_l)
    layers = {
        "body": thick,
        "lung": lung_soft,
        "heart": heart,
        "mediastinum": np.maximum(med, knob),
        "spine": spine,
        "ribs": ribs,
        "clavicles": clav,
        "abdomen": abd_soft,
        "hila": hila,
        "trachea": trachea,
        "gastric": gastric,
        "breast": breast,
    }
    geom = {
        "top": top,
        "bottom": bottom,
        "hl": hl,
        "xm": xm,
        "wt": wt,
        "xl": xl,
        "xr": xr,
        "carina": carina,
        "cavoatrial": cav,
        "knob": knob_c,
        "hilum_r": hil["r"],
        "hilum_l": hil["l"],
        "heart": (hcy, hcx, hb, ha),
        "htop": htop,
    }
    return Anatomy(layers=layers, labels=labels, geom=geom, lung_r=lung_r, lung_l=lung_l)
