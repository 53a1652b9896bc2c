"""Training-free fallback: affine registration of a chest atlas (template image + 29 boxes) with ITK.

The atlas lives in a square ``S x S`` letterbox frame (:func:`gkmvlp_monai.core.boxes.letterbox`).
:func:`register_atlas` registers the atlas (fixed) to the input picture (moving) with ITK's v4 framework
(Mattes mutual information, regular-step gradient descent, 3-level pyramid, affine transform initialised
by the letterbox geometry, i.e. centres aligned at the picture's scale). The optimised transform maps
atlas points to picture points, so the atlas boxes are warped straight into ORIGINAL picture pixels.

Confidence (per region, in [0, 1]) comes from normalised cross-correlation (NCC) between the atlas and
the picture resampled into the atlas frame, globally and inside each (enlarged) region box, times
penalties for implausible results (boxes leaving the picture, scale, anisotropy, shear, rotation,
blank input or a failed optimisation). The issues found are listed in the returned transform.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from gkmvlp_monai.core.boxes import box_area, boxes_from_dict, clip_boxes, letterbox, warp_boxes

__all__ = ["Atlas", "AtlasTransform", "register_atlas", "ncc"]


def _as_wh(image: object) -> np.ndarray:
    arr = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image, dtype=np.float32)
    if arr.ndim == 3:
        if arr.shape[0] != 1:
            arr = arr.mean(axis=0)
        else:
            arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"expected a [1, W, H] or [W, H] picture, got shape {arr.shape}")
    return arr


def ncc(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Normalised cross-correlation of two arrays (optionally inside ``mask``); 0 when either is flat."""
    if mask is not None:
        a, b = a[mask], b[mask]
    a = a.astype(np.float64).ravel() - a.mean()
    b = b.astype(np.float64).ravel() - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 1e-12 else 0.0


@dataclass
class Atlas:
    """A chest template in a square letterbox frame with its 29 region boxes.

    Attributes:
        image: float32 ``[S, S]`` template (``[W, H]`` order: dim 0 is x), values in [0, 1].
        boxes: float32 ``[29, 4]`` region boxes in template pixels.
        mask: bool ``[29]``, region known in the atlas.
        meta: free-form provenance (sources, size).
    """

    image: np.ndarray
    boxes: np.ndarray
    mask: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Side ``S`` of the template."""
        return int(self.image.shape[0])

    @classmethod
    def from_images(
        cls,
        images: Sequence[np.ndarray],
        region_boxes: Sequence[Mapping[str, Sequence[float]] | np.ndarray],
        size: int = 256,
        meta: dict | None = None,
    ) -> Atlas:
        """Build an atlas as the mean of aligned pictures and the median of their aligned boxes.

        Each picture is letterboxed to ``size``; a per-axis scale and shift (least squares over all box
        coordinates) aligns its boxes to the median boxes, the picture is resampled with that map and
        the aligned pictures averaged (two rounds, the second against the first round's median).

        Args:
            images: ``[1, W, H]`` or ``[W, H]`` pictures in [0, 1].
            region_boxes: per picture, a region-box dict (data contract) or a ``[29, 4]`` array.
            size: template side.
            meta: provenance to store.

        Returns:
            The atlas.
        """
        if not images or len(images) != len(region_boxes):
            raise ValueError("from_images needs as many box sets as pictures (at least one)")
        squares, boxes, masks = [], [], []
        for img, rb in zip(images, region_boxes):
            sq, lb = letterbox(_as_wh(img), size)
            if isinstance(rb, Mapping):
                b, m = boxes_from_dict(rb)
            else:
                b = np.asarray(rb, dtype=np.float32)
                m = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
            squares.append(sq[0].numpy())
            boxes.append(lb.to_square(b))
            masks.append(m)
        boxes_a, masks_a = np.stack(boxes), np.stack(masks)
        ref = _masked_median(boxes_a, masks_a)
        for _ in range(2):
            aligned_imgs, aligned_boxes = [], []
            for sq, b, m in zip(squares, boxes_a, masks_a):
                sx, tx, sy, ty = _fit_axis_maps(b, ref, m)
                # output pixel p (continuous) samples input at (p - t) / s; ndimage works on index = coord - 0.5
                mat = np.array([1.0 / sx, 1.0 / sy])
                off = np.array([(0.5 - tx) / sx - 0.5, (0.5 - ty) / sy - 0.5])
                aligned_imgs.append(
                    ndi.affine_transform(sq, mat, offset=off, order=1, mode="constant", cval=0.0)
                )
                aligned_boxes.append(b * np.array([sx, sy, sx, sy]) + np.array([tx, ty, tx, ty]))
            ref = _masked_median(np.stack(aligned_boxes), masks_a)
        info = {"n_images": len(images), "size": size, **(meta or {})}
        return cls(
            np.mean(aligned_imgs, axis=0).astype(np.float32),
            ref.astype(np.float32),
            masks_a.any(axis=0),
            info,
        )

    @classmethod
    def from_datalist_items(
        cls, items: Sequence[Mapping], size: int = 256, base_dir: str | os.PathLike | None = None
    ) -> Atlas:
        """Build an atlas from datalist items that carry ``image`` (path) and ``region_boxes``.

        Args:
            items: datalist items (paths relative to ``base_dir`` when given).
            size: template side.
            base_dir: folder that relative image paths are resolved against.

        Returns:
            The atlas.
        """
        from gkmvlp_monai.transforms.io import LoadCXRImage

        loader = LoadCXRImage()
        imgs, boxes, names = [], [], []
        for it in items:
            path = Path(it["image"])
            if base_dir is not None and not path.is_absolute():
                path = Path(base_dir) / path
            imgs.append(_as_wh(loader(path)))
            boxes.append(it["region_boxes"])
            names.append(path.name)
        return cls.from_images(imgs, boxes, size=size, meta={"sources": names})

    def save(self, path: str | os.PathLike) -> Path:
        """Write the atlas as ``.npz`` (image, boxes, mask, JSON meta)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            np.savez_compressed(
                fh, image=self.image, boxes=self.boxes, mask=self.mask, meta=np.array(json.dumps(self.meta))
            )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Atlas:
        """Read an atlas written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            return cls(
                z["image"].astype(np.float32),
                z["boxes"].astype(np.float32),
                z["mask"].astype(bool),
                json.loads(str(z["meta"])),
            )


def _masked_median(boxes: np.ndarray, masks: np.ndarray) -> np.ndarray:
    out = np.zeros(boxes.shape[1:], dtype=np.float64)
    for r in range(boxes.shape[1]):
        if masks[:, r].any():
            out[r] = np.median(boxes[masks[:, r], r], axis=0)
    return out


def _fit_axis_maps(src: np.ndarray, dst: np.ndarray, mask: np.ndarray) -> tuple[float, float, float, float]:
    """Least-squares ``dst = s * src + t`` separately for x (cols 0, 2) and y (cols 1, 3)."""
    res = []
    for cols in ((0, 2), (1, 3)):
        a = src[mask][:, cols].ravel().astype(np.float64)
        b = dst[mask][:, cols].ravel().astype(np.float64)
        if a.size < 2 or np.ptp(a) < 1e-6:
            res += [1.0, 0.0]
            continue
        s, t = np.polyfit(a, b, 1)
        res += [float(s), float(t)]
    return res[0], res[1], res[2], res[3]


@dataclass
class AtlasTransform:
    """Result of :func:`register_atlas`: the affine mapping atlas pixels to picture pixels, and diagnostics.

    Attributes:
        matrix: ``[2, 2]`` linear part on ``(x, y)``.
        offset: ``[2]`` translation; picture point = ``matrix @ atlas point + offset``.
        metric: final Mattes MI metric value (negative; lower is better); NaN when not run.
        ncc: global normalised cross-correlation after registration.
        iterations: optimiser iterations at the last level.
        issues: human-readable reasons for lowered confidence.
    """

    matrix: np.ndarray
    offset: np.ndarray
    metric: float = float("nan")
    ncc: float = 0.0
    iterations: int = 0
    issues: list[str] = field(default_factory=list)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map ``[N, 2]`` atlas points to picture points."""
        return np.asarray(points, dtype=np.float64) @ self.matrix.T + self.offset


def _to_itk(arr_wh: np.ndarray, spacing: tuple[float, float]):
    import itk

    img = itk.image_from_array(np.ascontiguousarray(arr_wh.T.astype(np.float32)))  # ITK arrays are [y, x]
    img.SetSpacing([float(spacing[0]), float(spacing[1])])
    # physical coordinate of pixel i's centre = (i + 0.5) * spacing: physical units are original picture pixels
    img.SetOrigin([0.5 * float(spacing[0]), 0.5 * float(spacing[1])])
    return img


def _confidence_from_ncc(value: float, lo: float = 0.2, hi: float = 0.7) -> float:
    return float(np.clip((value - lo) / (hi - lo), 0.0, 1.0))


def register_atlas(
    image: object,
    atlas: Atlas,
    work_size: int = 128,
    iterations: int = 60,
    shrink_factors: Sequence[int] = (4, 2, 1),
    smoothing_sigmas: Sequence[float] = (2.0, 1.0, 0.0),
    sampling: float = 0.5,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, AtlasTransform]:
    """Register ``atlas`` to ``image`` (ITK affine, Mattes MI) and warp its boxes into the picture.

    Args:
        image: ``[1, W, H]`` or ``[W, H]`` picture (MONAI order), any size; intensities in [0, 1].
        atlas: the template.
        work_size: longest side both images are resampled to for the optimisation.
        iterations: optimiser iterations per pyramid level.
        shrink_factors: pyramid shrink factors (coarse to fine).
        smoothing_sigmas: Gaussian sigmas per level, in work pixels.
        sampling: share of fixed-image pixels sampled by the metric (random, seeded).
        seed: metric sampling seed.

    Returns:
        ``(boxes float32 [29, 4] in original picture pixels, confidence float32 [29] in [0, 1],
        AtlasTransform)``.
    """
    import itk

    pic = np.nan_to_num(_as_wh(image))
    w, h = pic.shape
    t_size = atlas.size
    # initial map: the letterbox geometry (atlas square frame -> picture), centres aligned
    s0 = max(w, h) / t_size
    init_m = np.eye(2) * s0
    init_t = np.array([w / 2.0, h / 2.0]) - init_m @ np.array([t_size / 2.0, t_size / 2.0])
    issues: list[str] = []
    if float(pic.std()) < 1e-3:
        issues.append("blank image (no intensity variation)")
        tf = AtlasTransform(init_m, init_t, issues=issues)
        return warp_boxes(atlas.boxes, init_m, init_t), np.zeros(len(atlas.boxes), np.float32), tf

    # working copies: picture with longest side work_size (spacing keeps physical units = original pixels)
    f = work_size / max(w, h)
    ww, wh = max(8, round(w * f)), max(8, round(h * f))
    pic_small = ndi.zoom(pic, (ww / w, wh / h), order=1, prefilter=False) if (ww, wh) != (w, h) else pic
    ww, wh = pic_small.shape
    moving = _to_itk(pic_small, (w / ww, h / wh))
    fa = work_size / t_size
    atlas_small = ndi.zoom(atlas.image, fa, order=1, prefilter=False) if fa != 1 else atlas.image
    fixed = _to_itk(atlas_small, (t_size / atlas_small.shape[0], t_size / atlas_small.shape[1]))

    image_t = itk.Image[itk.F, 2]
    transform = itk.AffineTransform[itk.D, 2].New()
    centre = [t_size / 2.0, t_size / 2.0]
    transform.SetCenter(centre)
    params = transform.GetParameters()
    # parameters: m00, m01, m10, m11 (row-major), then translation; centre c: p' = M (p - c) + c + tr
    tr0 = init_m @ np.array(centre) + init_t - np.array(centre)
    for i, v in enumerate([s0, 0.0, 0.0, s0, tr0[0], tr0[1]]):
        params[i] = float(v)
    transform.SetParameters(params)

    metric = itk.MattesMutualInformationImageToImageMetricv4[image_t, image_t].New()
    metric.SetNumberOfHistogramBins(24)
    optimizer = itk.RegularStepGradientDescentOptimizerv4[itk.D].New()
    optimizer.SetLearningRate(1.0)
    optimizer.SetMinimumStepLength(1e-3)
    optimizer.SetRelaxationFactor(0.6)
    optimizer.SetNumberOfIterations(int(iterations))
    optimizer.SetReturnBestParametersAndValue(True)
    scales = itk.RegistrationParameterScalesFromPhysicalShift[type(metric)].New()
    scales.SetMetric(metric)
    optimizer.SetScalesEstimator(scales)

    reg = itk.ImageRegistrationMethodv4[image_t, image_t].New()
    reg.SetFixedImage(fixed)
    reg.SetMovingImage(moving)
    reg.SetMetric(metric)
    reg.SetOptimizer(optimizer)
    reg.SetInitialTransform(transform)
    reg.InPlaceOn()
    n_levels = len(shrink_factors)
    reg.SetNumberOfLevels(n_levels)
    reg.SetShrinkFactorsPerLevel([int(s) for s in shrink_factors])
    reg.SetSmoothingSigmasPerLevel([float(s) for s in smoothing_sigmas])
    reg.SetSmoothingSigmasAreSpecifiedInPhysicalUnits(False)
    reg.SetMetricSamplingStrategy(itk.ImageRegistrationMethodv4Enums.MetricSamplingStrategy_RANDOM)
    reg.SetMetricSamplingPercentage(float(sampling))
    reg.MetricSamplingReinitializeSeed(int(seed))
    metric_value = float("nan")
    try:
        reg.Update()
        metric_value = float(optimizer.GetValue())
        p = np.array(transform.GetParameters(), dtype=np.float64)
    except RuntimeError as err:
        issues.append(f"registration failed ({str(err).strip().splitlines()[-1][:120]})")
        p = np.array([s0, 0.0, 0.0, s0, tr0[0], tr0[1]])
    m = p[:4].reshape(2, 2)
    c = np.array(centre)
    off = p[4:6] + c - m @ c
    boxes = warp_boxes(atlas.boxes, m, off)

    # similarity of the aligned picture to the atlas, in the atlas frame (at work resolution)
    n = atlas_small.shape[0]
    grid = (np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 2) + 0.5) * (
        t_size / n
    )
    pts = grid @ m.T + off  # picture pixels
    idx = pts / np.array([w / ww, h / wh]) - 0.5
    sampled = ndi.map_coordinates(pic_small, idx.T, order=1, mode="constant", cval=0.0).reshape(n, n)
    inside = ((idx >= -0.5) & (idx <= np.array([ww, wh]) - 0.5)).all(axis=1).reshape(n, n)
    known = atlas.boxes[atlas.mask]
    body = np.zeros((n, n), dtype=bool)
    if len(known):
        lo_, hi_ = known[:, :2].min(0) * n / t_size, known[:, 2:].max(0) * n / t_size
        body[int(lo_[0]) : int(np.ceil(hi_[0])), int(lo_[1]) : int(np.ceil(hi_[1]))] = True
    else:
        body[:] = True
    global_ncc = ncc(atlas_small, sampled, body)
    conf = np.zeros(len(atlas.boxes), dtype=np.float32)
    for r, b in enumerate(atlas.boxes):
        if not atlas.mask[r]:
            continue
        bw, bh = b[2] - b[0], b[3] - b[1]
        x1, y1 = (b[0] - 0.25 * bw) * n / t_size, (b[1] - 0.25 * bh) * n / t_size
        x2, y2 = (b[2] + 0.25 * bw) * n / t_size, (b[3] + 0.25 * bh) * n / t_size
        sel = np.zeros((n, n), dtype=bool)
        sel[
            max(0, int(x1)) : max(int(x1) + 2, int(np.ceil(x2))),
            max(0, int(y1)) : max(int(y1) + 2, int(np.ceil(y2))),
        ] = True
        local = ncc(atlas_small, sampled, sel)
        conf[r] = 0.5 * _confidence_from_ncc(global_ncc) + 0.5 * _confidence_from_ncc(local)

    # plausibility of the transform and of the warped boxes
    penalty = 1.0
    sv = np.linalg.svd(m / s0, compute_uv=False)
    angle = float(np.degrees(np.arctan2(m[1, 0] - m[0, 1], m[0, 0] + m[1, 1])))
    if sv.max() > 1.6 or sv.min() < 0.6:
        issues.append(f"implausible scale (singular values {sv.round(2).tolist()} of the expected scale)")
        penalty *= 0.2
    if sv.max() / max(sv.min(), 1e-6) > 1.5:
        issues.append(f"implausible anisotropy/shear (ratio {sv.max() / max(sv.min(), 1e-6):.2f})")
        penalty *= 0.3
    if abs(angle) > 20:
        issues.append(f"implausible rotation ({angle:.1f} deg)")
        penalty *= 0.3
    if len(known):
        wb = boxes[atlas.mask]
        area = box_area(wb)
        inside_frac = float(box_area(clip_boxes(wb, (w, h))).sum() / max(area.sum(), 1e-6))
        if inside_frac < 0.9:
            issues.append(
                f"warped boxes leave the picture ({100 * (1 - inside_frac):.0f}% of their area outside)"
            )
            penalty *= float(np.clip((inside_frac - 0.6) / 0.3, 0.0, 1.0))
    if float(inside.mean()) < 0.5:
        issues.append("atlas mostly maps outside the picture")
        penalty *= 0.3
    if global_ncc < 0.2:
        issues.append(f"picture does not resemble a frontal chest radiograph (NCC {global_ncc:.2f})")
    if any(i.startswith("registration failed") for i in issues):
        penalty = 0.0
    conf = (conf * penalty).astype(np.float32)
    tf = AtlasTransform(m, off, metric_value, global_ncc, int(optimizer.GetCurrentIteration()), issues)
    return boxes, conf, tf
