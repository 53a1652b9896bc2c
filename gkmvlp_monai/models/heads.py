"""Heads of the GK-MVLP network that hold objective parameters or state (the losses hold none)."""

from __future__ import annotations

import math

import torch
from torch import nn

from gkmvlp_monai.models.losses.itc import same_report_matrix


class ITCHead(nn.Module):
    """Scaled image-text similarities for ITC: a learnable temperature and an optional feature queue.

    Every in-batch pair whose reports are identical (same key) is a positive (chest X-ray data sets repeat
    "normal" reports). With ``queue_size > 0`` the normalised embeddings of recent batches (and their
    report keys) are kept as extra negatives, MoCo/BLIP style but without momentum encoders; the queue
    advances in training mode only. The loss on the logits is the parameter-free
    :class:`~gkmvlp_monai.models.losses.itc.ITCLoss`.

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
        self, image_features: torch.Tensor, text_features: torch.Tensor, keys: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Similarity logits of a batch against the batch and the queue.

        Args:
            image_features: ``[B, d]`` L2-normalised image embeddings.
            text_features: ``[B, d]`` L2-normalised report embeddings.
            keys: optional ``[B]`` int64 report keys (equal keys = positives); default: only the diagonal.

        Returns:
            dict: ``logits_i2t``/``logits_t2i`` ``[B, B + Q]`` scaled similarities of each image to every
            text (batch, then queue) and of each text to every image; ``positives`` ``[B, B + Q]`` bool;
            ``sim_i2t`` ``[B, B]`` the in-batch image-to-text logits (detached) for ITM mining; ``same``
            ``[B, B]`` bool in-batch positives.
        """
        img, txt = image_features, text_features
        b = img.shape[0]
        keys_given = keys is not None
        if keys is None:
            keys = torch.full((b,), -2, dtype=torch.long, device=img.device)
            same = torch.eye(b, dtype=torch.bool, device=img.device)
        else:
            same = same_report_matrix(keys, keys)
        all_txt, all_img, positives = txt, img, same
        if self.queue_size > 0:
            n = int(self.queue_len)
            all_txt = torch.cat((txt, self.text_queue[:n]), 0)
            all_img = torch.cat((img, self.image_queue[:n]), 0)
            queued = same_report_matrix(keys, self.key_queue[:n]) & keys_given
            positives = torch.cat((same, queued), 1)
        scale = 1.0 / self.temperature
        logits_i2t = img @ all_txt.t() * scale
        logits_t2i = txt @ all_img.t() * scale
        if self.queue_size > 0 and self.training:
            self._enqueue(img, txt, keys)
        return {
            "logits_i2t": logits_i2t,
            "logits_t2i": logits_t2i,
            "positives": positives,
            "sim_i2t": logits_i2t[:, :b].detach(),
            "same": same,
        }
