"""Image-grounded text encoder for ITM: text tokens self-attend and cross-attend to visual memory."""

from __future__ import annotations

import torch
from torch import nn


class CrossModalEncoder(nn.Module):
    """Small pre-norm transformer over (shared, already encoded) text tokens with cross-attention to the
    multimodal memory; the first ([CLS]) output is the pair representation.

    Args:
        text_dim: width of the text-encoder tokens.
        dim: fusion width (= memory width).
        num_layers: layers.
        num_heads: attention heads.
        dropout: dropout.
    """

    def __init__(
        self, text_dim: int, dim: int, num_layers: int = 2, num_heads: int = 4, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.in_proj = nn.Linear(text_dim, dim)
        self.layers = nn.ModuleList(
            nn.TransformerDecoderLayer(
                dim,
                num_heads,
                dim_feedforward=4 * dim,
                dropout=dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(
        self,
        text_tokens: torch.Tensor,
        text_mask: torch.Tensor,
        memory: torch.Tensor,
        memory_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Args:
            text_tokens: ``[N, L, text_dim]``.
            text_mask: ``[N, L]`` 1/True for real tokens.
            memory: ``[N, M, dim]`` visual (+ GK) tokens.
            memory_mask: optional ``[N, M]`` 1/True for valid memory tokens.

        Returns:
            ``[N, dim]`` fused [CLS] representation.
        """
        x = self.in_proj(text_tokens)
        pad = ~text_mask.bool()
        mem_pad = None if memory_mask is None else ~memory_mask.bool()
        for layer in self.layers:
            x = layer(x, memory, tgt_key_padding_mask=pad, memory_key_padding_mask=mem_pad)
        return self.norm(x[:, 0])
