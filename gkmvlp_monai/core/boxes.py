"""Box helpers for anatomical region extraction: IoU/GIoU, region dict <-> array, affine warps, letterbox.

Boxes are ``[x1, y1, x2, y2]`` with ``x`` the picture's column (array dim 1 of a ``[C, W, H]`` image,
MONAI's reverse indexing) in continuous pixel coordinates (pixel ``i`` covers ``[i, i + 1)``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from gkmvlp_monai.core.vocab import region_names

__all__ = [
    "box_iou_paired",
    "generalized_box_iou_paired",
    "boxes_from_dict",
    "boxes_to_dict",
    "warp_boxes",
    "Letterbox",
    "letterbox",
]


def _area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def _inter_union(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=-1)
    return inter, _area(a) + _area(b) - inter


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


def warp_boxes(boxes: np.ndarray, matrix: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Map boxes through the affine ``p -> matrix @ p + offset``: the axis-aligned hull of the 4 warped corners.

    Args:
        boxes: ``[N, 4]`` boxes.
        matrix: ``[2, 2]`` linear part acting on ``(x, y)`` column vectors.
        offset: ``[2]`` translation.

    Returns:
        ``[N, 4]`` float32 boxes.
    """
    b = np.asarray(boxes, dtype=np.float64)
    corners = np.stack(
        [b[:, [0, 1]], b[:, [2, 1]], b[:, [0, 3]], b[:, [2, 3]]], axis=1
    )  # [N, 4 corners, (x, y)]
    warped = corners @ np.asarray(matrix, dtype=np.float64).T + np.asarray(offset, dtype=np.float64)
    return np.concatenate([warped.min(axis=1), warped.max(axis=1)], axis=1).astype(np.float32)


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
