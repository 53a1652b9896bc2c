"""Image-text contrastive (ITC) loss with a learnable temperature and an optional feature queue."""

from __future__ import annotations

import math

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
    """Symmetric InfoNCE between L2-normalised image and report embeddings.

    Targets are soft: every in-batch pair whose reports are identical (same key) counts as a positive
    (chest X-ray data sets repeat "normal" reports). With ``queue_size > 0`` detached embeddings of recent
    batches (and their keys) are kept as extra negatives, MoCo/BLIP style but without momentum encoders.

    Args:
        embed_dim: embedding width (for the queue).
        temperature: initial temperature.
        learn_temperature: learn the temperature (clamped to ``[0.001, 0.5]``).
        queue_size: number of queued negatives (0: off).
    """

    def __init__(
        self, embed_dim: int, temperature: float = 0.07, learn_temperature: bool = True, queue_size: int = 0
    ) -> None:
        super().__init__()
        self.log_temp = nn.Parameter(torch.tensor(math.log(temperature)), requires_grad=learn_temperature)
        self.queue_size = queue_size
        if queue_size > 0:
            self.register_buffer("image_queue", torch.zeros(queue_size, embed_dim))
            self.register_buffer("text_queue", torch.zeros(queue_size, embed_dim))
            self.register_buffer("key_queue", torch.full((queue_size,), -1, dtype=torch.long))
            self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
            self.register_buffer("queue_len", torch.zeros((), dtype=torch.long))

    @property
    def temperature(self) -> torch.Tensor:
        """Current temperature."""
        return self.log_temp.exp().clamp(0.001, 0.5)

    @torch.no_grad()
    def _enqueue(self, img: torch.Tensor, txt: torch.Tensor, keys: torch.Tensor) -> None:
        n = min(img.shape[0], self.queue_size)
        idx = (self.queue_ptr + torch.arange(n, device=img.device)) % self.queue_size
        self.image_queue[idx] = img[:n].detach()
        self.text_queue[idx] = txt[:n].detach()
        self.key_queue[idx] = keys[:n]
        self.queue_ptr.copy_((self.queue_ptr + n) % self.queue_size)
        self.queue_len.copy_(torch.clamp(self.queue_len + n, max=self.queue_size))

    def forward(
        self, image_embed: torch.Tensor, text_embed: torch.Tensor, keys: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Compute the loss.

        Args:
            image_embed: ``[B, d]`` projected image embeddings.
            text_embed: ``[B, d]`` projected report embeddings.
            keys: optional ``[B]`` int64 report keys (equal keys = positives); default: only the diagonal.

        Returns:
            dict: ``loss``; ``sim_i2t`` ``[B, B]`` in-batch scaled similarities (detached) for ITM mining;
            ``same`` ``[B, B]`` bool positives.
        """
        b = image_embed.shape[0]
        img = F.normalize(image_embed, dim=-1)
        txt = F.normalize(text_embed, dim=-1)
        keys_given = keys is not None
        if keys is None:
            keys = torch.full((b,), -2, dtype=torch.long, device=img.device)
            same = torch.eye(b, dtype=torch.bool, device=img.device)
        else:
            same = same_report_matrix(keys, keys)
        all_txt, all_img, same_ext = txt, img, same
        if self.queue_size > 0:
            n = int(self.queue_len)
            all_txt = torch.cat((txt, self.text_queue[:n]), 0)
            all_img = torch.cat((img, self.image_queue[:n]), 0)
            queued = same_report_matrix(keys, self.key_queue[:n]) & keys_given
            same_ext = torch.cat((same, queued), 1)
        scale = 1.0 / self.temperature
        logits_i2t = img @ all_txt.t() * scale
        logits_t2i = txt @ all_img.t() * scale
        target = same_ext.float() / same_ext.float().sum(1, keepdim=True)
        loss_i2t = -(F.log_softmax(logits_i2t, dim=1) * target).sum(1).mean()
        loss_t2i = -(F.log_softmax(logits_t2i, dim=1) * target).sum(1).mean()
        if self.queue_size > 0 and self.training:
            self._enqueue(img, txt, keys)
        return {"loss": (loss_i2t + loss_t2i) / 2, "sim_i2t": logits_i2t[:, :b].detach(), "same": same}
