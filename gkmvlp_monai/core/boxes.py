"""Box geometry, the one module for it: IoU/GIoU, box validity, area and clipping, region dict <-> array,
mapping boxes between pixel grids (affine maps, letterbox), boxes <-> masks, and the default region
layout a network gets for an image without region boxes.

Boxes are ``[x1, y1, x2, y2]`` with ``x`` the picture's column (array dim 1 of a ``[C, W, H]`` image,
MONAI's reverse indexing) in continuous pixel coordinates (pixel ``i`` covers ``[i, i + 1)``).
Functions taking torch tensors keep their dtype and device; the numpy ones are noted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gkmvlp_monai.core.vocab import default_region_boxes, region_names

__all__ = [
    "box_area",
    "box_iou_paired",
    "generalized_box_iou_paired",
    "check_box",
    "is_box",
    "clip_boxes",
    "boxes_from_dict",
    "boxes_to_dict",
    "region_boxes_to_array",
    "warp_boxes",
    "map_boxes",
    "Letterbox",
    "letterbox",
    "boxes_to_patch_mask",
    "boxes_to_mask",
    "mask_box",
    "default_layout",
    "fixed_region_inputs",
    "fill_default_regions",
]


def box_area(boxes: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Area of each box, 0 for an empty or inverted one.

    Args:
        boxes: ``[..., 4]`` boxes (torch tensor or numpy array; the result is of the same kind and dtype).

    Returns:
        ``[...]`` areas.
    """
    if isinstance(boxes, torch.Tensor):
        return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)
    b = np.asarray(boxes)
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def _inter_union(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=-1)
    return inter, box_area(a) + box_area(b) - inter


def box_iou_paired(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """IoU of corresponding boxes (not all pairs).

    Args:
        a: ``[..., 4]`` boxes ``x1, y1, x2, y2``.
        b: boxes of the same shape.
        eps: guards empty unions (IoU of two empty boxes is 0).

    Returns:
        ``[...]`` IoU values in [0, 1].
    """
    inter, union = _inter_union(a, b)
    return inter / union.clamp(min=eps)


def generalized_box_iou_paired(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Generalised IoU (Rezatofighi et al., 2019) of corresponding boxes, in [-1, 1].

    Args:
        a: ``[..., 4]`` boxes.
        b: boxes of the same shape.
        eps: numerical guard.

    Returns:
        ``[...]`` GIoU values: IoU minus the share of the enclosing box covered by neither box.
    """
    inter, union = _inter_union(a, b)
    iou = inter / union.clamp(min=eps)
    lt = torch.minimum(a[..., :2], b[..., :2])
    rb = torch.maximum(a[..., 2:], b[..., 2:])
    hull = (rb - lt).clamp(min=0).prod(dim=-1)
    return iou - (hull - union) / hull.clamp(min=eps)


def check_box(box: Sequence[float] | np.ndarray, what: str = "box") -> np.ndarray:
    """Check one box of the data contract and return it as float64 ``[4]``.

    Args:
        box: ``[x1, y1, x2, y2]``.
        what: what the box is, for the error message (e.g. ``"region 'right lung'"``).

    Returns:
        The box as a float64 array.

    Raises:
        ValueError: not 4 finite numbers, or ``x2 < x1`` or ``y2 < y1``.
    """
    arr = np.asarray(box, dtype=np.float64)
    if arr.shape != (4,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: a box must be 4 finite numbers [x1, y1, x2, y2], got {box!r}")
    if arr[2] < arr[0] or arr[3] < arr[1]:
        raise ValueError(f"{what}: box {box!r} has x2 < x1 or y2 < y1")
    return arr


def is_box(value: Any) -> bool:
    """Whether a JSON value is a data-contract box: a list or tuple of 4 finite numbers with
    ``x1 <= x2`` and ``y1 <= y2`` (the datalist check; :func:`check_box` is its raising counterpart for
    array-likes)."""
    return (
        isinstance(value, (list, tuple))
        and len(value) == 4
        and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
        and value[2] >= value[0]
        and value[3] >= value[1]
    )


def clip_boxes(boxes: np.ndarray | Sequence[Sequence[float]], size: Sequence[float]) -> np.ndarray:
    """Clip boxes to a ``W x H`` picture: ``x`` to ``[0, W]``, ``y`` to ``[0, H]`` (numpy).

    Args:
        boxes: ``[..., 4]`` boxes.
        size: ``(W, H)``.

    Returns:
        A clipped copy (a floating dtype is kept, other dtypes become float64).
    """
    out = np.array(boxes, copy=True)
    if out.dtype.kind != "f":
        out = out.astype(np.float64)
    out[..., [0, 2]] = np.clip(out[..., [0, 2]], 0, size[0])
    out[..., [1, 3]] = np.clip(out[..., [1, 3]], 0, size[1])
    return out


def boxes_from_dict(region_boxes: Mapping[str, Sequence[float]] | None) -> tuple[np.ndarray, np.ndarray]:
    """Region-box dict (data contract) to a ``[29, 4]`` float32 array and a ``[29]`` bool mask.

    Args:
        region_boxes: ``{region name: [x1, y1, x2, y2]}``; names as in ``gkmvlp_monai/core/vocabularies/regions.json``.

    Returns:
        ``(boxes, mask)``; absent or empty boxes are zero with ``mask`` False.

    Raises:
        KeyError: a region name outside the vocabulary.
    """
    names = region_names()
    index = {n: i for i, n in enumerate(names)}
    boxes = np.zeros((len(names), 4), dtype=np.float32)
    mask = np.zeros(len(names), dtype=bool)
    for name, box in (region_boxes or {}).items():
        if name not in index:
            raise KeyError(
                f"unknown anatomical region {name!r}; see gkmvlp_monai/core/vocabularies/regions.json"
            )
        b = np.asarray(box, dtype=np.float32).reshape(4)
        boxes[index[name]] = b
        mask[index[name]] = bool(b[2] > b[0] and b[3] > b[1])
    return boxes, mask


def boxes_to_dict(
    boxes: np.ndarray | torch.Tensor, mask: np.ndarray | None = None, ndigits: int = 2
) -> dict[str, list[float]]:
    """``[29, 4]`` boxes to the data contract's region-box dict (regions with ``mask`` False left out).

    Args:
        boxes: boxes in canonical region order.
        mask: optional ``[29]`` bools.
        ndigits: rounding of the coordinates (JSON friendliness).

    Returns:
        ``{region name: [x1, y1, x2, y2]}``.
    """
    arr = np.asarray(boxes.detach().cpu() if isinstance(boxes, torch.Tensor) else boxes, dtype=np.float64)
    names = region_names()
    if arr.shape != (len(names), 4):
        raise ValueError(f"expected boxes of shape ({len(names)}, 4), got {arr.shape}")
    keep = np.ones(len(names), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    return {n: [round(float(v), ndigits) for v in arr[i]] for i, n in enumerate(names) if keep[i]}


def region_boxes_to_array(
    region_boxes: Mapping[str, Sequence[float]] | None, names: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Turn ``{region name: [x1, y1, x2, y2]}`` into arrays in vocabulary order, checking every box.

    The strict form of :func:`boxes_from_dict` used on datalist items: names are matched
    case-insensitively, every box must pass :func:`check_box`, and a present box counts as known even
    when it is empty (the transforms drop boxes that end up too small).

    Args:
        region_boxes: boxes by region name (case-insensitive); None or empty gives all regions absent.
        names: region vocabulary (defaults to ``region_names()``, the 29 Chest ImaGenome regions).

    Returns:
        ``(boxes float32 [R, 4], mask bool [R])``; absent regions have a zero box and ``False``.

    Raises:
        ValueError: unknown region name or malformed box.
    """
    names = list(names) if names is not None else region_names()
    lookup = {name.lower(): i for i, name in enumerate(names)}
    boxes = np.zeros((len(names), 4), dtype=np.float32)
    mask = np.zeros(len(names), dtype=bool)
    for name, box in (region_boxes or {}).items():
        index = lookup.get(str(name).strip().lower())
        if index is None:
            raise ValueError(
                f"unknown anatomical region {name!r} in region_boxes (see gkmvlp_monai/core/vocabularies/regions.json)"
            )
        boxes[index] = check_box(box, f"region {name!r}")
        mask[index] = True
    return boxes, mask


def _corners(boxes: np.ndarray) -> np.ndarray:
    """``[N, 4]`` boxes -> ``[N, 4 corners, (x, y)]``."""
    return np.stack([boxes[:, [0, 1]], boxes[:, [2, 1]], boxes[:, [0, 3]], boxes[:, [2, 3]]], axis=1)


def _hull(points: np.ndarray) -> np.ndarray:
    """``[N, K, (x, y)]`` points -> ``[N, 4]`` axis-aligned boxes around them."""
    return np.concatenate([points.min(axis=1), points.max(axis=1)], axis=1)


def warp_boxes(boxes: np.ndarray, matrix: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Map boxes through the affine ``p -> matrix @ p + offset``: the axis-aligned hull of the 4 warped corners.

    Args:
        boxes: ``[N, 4]`` boxes.
        matrix: ``[2, 2]`` linear part acting on ``(x, y)`` column vectors.
        offset: ``[2]`` translation.

    Returns:
        ``[N, 4]`` float32 boxes.
    """
    corners = _corners(np.asarray(boxes, dtype=np.float64))
    warped = corners @ np.asarray(matrix, dtype=np.float64).T + np.asarray(offset, dtype=np.float64)
    return _hull(warped).astype(np.float32)


def map_boxes(
    boxes: np.ndarray,
    from_affine: np.ndarray,
    to_affine: np.ndarray,
    image_size: Sequence[int],
    min_size: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Map ``xyxy`` boxes between two pixel grids of a 2-D image (e.g. before and after MONAI transforms).

    Args:
        boxes: ``[N, 4]`` continuous ``[x1, y1, x2, y2]`` on the grid of ``from_affine``.
        from_affine: 3x3 pixel-index -> world affine of the boxes' grid.
        to_affine: 3x3 pixel-index -> world affine of the target grid.
        image_size: ``(W, H)`` of the target image, for clipping.
        min_size: boxes narrower or lower than this (in target pixels) after clipping are dropped.

    Returns:
        ``(boxes float32 [N, 4], kept bool [N])``; dropped boxes are zeros.

    Raises:
        ValueError: affines that are not 3x3 (a 2-D image) or boxes not ``[N, 4]``.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) if np.size(boxes) else np.zeros((0, 4))
    a0, a1 = np.asarray(from_affine, dtype=np.float64), np.asarray(to_affine, dtype=np.float64)
    if a0.shape != (3, 3) or a1.shape != (3, 3):
        raise ValueError(f"box mapping needs 3x3 (2-D) affines, got {a0.shape} and {a1.shape}")
    index = _corners(boxes) - 0.5  # continuous -> pixel-index coordinates (pixel centres)
    hom = np.concatenate([index, np.ones(index.shape[:2] + (1,))], -1)
    mapped = hom @ (np.linalg.inv(a1) @ a0).T
    pts = mapped[..., :2] + 0.5
    out = _hull(pts) if len(boxes) else np.zeros((0, 4))
    out = clip_boxes(out, np.asarray(image_size, dtype=np.float64))
    kept = ((out[:, 2] - out[:, 0]) >= min_size) & ((out[:, 3] - out[:, 1]) >= min_size)
    out[~kept] = 0
    return out.astype(np.float32), kept


@dataclass(frozen=True)
class Letterbox:
    """An aspect-preserving resize of a ``W x H`` picture into an ``S x S`` square, centred with padding.

    Attributes:
        size: square side ``S``.
        scale_x: resized width / original width.
        scale_y: resized height / original height.
        off_x: left padding in square pixels.
        off_y: top padding in square pixels.
    """

    size: int
    scale_x: float
    scale_y: float
    off_x: float
    off_y: float

    def to_square(self, boxes: np.ndarray) -> np.ndarray:
        """Original-picture boxes ``[N, 4]`` to square-frame pixels."""
        s = np.array([self.scale_x, self.scale_y] * 2)
        o = np.array([self.off_x, self.off_y] * 2)
        return (np.asarray(boxes, dtype=np.float64) * s + o).astype(np.float32)

    def to_original(self, boxes: np.ndarray) -> np.ndarray:
        """Square-frame boxes ``[N, 4]`` back to original-picture pixels."""
        s = np.array([self.scale_x, self.scale_y] * 2)
        o = np.array([self.off_x, self.off_y] * 2)
        return ((np.asarray(boxes, dtype=np.float64) - o) / s).astype(np.float32)


def letterbox(image: torch.Tensor | np.ndarray, size: int) -> tuple[torch.Tensor, Letterbox]:
    """Resize a ``[C, W, H]`` (or ``[W, H]``) picture to ``[C, size, size]`` keeping its aspect, padding with 0.

    Args:
        image: picture in MONAI's ``[C, W, H]`` order.
        size: output side.

    Returns:
        ``(square float32 tensor [C, size, size], Letterbox)``; ``Letterbox.to_original`` undoes the box
        mapping.
    """
    t = torch.as_tensor(
        np.asarray(image)
        if isinstance(image, np.ndarray)
        else image.as_tensor()
        if hasattr(image, "as_tensor")
        else image
    )
    t = t.float()
    if t.ndim == 2:
        t = t[None]
    c, w, h = t.shape
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = F.interpolate(t[None], size=(nw, nh), mode="bilinear", align_corners=False, antialias=True)[0]
    out = torch.zeros((c, size, size), dtype=torch.float32)
    ox, oy = (size - nw) // 2, (size - nh) // 2
    out[:, ox : ox + nw, oy : oy + nh] = resized
    return out, Letterbox(size, nw / w, nh / h, float(ox), float(oy))


def boxes_to_patch_mask(
    boxes: torch.Tensor, grid: tuple[int, int], image_size: int | float | Sequence[float]
) -> torch.Tensor:
    """Which cells of a grid over the image have their centre inside each box.

    A cell is inside when its centre lies in ``[x1, x2) x [y1, y2)``.

    Args:
        boxes: ``[..., 4]`` xyxy boxes in image pixels (x along dim -2).
        grid: ``(h, w)`` cells along x and y (a feature map's size, or the image's own for pixels).
        image_size: side of the square image, or its ``(W, H)``.

    Returns:
        ``[..., h, w]`` bool.
    """
    h, w = grid
    sx, sy = (image_size, image_size) if not isinstance(image_size, Sequence) else image_size
    cx = (torch.arange(h, device=boxes.device, dtype=boxes.dtype) + 0.5) * (sx / h)
    cy = (torch.arange(w, device=boxes.device, dtype=boxes.dtype) + 0.5) * (sy / w)
    inx = (cx >= boxes[..., 0:1]) & (cx < boxes[..., 2:3])  # [..., h]
    iny = (cy >= boxes[..., 1:2]) & (cy < boxes[..., 3:4])  # [..., w]
    return inx.unsqueeze(-1) & iny.unsqueeze(-2)


def boxes_to_mask(
    boxes: Sequence[Sequence[float]] | np.ndarray | torch.Tensor, size: Sequence[int]
) -> torch.Tensor:
    """Rasterise ``xyxy`` boxes into one pixel mask, their union.

    A pixel is inside when its centre ``i + 0.5`` lies inside the box (``x1 <= i + 0.5 < x2``).

    Args:
        boxes: ``[N, 4]`` boxes ``[x1, y1, x2, y2]``; ``x`` runs along the mask's dim 0.
        size: ``(W, H)`` of the mask.

    Returns:
        bool ``[W, H]`` (CPU) union of the boxes (all False for no boxes).

    Raises:
        ValueError: boxes not ``[N, 4]``.
    """
    arr = torch.as_tensor(
        np.asarray(boxes, dtype=np.float64) if not isinstance(boxes, torch.Tensor) else boxes
    )
    if arr.numel() == 0:
        arr = arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"boxes must be [N, 4] xyxy, got shape {tuple(arr.shape)}")
    w, h = int(size[0]), int(size[1])
    return boxes_to_patch_mask(arr.detach().cpu().double(), (w, h), (w, h)).any(dim=0)


def mask_box(mask: np.ndarray) -> list[float] | None:
    """Tight ``[x1, y1, x2, y2]`` box of a boolean ``(rows, cols)`` mask (picture order: ``x`` is the
    column), or ``None`` when the mask is empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return [float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)]


def default_layout(image_size: int) -> torch.Tensor:
    """The default region layout (``gkmvlp_monai/core/vocabularies/region_layout.json``, a median layout)
    as float32 ``[29, 4]`` boxes in pixels of an ``image_size`` square image."""
    return torch.as_tensor(default_region_boxes(image_size), dtype=torch.float32)


def fixed_region_inputs(
    image: torch.Tensor, boxes: torch.Tensor, boxes_size: int, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Region inputs of an image-only network call (an export wrapper): the same boxes for every image.

    Args:
        image: ``[B, C, S, S]`` batch.
        boxes: ``[R, 4]`` boxes in pixels of a ``boxes_size`` square image (e.g. :func:`default_layout`);
            scaled to the batch's side ``S``.
        boxes_size: side the boxes refer to.
        mask: optional ``[R]`` bool (default: every region known).

    Returns:
        ``(boxes [B, R, 4], mask [B, R])``.
    """
    b = image.shape[0]
    out = (boxes * (image.shape[-1] / boxes_size)).unsqueeze(0).expand(b, -1, -1)
    if mask is None:
        return out, torch.ones(out.shape[:2], dtype=torch.bool, device=image.device)
    return out, mask.unsqueeze(0).expand(b, -1)


def fill_default_regions(
    image: torch.Tensor,
    boxes: torch.Tensor | None,
    mask: torch.Tensor | None,
    use_default: torch.Tensor | Sequence[bool] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Region inputs of a batch, where an image without any known region box gets the default layout.

    The images that get it are those :class:`~gkmvlp_monai.transforms.regions.ExtractAnatomicalRegionsd`
    recorded as region source ``"default"`` (``use_default``), and any image whose boxes are all unknown
    (a batch that did not pass through that transform, or whose boxes all fell outside the picture). The
    layout is made for the batch's square side (``image.shape[-1]``).

    Args:
        image: ``[B, C, S, S]`` batch.
        boxes: ``[B, R, 4]`` region boxes in pixels, or ``None`` (no boxes at all).
        mask: ``[B, R]`` bool, region known, or ``None``.
        use_default: optional ``[B]`` bools, the images recorded as having no region source.

    Returns:
        ``(boxes [B, R, 4] in image.dtype, mask [B, R] bool, used [B] bool)``; ``used`` flags the images
        given the default layout.
    """
    b, size = image.shape[0], image.shape[-1]
    default = torch.as_tensor(default_region_boxes(size), dtype=image.dtype, device=image.device)
    if boxes is None or mask is None or boxes.shape[1] == 0:
        used = torch.ones(b, dtype=torch.bool, device=image.device)
        return (
            default.unsqueeze(0).expand(b, -1, -1).clone(),
            used[:, None].expand(b, len(default)).clone(),
            used,
        )
    used = ~mask.bool().any(dim=1)
    if use_default is not None:
        used = used | torch.as_tensor(use_default, dtype=torch.bool, device=used.device).reshape(b)
    boxes = torch.where(used[:, None, None], default.unsqueeze(0), boxes.to(image.dtype))
    return boxes, mask.bool() | used[:, None], used
