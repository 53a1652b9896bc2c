"""Causal language-modelling (report generation) loss on shifted tokens with label smoothing."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LMLoss(nn.Module):
    """Cross-entropy of next-token logits against the ids shifted by one; padding ignored.

    Args:
        label_smoothing: label smoothing of the cross-entropy.
    """

    def __init__(self, label_smoothing: float = 0.1) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(
        self, logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Args:
            logits: ``[B, L - 1, V]`` logits computed from ``input_ids[:, :-1]``.
            input_ids: ``[B, L]`` full token ids (BOS ... EOS PAD ...).
            attention_mask: ``[B, L]`` 1 for real tokens.

        Returns:
            scalar loss (mean over predicted real tokens).
        """
        target = self.targets(input_ids, attention_mask)
        return self.from_selected(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))

    @staticmethod
    def targets(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``[B, L - 1]`` next-token targets: ``input_ids[:, 1:]`` with padding set to -100 (ignored)."""
        return input_ids[:, 1:].masked_fill(~attention_mask[:, 1:].bool(), -100)

    def from_selected(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss from flat ``[N, V]`` logits and ``[N]`` targets (-100 ignored).

        Equals :meth:`forward` when only the positions with a real target are passed (what the network
        does to skip the vocabulary projection at padding positions).
        """
        return F.cross_entropy(logits, target, ignore_index=-100, label_smoothing=self.label_smoothing)
