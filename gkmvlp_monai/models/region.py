"""RoIAlign with torch ops and region tokens pooled over anatomical region boxes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def roi_align(
    features: torch.Tensor,
    boxes: torch.Tensor,
    output_size: int | tuple[int, int] = 7,
    spatial_scale: float = 1.0,
    sampling_ratio: int = 2,
) -> torch.Tensor:
    """RoIAlign (``aligned=True`` semantics) by bilinear ``grid_sample`` on a per-box sampling grid.

    Box coordinates follow the data contract: ``[x1, y1, x2, y2]`` continuous pixel coordinates where
    ``x`` runs along ``features`` dim -2 and ``y`` along dim -1, pixel ``i`` covering ``[i, i + 1)``.
    Each output bin averages ``sampling_ratio ** 2`` bilinear samples placed at the centres of a regular
    sub-grid of the bin; samples beyond the map take the border value.

    Args:
        features: ``[B, C, H, W]`` feature map (``H`` along x, ``W`` along y).
        boxes: ``[B, R, 4]`` boxes in input-image pixels.
        output_size: bins per box along (x, y).
        spatial_scale: feature-map cells per image pixel (``H / S``).
        sampling_ratio: samples per bin along each axis.

    Returns:
        ``[B, R, C, out_x, out_y]`` pooled features.
    """
    ox, oy = (output_size, output_size) if isinstance(output_size, int) else output_size
    b, c, size_x, size_y = features.shape
    r = boxes.shape[1]
    boxes = boxes.to(features.dtype) * spatial_scale
    x1, y1, x2, y2 = boxes.unbind(-1)  # [B, R]
    # sample positions as fractions of the box, at sub-bin centres
    fx = (torch.arange(ox * sampling_ratio, device=features.device, dtype=features.dtype) + 0.5) / (
        ox * sampling_ratio
    )
    fy = (torch.arange(oy * sampling_ratio, device=features.device, dtype=features.dtype) + 0.5) / (
        oy * sampling_ratio
    )
    px = x1[..., None] + (x2 - x1)[..., None] * fx  # [B, R, ox*s]
    py = y1[..., None] + (y2 - y1)[..., None] * fy  # [B, R, oy*s]
    # continuous coordinate c -> normalised 2c/size - 1 (align_corners=False: -1 is the map's edge)
    gx = 2.0 * px / size_x - 1.0
    gy = 2.0 * py / size_y - 1.0
    nx, ny = gx.shape[-1], gy.shape[-1]
    # grid[..., 0] indexes the last input dim (y), grid[..., 1] the second-last (x)
    grid = torch.stack(
        (gy[:, :, None, :].expand(b, r, nx, ny), gx[:, :, :, None].expand(b, r, nx, ny)), dim=-1
    ).reshape(b, r * nx, ny, 2)
    sampled = F.grid_sample(features, grid, mode="bilinear", padding_mode="border", align_corners=False)
    sampled = sampled.reshape(b, c, r, ox, sampling_ratio, oy, sampling_ratio).mean(dim=(4, 6))
    return sampled.permute(0, 2, 1, 3, 4)


def _bilinear_axis_weights(lo: torch.Tensor, hi: torch.Tensor, samples: int, size: int) -> torch.Tensor:
    """Mean bilinear weight of each feature cell for ``samples`` evenly spaced points in ``[lo, hi)``.

    Points sit at sub-interval centres (as RoIAlign places them); a point at continuous coordinate ``p``
    reads cells ``i`` with weight ``max(0, 1 - |clamp(p - 0.5, 0, size - 1) - i|)`` (``grid_sample``'s
    bilinear kernel with ``padding_mode="border"``, ``align_corners=False``).

    Args:
        lo: ``[...]`` interval starts in feature cells.
        hi: ``[...]`` interval ends in feature cells.
        samples: points per interval.
        size: feature cells along the axis.

    Returns:
        ``[..., size]`` weights; each row sums to 1.
    """
    frac = (torch.arange(samples, device=lo.device, dtype=lo.dtype) + 0.5) / samples
    points = lo[..., None] + (hi - lo)[..., None] * frac  # [..., samples]
    points = (points - 0.5).clamp(0.0, size - 1.0)
    cells = torch.arange(size, device=lo.device, dtype=lo.dtype)
    return (1.0 - (points[..., None] - cells).abs()).clamp_min(0.0).mean(dim=-2)


def roi_mean_pool(
    features: torch.Tensor,
    boxes: torch.Tensor,
    output_size: int = 4,
    spatial_scale: float = 1.0,
    sampling_ratio: int = 2,
) -> torch.Tensor:
    """Mean of the RoIAlign samples of each box, computed exactly without sampling the map.

    ``roi_align(...).mean(dim=(-2, -1))`` averages bilinear samples on a Cartesian grid, and the bilinear
    kernel is separable, so the mean is ``sum_xy wx[x] * wy[y] * F[:, x, y]`` with per-axis weights
    (:func:`_bilinear_axis_weights`). This is two small matrix products instead of a ``grid_sample`` of
    ``R * (output_size * sampling_ratio) ** 2`` points per image and channel, and its backward pass is a
    matrix product too (``grid_sample``'s backward scatters and is the slow part on CPU).

    Args:
        features: ``[B, C, H, W]`` feature map (``H`` along x, ``W`` along y).
        boxes: ``[B, R, 4]`` boxes in input-image pixels, ``[x1, y1, x2, y2]``.
        output_size: RoIAlign bins per axis (the samples per axis are ``output_size * sampling_ratio``).
        spatial_scale: feature-map cells per image pixel.
        sampling_ratio: RoIAlign samples per bin per axis.

    Returns:
        ``[B, R, C]`` pooled features, equal to ``roi_align(...).mean(dim=(-2, -1))``.
    """
    size_x, size_y = features.shape[-2:]
    boxes = boxes.to(features.dtype) * spatial_scale
    x1, y1, x2, y2 = boxes.unbind(-1)
    samples = output_size * sampling_ratio
    wx = _bilinear_axis_weights(x1, x2, samples, size_x)  # [B, R, H]
    wy = _bilinear_axis_weights(y1, y2, samples, size_y)  # [B, R, W]
    along_y = torch.einsum("bchw,brw->brch", features, wy)  # [B, R, C, H]
    return torch.einsum("brch,brh->brc", along_y, wx)


class RegionPooling(nn.Module):
    """One token per anatomical region: RoIAlign over the region box, averaged (computed exactly by
    :func:`roi_mean_pool`), projected, plus a
    learned region-type embedding; tokens of absent regions are zeroed and flagged in the mask.

    Args:
        in_channels: feature-map channels.
        dim: token width.
        num_regions: number of anatomical regions (29 Chest ImaGenome regions).
        output_size: RoIAlign bins per axis before averaging.
        sampling_ratio: RoIAlign samples per bin per axis.
    """

    def __init__(
        self, in_channels: int, dim: int, num_regions: int = 29, output_size: int = 4, sampling_ratio: int = 2
    ) -> None:
        super().__init__()
        self.output_size = output_size
        self.sampling_ratio = sampling_ratio
        self.proj = nn.Linear(in_channels, dim)
        self.type_embed = nn.Embedding(num_regions, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(
        self, features: torch.Tensor, boxes: torch.Tensor, region_mask: torch.Tensor, image_size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool region tokens.

        Args:
            features: ``[B, C, h, w]`` image feature map.
            boxes: ``[B, R, 4]`` xyxy boxes in pixels of the ``image_size`` square image.
            region_mask: ``[B, R]`` bool, region present.
            image_size: side of the input image in pixels.

        Returns:
            ``(tokens [B, R, dim], mask [B, R] bool)``; the mask also drops empty boxes.
        """
        mask = region_mask.bool() & (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])
        pooled = roi_mean_pool(
            features,
            boxes,
            output_size=self.output_size,
            spatial_scale=features.shape[-2] / float(image_size),
            sampling_ratio=self.sampling_ratio,
        )
        tokens = self.norm(self.proj(pooled) + self.type_embed.weight[: boxes.shape[1]])
        return tokens * mask.unsqueeze(-1).to(tokens.dtype), mask
