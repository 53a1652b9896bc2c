"""Entity classification (ECLS): absent / present / uncertain per entity, unmentioned entities ignored."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class ECLSLoss(nn.Module):
    """Cross-entropy over the three entity states; ``entity_state == -1`` (unmentioned) is ignored.

    Class indices equal the state codes of the data contract: 0 absent, 1 present, 2 uncertain.

    Args:
        class_weights: optional weights for (absent, present, uncertain).
    """

    def __init__(self, class_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        w = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
        if w is not None and w.shape != (3,):
            raise ValueError(f"class_weights needs 3 values, got {tuple(w.shape)}")
        self.register_buffer("class_weights", w, persistent=False)

    def forward(self, logits: torch.Tensor, entity_state: torch.Tensor) -> torch.Tensor:
        """Args:
            logits: ``[B, E, 3]``.
            entity_state: ``[B, E]`` int64 states (-1 unmentioned).

        Returns:
            scalar loss; zero (keeping the graph) when no entity is mentioned.
        """
        target = entity_state.long().masked_fill(entity_state < 0, -100)
        if not (target >= 0).any():
            return logits.sum() * 0.0
        return F.cross_entropy(
            logits.reshape(-1, 3), target.reshape(-1), weight=self.class_weights, ignore_index=-100
        )
