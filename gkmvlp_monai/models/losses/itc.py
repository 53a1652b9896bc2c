"""Image-text contrastive (ITC) loss on scaled similarity logits, and the report keys that mark positives."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def same_report_matrix(keys_a: torch.Tensor, keys_b: torch.Tensor) -> torch.Tensor:
    """``[Na, Nb]`` bool: pairs whose report keys are equal (identical reports are all positives)."""
    return keys_a.unsqueeze(1) == keys_b.unsqueeze(0)


def report_keys(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Cheap int64 key per tokenised report (a polynomial hash of the unpadded ids); equal reports collide."""
    ids = (input_ids.long() * attention_mask.long()) % 1_000_003
    base = torch.arange(1, ids.shape[1] + 1, device=ids.device, dtype=torch.long)
    return ((ids * ((base * 2_654_435_761) % 2_147_483_647)) % 9_223_372_036_854).sum(-1)


class ITCLoss(nn.Module):
    """Symmetric InfoNCE with soft targets on scaled similarity logits; holds no parameters.

    The learnable temperature and the queue of past embeddings that produce the logits belong to the
    network (:class:`~gkmvlp_monai.models.heads.ITCHead`). Each row's target spreads evenly over its
    positives (every pair whose reports are identical counts as one).
    """

    def forward(
        self, logits_i2t: torch.Tensor, logits_t2i: torch.Tensor, positives: torch.Tensor
    ) -> torch.Tensor:
        """Compute the loss.

        Args:
            logits_i2t: ``[B, N]`` scaled similarities of each image to the candidate texts.
            logits_t2i: ``[B, N]`` scaled similarities of each text to the candidate images.
            positives: ``[B, N]`` bool, the matching candidates of each row (at least one per row).

        Returns:
            scalar loss, the mean of both directions.
        """
        target = positives.float() / positives.float().sum(1, keepdim=True)
        loss_i2t = -(F.log_softmax(logits_i2t, dim=1) * target).sum(1).mean()
        loss_t2i = -(F.log_softmax(logits_t2i, dim=1) * target).sum(1).mean()
        return (loss_i2t + loss_t2i) / 2
