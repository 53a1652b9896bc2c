"""Entity knowledge encoder: knowledge descriptions -> entity query embeddings via the text encoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from gkmvlp_monai.models.text import TextEncoder, tokenize_texts


class KnowledgeEncoder(nn.Module):
    """Embed the ``E`` entity knowledge descriptions with the (shared) text encoder.

    ``trainable=False`` computes the sentence embeddings once with the text encoder in eval mode and keeps
    them in a buffer (saved in the state dict, so export needs no text encoder); call :meth:`refresh` after
    loading new text-encoder weights. ``trainable=True`` re-encodes the descriptions every forward, so the
    entity queries and the text encoder learn together. A linear projection is always trained.

    Args:
        text_encoder: the text encoder (shared with the report branch).
        descriptions: one knowledge description per entity, in entity order.
        tokenizer: tokenizer matching ``text_encoder``.
        dim: output width.
        trainable: re-encode with gradients every step instead of caching.
        max_length: token length of a description.
    """

    def __init__(
        self,
        text_encoder: TextEncoder,
        descriptions: Sequence[str],
        tokenizer: Any,
        dim: int,
        trainable: bool = False,
        max_length: int = 64,
    ) -> None:
        super().__init__()
        if not descriptions:
            raise ValueError("KnowledgeEncoder needs at least one entity description")
        self.num_entities = len(descriptions)
        self.trainable = trainable
        self.text_encoder = text_encoder if trainable else None
        self._frozen_encoder = [text_encoder]  # kept out of the module tree when frozen
        enc = tokenize_texts(tokenizer, descriptions, max_length)
        self.register_buffer("desc_ids", enc["input_ids"], persistent=False)
        self.register_buffer("desc_mask", enc["attention_mask"], persistent=False)
        self.register_buffer("cached", torch.zeros(self.num_entities, text_encoder.hidden_size))
        self.proj = nn.Linear(text_encoder.hidden_size, dim)
        self.norm = nn.LayerNorm(dim)
        if not trainable:
            self.refresh()

    @torch.no_grad()
    def refresh(self) -> None:
        """Recompute the cached description embeddings with the current text-encoder weights."""
        enc = self._frozen_encoder[0]
        was_training = enc.training
        enc.eval()
        _, pooled = enc(self.desc_ids.to(self.cached.device), self.desc_mask.to(self.cached.device))
        enc.train(was_training)
        self.cached.copy_(pooled)

    def forward(self) -> torch.Tensor:
        """Return the entity knowledge embeddings ``[E, dim]``."""
        if self.trainable:
            _, emb = self.text_encoder(self.desc_ids, self.desc_mask)
        else:
            emb = self.cached
        return self.norm(self.proj(emb))
