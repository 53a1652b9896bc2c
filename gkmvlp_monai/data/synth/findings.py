"""Findings of iu-synth: IU MeSH tags → what to draw, where, and how.

Each MeSH major tag is parsed by :func:`gkmvlp_monai.knowledge.mesh.parse_mesh_tag` into entities and
regions; ``drawers.json`` (next to this module) says how each entity is drawn. *Anatomy* drawers change
the anatomy parameters (heart size, lung volume, spine curve, ...) and take the changed structure as the
finding's mask; *lesion* drawers add a density on the canonical grid and return it with its mask (the
pixels where the density is at least a fifth of its peak).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from gkmvlp_monai.data.synth.anatomy import Anatomy, AnatomyParams, _seg_dist, smoothstep
from gkmvlp_monai.data.synth.truth import bit_mask, region_masks
from gkmvlp_monai.knowledge.mesh import parse_mesh_tag
from gkmvlp_monai.core.vocab import entity, regions

_SEVERITY = {
    "mild": 0.7,
    "small": 0.7,
    "minimal": 0.6,
    "borderline": 0.5,
    "moderate": 1.0,
    "severe": 1.35,
    "large": 1.35,
    "extensive": 1.35,
}
#: fraction of its peak above which a lesion's density belongs to its mask
MASK_FRACTION = 0.2


@lru_cache(maxsize=1)
def drawer_table() -> dict[str, dict[str, Any]]:
    """The entity → drawer table of ``drawers.json``."""
    return json.loads((Path(__file__).with_name("drawers.json")).read_text(encoding="utf-8"))["drawers"]


@dataclass
class FindingSpec:
    """One finding to draw: entity, drawer recipe, regions, severity and the MeSH tag it came from."""

    entity: str
    kind: str
    drawer: str
    regions: tuple[str, ...]
    severity: float
    tag: str
    multiple: bool = False
    uncertain: bool = False


@dataclass
class Lesion:
    """A drawn lesion on the canonical grid: additive density, mask, and markings to suppress."""

    spec: FindingSpec
    density: np.ndarray
    mask: np.ndarray
    suppress: np.ndarray | None = None


@dataclass
class CaseFindings:
    """Everything the report asks to draw, plus the anatomy changes it implies."""

    specs: list[FindingSpec] = field(default_factory=list)
    undrawn: list[str] = field(default_factory=list)
    lung_air: float = 1.0
    markings: float = 1.0


def specs_from_tags(tags: list[str]) -> CaseFindings:
    """Parse a report's MeSH major tags into finding specs (entities without a drawer are listed
    in ``undrawn``)."""
    table = drawer_table()
    out = CaseFindings()
    for tag in tags:
        parsed = parse_mesh_tag(tag)
        words = [w.lower() for ws in parsed.qualifiers.values() for w in ws]
        sev = 1.0
        for w in words:
            sev = _SEVERITY.get(w, sev)
        for ent in parsed.entities:
            recipe = table.get(ent)
            if recipe is None or recipe["kind"] == "none":
                if ent not in out.undrawn and recipe is None:
                    out.undrawn.append(ent)
                continue
            regs = parsed.regions or entity(ent).default_regions
            out.specs.append(
                FindingSpec(
                    entity=ent,
                    kind=recipe["kind"],
                    drawer=recipe["drawer"],
                    regions=tuple(regs),
                    severity=sev * float(recipe.get("strength", 1.0)),
                    tag=tag,
                    multiple="multiple" in words or "scattered" in words,
                    uncertain="borderline" in words or ent == "borderline",
                )
            )
    return out


def _sides(regs: tuple[str, ...], rng: np.random.Generator) -> list[str]:
    side_of = {r.name: r.side for r in regions()}
    sides = sorted({side_of.get(r, "") for r in regs} & {"right", "left"})
    return sides or [str(rng.choice(["right", "left"]))]


def apply_anatomy(case: CaseFindings, params: AnatomyParams, rng: np.random.Generator) -> None:
    """Change the anatomy parameters (and lung air / markings) for the case's anatomy findings."""
    for spec in case.specs:
        if spec.kind != "anatomy":
            continue
        s = spec.severity
        if spec.drawer == "cardiomegaly":
            params.ctr = max(params.ctr, 0.5 + 0.1 * s + rng.uniform(0.0, 0.04))
        elif spec.drawer == "hypoinflation":
            sides = _sides(spec.regions, rng)
            if len(sides) == 1:
                setattr(params, "elevate_r" if sides[0] == "right" else "elevate_l", 0.1 + 0.05 * s)
            else:
                params.inflation = min(params.inflation, 0.93 - 0.05 * s)
        elif spec.drawer == "hyperinflation":
            params.inflation = max(params.inflation, 1.08 + 0.06 * s)
            case.lung_air = max(case.lung_air, 1.1 + 0.1 * s)
            case.markings = min(case.markings, 0.7)
        elif spec.drawer == "aorta":
            params.knob = max(params.knob, 1.3 + 0.3 * s)
        elif spec.drawer == "mediastinum":
            params.mediastinum_width = max(params.mediastinum_width, 1.3 + 0.2 * s)
        elif spec.drawer == "shift":
            params.shift = float(rng.choice([-1.0, 1.0])) * (0.03 + 0.02 * s)
        elif spec.drawer == "elevation":
            for side in _sides(spec.regions, rng):
                setattr(params, "elevate_r" if side == "right" else "elevate_l", 0.08 + 0.06 * s)
        elif spec.drawer == "scoliosis":
            params.scoliosis = float(rng.choice([-1.0, 1.0])) * (0.03 + 0.03 * s)


def anatomy_mask(spec: FindingSpec, anat: Anatomy, rng: np.random.Generator) -> np.ndarray:
    """The structure an anatomy finding changed, as its mask on the canonical grid."""
    lab = anat.labels
    d = spec.drawer
    if d == "cardiomegaly":
        return bit_mask(lab, "heart")
    if d in ("hypoinflation", "hyperinflation"):
        sides = _sides(spec.regions, rng) if d == "hypoinflation" else ["right", "left"]
        return bit_mask(lab, *(f"lung_{s[0]}" for s in sides))
    if d == "aorta":
        return bit_mask(lab, "aortic_knob")
    if d in ("mediastinum", "shift"):
        return bit_mask(lab, "upper_mediastinum", "aortic_knob")
    if d == "elevation":
        return bit_mask(lab, *(f"hemidiaphragm_{s[0]}" for s in _sides(spec.regions, rng)))
    if d == "scoliosis":
        return bit_mask(lab, "spine") & ~bit_mask(lab, "abdomen")
    raise KeyError(f"unknown anatomy drawer {d!r}")


class LesionPainter:
    """Draws lesion findings on one case's canonical grid."""

    def __init__(self, anat: Anatomy, rng: np.random.Generator) -> None:
        self.anat = anat
        self.rng = rng
        g = anat.labels.shape[0]
        self.g = g
        self.yy, self.xx = np.mgrid[0:g, 0:g].astype(np.float32)
        self.regions = region_masks(anat.labels)
        self.lungs = bit_mask(anat.labels, "lung_r", "lung_l")
        self.wt = float(anat.geom["wt"])
        self.hl = float(anat.geom["hl"])
        self.xm = float(anat.geom["xm"])

    # helpers -------------------------------------------------------------------------------------
    def _area(self, regs: tuple[str, ...], lung_only: bool = True) -> np.ndarray:
        m = np.zeros_like(self.lungs)
        for r in regs:
            if r in self.regions:
                m |= self.regions[r]
        if lung_only:
            inside = m & self.lungs
            m = inside if inside.any() else (self.lungs if not m.any() else m)
        return m

    def _point(self, area: np.ndarray) -> tuple[float, float]:
        ys, xs = np.nonzero(area)
        if ys.size == 0:
            ys, xs = np.nonzero(self.lungs)
        k = int(self.rng.integers(ys.size))
        return float(ys[k]), float(xs[k])

    def _disc(self, cy: float, cx: float, r: float, edge: float = 0.3, lobes: float = 0.0) -> np.ndarray:
        d = np.hypot(self.yy - cy, self.xx - cx)
        if lobes > 0:
            ang = np.arctan2(self.yy - cy, self.xx - cx)
            r = r * (1.0 + lobes * np.sin(3 * ang + self.rng.uniform(0, 6.28)))
        return smoothstep((r - d) / max(0.7, edge * np.max(r)))

    def _lung_of(self, side: str) -> np.ndarray:
        return bit_mask(self.anat.labels, f"lung_{side[0]}")

    # drawers -------------------------------------------------------------------------------------
    def patchy(self, spec: FindingSpec) -> tuple[np.ndarray, np.ndarray | None]:
        dens = np.zeros((self.g, self.g), dtype=np.float32)
        field_ = ndi.gaussian_filter(
            self.rng.standard_normal((self.g, self.g)).astype(np.float32), self.g / 60
        )
        field_ /= field_.std() + 1e-6
        targets = list(spec.regions[:2]) if spec.regions else ["right lung"]
        for reg in targets:
            cy, cx = self._point(self._area((reg,)))
            ry, rx = (0.07 + 0.05 * spec.severity) * self.hl, (0.06 + 0.04 * spec.severity) * self.wt
            env = np.exp(-(((self.yy - cy) / ry) ** 2 + ((self.xx - cx) / rx) ** 2))
            dens += np.clip(env * (1.0 + 0.6 * field_) - 0.25, 0.0, None)
        dens *= self.anat.layers["lung"] > 0.3
        dens = ndi.gaussian_filter(dens, 1.0)
        return 0.32 * min(1.6, spec.severity) * dens / (dens.max() + 1e-6), None

    def nodule(self, spec: FindingSpec) -> tuple[np.ndarray, np.ndarray | None]:
        cy, cx = self._point(self._area(spec.regions))
        r = (0.016 + 0.004 * self.rng.standard_normal()) * self.wt * spec.severity
        disc = self._disc(cy, cx, max(1.5, r), 0.35, lobes=0.12 if spec.severity > 2 else 0.0)
        return 0.28 * disc, None

    def calcified_dots(self, spec: FindingSpec) -> tuple[np.ndarray, np.ndarray | None]:
        n = int(self.rng.integers(2, 5)) if spec.multiple else 1
        area = self._area(spec.regions, lung_only=any("lung" in r or "zone" in r for r in spec.regions))
        dens = np.zeros((self.g, self.g), dtype=np.float32)
        for _ in range(n):
            cy, cx = self._point(area)
            dens = np.maximum(
                dens, self._disc(cy, cx, max(1.0, self.rng.uniform(0.006, 0.011) * self.wt), 0.5)
            )
        return 0.6 * dens, None

    def aortic_calcification(self, spec: FindingSpec) -> tuple[np.ndarray, np.ndarray | None]:
        ky, kx = self.anat.geom["knob"]  # type: ignore[misc]
        knob = bit_mask(self.anat.labels, "aortic_knob")
        r = np.sqrt(knob.sum() / np.pi) if knob.any() else 0.045 * self.wt
        d = np.hypot(self.yy - ky, self.xx - kx)
        ang = np.arctan2(self.yy - ky, self.xx - kx)
        arc = smoothstep((1.2 - np.abs(d - 0.85 * r)) / 0.8) * (np.abs(ang + 0.6) < 0.9)
        return 0.4 * arc.astype(np.float32), None

    def plate(self, spec: FindingSpec) -> tuple[np.ndarray, np.ndarray | None]:
        dens = np.zeros((self.g, self.g), dtype=np.float32)
        for reg in spec.regions[:2] or ("right lower lung zone",):
            area = self._area((reg,))
            cy, cx = self._point(area)
            half = self.rng.uniform(0.08, 0.14) * self.wt
            a = np.deg2rad(self.rng.uniform(-18, 18))
            pts = np.array(
                [
                    [cy - half * np.sin(a), cx - half * np.cos(a)],
                    [cy + half * np.sin(a), cx + half * np.cos(a)],
                ],
                dtype=np.float32,
            )
            d = _seg_dist(self.yy, self.xx, pts)
            w = max(1.0, 0.008 * self.wt * spec.severity)
            dens = np.maximum(dens, smoothstep((w - d) / w + 0.5))
        dens *= self.anat.layers["lung"] > 0.2
        return 0.22 * dens, None

    def effusion(self, spec: FindingSpec) -> tuple[np.ndarray, np.ndarray | None]:
        dens = np.zeros((self.g, self.g), dtype=np.float32)
        for side in _sides(spec.regions, self.rng):
            lung = self._lung_of(side)
            if not lung.any():
                continue
            rows = np.flatnonzero(lung.any(axis=1))
            cols = np.flatnonzero(lung.any(axis=0))
            t, b = rows[0], rows[-1]
            c0, c1 = cols[0], cols[-1]
            lat = (c1 - self.xx) / (c1 - c0 + 1) if side == "right" else (self.xx - c0) / (c1 - c0 + 1)
            lat = np.clip(lat, 0.0, 1.0)  # 1 at the lateral edge
            level = b - (b - t) * (0.1 + 0.14 * spec.severity) - 0.12 * (b - t) * spec.severity * lat**2
            fluid = lung & (self.yy > level)
            soft = ndi.gaussian_filter(fluid.astype(np.float32), 1.5)
            dens = np.maximum(dens, soft * smoothstep((self.yy - level) / (0.06 * (b - t))))
        return 0.55 * dens, None

    def pleural_band(self, spec: FindingSpec) -> tuple[np.ndarray, np.ndarray | None]:
        area = self._area(spec.regions)
        edge = ndi.distance_transform_edt(self.lungs)
        band = area & (edge < 0.02 * self.wt + 1)
        band &= np.abs(self.xx - self.xm) > 0.25 * self.wt
        return 0.2 * ndi.gaussian_filter(band.astype(np.float32), 0.8), None

    def pneumothorax(self, spec: FindingSpec) -> tuple[np.ndarray, np.ndarray | None]:
        side = _sides(spec.regions, self.rng)[0]
        lung = self._lung_of(side)
        rows = np.flatnonzero(lung.any(axis=1))
        t, b = rows[0], rows[-1]
        outside = ~lung
        # distance from the chest wall (outside the lung, away from the mediastinum)
        wall = outside & (np.abs(self.xx - self.xm) > 0.2 * self.wt)
        dist = ndi.distance_transform_edt(~wall)
        w = (0.04 + 0.04 * spec.severity) * self.wt
        rim = lung & (dist < w) & (self.yy < t + (0.45 + 0.3 * spec.severity) * (b - t))
        line = lung & (np.abs(dist - w) < 0.9) & (self.yy < t + (0.45 + 0.3 * spec.severity) * (b - t))
        dens = -0.14 * ndi.gaussian_filter(rim.astype(np.float32), 0.8) + 0.16 * line
        return dens.astype(np.float32), rim

    def reticular(self, spec: FindingSpec) -> tuple[np.ndarray, np.ndarray | None]:
        area = self._area(spec.regions)
        n = ndi.gaussian_filter(self.rng.standard_normal((self.g, self.g)).astype(np.float32), 1.2)
        net = smoothstep(1.0 - np.abs(n) / (0.25 * n.std()))
        zone = ndi.gaussian_filter(area.astype(np.float32), 2.0)
        return 0.12 * min(1.5, spec.severity) * net * zone, None

    def perihilar_haze(self, spec: FindingSpec) -> tuple[np.ndarray, np.ndarray | None]:
        dens = np.zeros((self.g, self.g), dtype=np.float32)
        for side in ("r", "l"):
            cy, cx = self.anat.geom[f"hilum_{side}"]  # type: ignore[misc]
            dens += np.exp(
                -(((self.yy - cy) / (0.28 * self.hl)) ** 2 + ((self.xx - cx) / (0.2 * self.wt)) ** 2)
            )
        return 0.14 * min(1.5, spec.severity) * dens * self.anat.layers["lung"], None

    def hilar_enlargement(self, spec: FindingSpec) -> tuple[np.ndarray, np.ndarray | None]:
        dens = np.zeros((self.g, self.g), dtype=np.float32)
        for side in _sides(spec.regions, self.rng) if spec.regions else ["right", "left"]:
            cy, cx = self.anat.geom[f"hilum_{side[0]}"]  # type: ignore[misc]
            d = ((self.yy - cy) / (0.09 * self.hl)) ** 2 + ((self.xx - cx) / (0.055 * self.wt)) ** 2
            dens += smoothstep((1.0 - d) / 0.5)
        return 0.22 * dens, None

    def _line(self, pts: np.ndarray, width: float, value: float) -> np.ndarray:
        d = _seg_dist(self.yy, self.xx, pts.astype(np.float32))
        return value * smoothstep((width - d) / max(0.6, 0.5 * width) + 0.5)

    def catheter(self, spec: FindingSpec) -> tuple[np.ndarray, np.ndarray | None]:
        side = _sides(spec.regions, self.rng)[0]
        sgn = -1.0 if side == "right" else 1.0
        top = float(self.anat.geom["top"])
        cav_y, cav_x = self.anat.geom["cavoatrial"]  # type: ignore[misc]
        jitter = self.rng.uniform(-0.02, 0.02, 4) * self.wt
        pts = np.array(
            [
                [top - 0.05 * self.hl, self.xm + sgn * 0.4 * self.wt + jitter[0]],
                [top + 0.04 * self.hl, self.xm + sgn * 0.2 * self.wt + jitter[1]],
                [top + 0.1 * self.hl, self.xm - 0.06 * self.wt + jitter[2]],
                [cav_y - 0.02 * self.hl, cav_x + 0.02 * self.wt + jitter[3]],
            ]
        )
        return self._line(pts, max(0.7, 0.005 * self.wt), 0.45), None

    def tube(self, spec: FindingSpec) -> tuple[np.ndarray, np.ndarray | None]:
        cy, cx = self.anat.geom["carina"]  # type: ignore[misc]
        end = cy - self.rng.uniform(0.04, 0.1) * self.hl
        pts = np.array([[0.0, self.xm - 0.005 * self.wt], [end, cx]])
        return self._line(pts, max(1.0, 0.009 * self.wt), 0.4), None

    def pacemaker(self, spec: FindingSpec) -> tuple[np.ndarray, np.ndarray | None]:
        side = (
            _sides(tuple(r for r in spec.regions if "lung" in r or "clavicle" in r), self.rng)[0]
            if any("lung" in r or "clavicle" in r for r in spec.regions)
            else "left"
        )
        sgn = -1.0 if side == "right" else 1.0
        top = float(self.anat.geom["top"])
        gy = top + self.rng.uniform(0.08, 0.15) * self.hl
        gx = self.xm + sgn * self.rng.uniform(0.28, 0.36) * self.wt
        hh, hw = 0.045 * self.hl, 0.06 * self.wt
        box = smoothstep((1.0 - np.maximum(np.abs(self.yy - gy) / hh, np.abs(self.xx - gx) / hw) ** 4) / 0.3)
        hy, hx, hb, ha = self.anat.geom["heart"]  # type: ignore[misc]
        lead = np.array(
            [
                [gy, gx],
                [top + 0.05 * self.hl, self.xm + sgn * 0.12 * self.wt],
                [top + 0.12 * self.hl, self.xm - 0.05 * self.wt],
                [hy - 0.1 * hb, hx - 0.3 * ha],
                [hy + 0.5 * hb, hx + 0.2 * ha],
            ]
        )
        return np.maximum(0.9 * box, self._line(lead, max(0.7, 0.005 * self.wt), 0.5)), None

    def spinal_rods(self, spec: FindingSpec) -> tuple[np.ndarray, np.ndarray | None]:
        spine = bit_mask(self.anat.labels, "spine")
        rows = np.flatnonzero(spine.any(axis=1))
        y0 = float(self.rng.uniform(rows[0], rows[0] + 0.5 * (rows[-1] - rows[0])))
        y1 = y0 + self.rng.uniform(0.2, 0.4) * self.hl
        dens = np.zeros((self.g, self.g), dtype=np.float32)
        for off in (-0.04, 0.04):
            dens = np.maximum(
                dens,
                self._line(
                    np.array([[y0, self.xm + off * self.wt], [y1, self.xm + off * self.wt]]),
                    max(1.0, 0.007 * self.wt),
                    0.7,
                ),
            )
        return dens, None

    def clips(self, spec: FindingSpec) -> tuple[np.ndarray, np.ndarray | None]:
        lung_only = any("lung" in r or "zone" in r for r in spec.regions)
        cy, cx = self._point(self._area(spec.regions or ("right lung",), lung_only=lung_only))
        dens = np.zeros((self.g, self.g), dtype=np.float32)
        for _ in range(int(self.rng.integers(2, 5))):
            py, px = cy + self.rng.normal(0, 0.03 * self.hl), cx + self.rng.normal(0, 0.03 * self.wt)
            a = self.rng.uniform(0, np.pi)
            half = 0.012 * self.wt * spec.severity
            pts = np.array(
                [
                    [py - half * np.sin(a), px - half * np.cos(a)],
                    [py + half * np.sin(a), px + half * np.cos(a)],
                ]
            )
            dens = np.maximum(dens, self._line(pts, max(0.7, 0.004 * self.wt), 0.8))
        return dens, None

    def rib_callus(self, spec: FindingSpec) -> tuple[np.ndarray, np.ndarray | None]:
        dens = np.zeros((self.g, self.g), dtype=np.float32)
        for side in _sides(spec.regions, self.rng)[:1]:
            lung = self._lung_of(side)
            area = lung & (np.abs(self.xx - self.xm) > 0.36 * self.wt)
            cy, cx = self._point(area if area.any() else lung)
            d = ((self.yy - cy) / (0.018 * self.hl)) ** 2 + ((self.xx - cx) / (0.024 * self.wt)) ** 2
            dens = np.maximum(dens, smoothstep((1.0 - d) / 0.6))
        return 0.25 * dens, None

    def hiatal_hernia(self, spec: FindingSpec) -> tuple[np.ndarray, np.ndarray | None]:
        hy, hx, hb, ha = self.anat.geom["heart"]  # type: ignore[misc]
        cy, cx = hy + 0.3 * hb, self.xm + 0.05 * self.wt
        r = 0.07 * self.wt
        disc = self._disc(cy, cx, r, 0.25)
        air = disc * (self.yy < cy - 0.2 * r)
        return (0.18 * disc - 0.3 * air).astype(np.float32), None

    def subcutaneous_air(self, spec: FindingSpec) -> tuple[np.ndarray, np.ndarray | None]:
        dens = np.zeros((self.g, self.g), dtype=np.float32)
        top = float(self.anat.geom["top"])
        for side in ("right", "left"):
            sgn = -1.0 if side == "right" else 1.0
            for _ in range(4):
                y0 = top + self.rng.uniform(0.0, 0.4) * self.hl
                x0 = self.xm + sgn * self.rng.uniform(0.5, 0.56) * self.wt
                pts = np.array(
                    [[y0, x0], [y0 + 0.12 * self.hl, x0 + sgn * self.rng.uniform(-0.02, 0.03) * self.wt]]
                )
                dens = np.minimum(dens, self._line(pts, max(0.8, 0.006 * self.wt), -0.3))
        return dens, None

    def spurs(self, spec: FindingSpec) -> tuple[np.ndarray, np.ndarray | None]:
        spine = (
            bit_mask(self.anat.labels, "spine")
            & (self.yy > float(self.anat.geom["top"]))
            & (self.yy < float(self.anat.geom["bottom"]))
        )
        dens = np.zeros((self.g, self.g), dtype=np.float32)
        rows = np.flatnonzero(spine.any(axis=1))
        for _ in range(int(self.rng.integers(2, 5))):
            y = float(self.rng.integers(rows[0], rows[-1] + 1))
            cols = np.flatnonzero(spine[int(y)])
            x = float(cols[0] - 1) if self.rng.random() < 0.5 else float(cols[-1] + 1)
            d = ((self.yy - y) / (0.012 * self.hl)) ** 2 + ((self.xx - x) / (0.014 * self.wt)) ** 2
            dens = np.maximum(dens, smoothstep((1.0 - d) / 0.6))
        return 0.3 * dens, None

    def draw(self, spec: FindingSpec) -> Lesion | None:
        """Draw one lesion finding; ``None`` when it leaves no pixels."""
        fn = getattr(self, spec.drawer, None)
        if fn is None or spec.drawer.startswith("_") or spec.drawer == "draw":
            raise KeyError(f"unknown lesion drawer {spec.drawer!r} (drawers.json)")
        dens, supp = fn(spec)
        dens = dens.astype(np.float32)
        peak = float(np.abs(dens).max())
        if peak <= 0:
            return None
        mask = np.abs(dens) >= MASK_FRACTION * peak
        if supp is not None:
            mask |= supp
        return Lesion(spec=spec, density=dens, mask=mask, suppress=supp)
