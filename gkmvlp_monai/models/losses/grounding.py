"""Grounding loss: a present entity's patch attention should fall inside its grounded region boxes."""

from __future__ import annotations

import torch
from torch import nn

from gkmvlp_monai.core.boxes import boxes_to_patch_mask


class GroundingLoss(nn.Module):
    """``-log`` of the attention mass inside the union of the entity's grounded region boxes.

    Only entities that are present (state 1) with at least one valid grounded region covering at least one
    feature-map cell centre count.

    Args:
        eps: floor inside the logarithm.
    """

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps

    def forward(
        self,
        patch_attn: torch.Tensor,
        entity_state: torch.Tensor,
        entity_regions: torch.Tensor,
        region_boxes: torch.Tensor,
        region_mask: torch.Tensor,
        image_size: int,
    ) -> torch.Tensor:
        """Args:
            patch_attn: ``[B, E, h, w]`` attention over patches (sums to 1 per entity).
            entity_state: ``[B, E]`` states.
            entity_regions: ``[B, E, R]`` bool grounded regions.
            region_boxes: ``[B, R, 4]`` boxes in pixels.
            region_mask: ``[B, R]`` valid regions.
            image_size: image side in pixels.

        Returns:
            scalar loss (zero keeping the graph when nothing is grounded).
        """
        h, w = patch_attn.shape[-2:]
        cells = boxes_to_patch_mask(region_boxes, (h, w), image_size) & region_mask.bool()[..., None, None]
        regions = entity_regions.bool() & region_mask.bool().unsqueeze(1)  # [B, E, R]
        inside = torch.einsum("ber,brp->bep", regions.float(), cells.float().flatten(2)) > 0  # [B, E, h*w]
        valid = (entity_state == 1) & inside.any(-1)
        if not valid.any():
            return patch_attn.sum() * 0.0
        mass = (patch_attn.flatten(2) * inside.to(patch_attn.dtype)).sum(-1)
        return -(mass[valid] + self.eps).log().mean()
