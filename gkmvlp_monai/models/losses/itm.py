"""Image-text matching (ITM) with in-batch hard negatives mined from ITC similarities."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def mine_hard_negatives(
    sim_i2t: torch.Tensor,
    same: torch.Tensor,
    sample: bool = False,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Pick, for every image, a non-matching in-batch report and, for every report, a non-matching image.

    ``sample=False`` takes the hardest (most ITC-similar) non-matching one; ``sample=True`` draws it with
    probability ``softmax(sim)`` over the non-matching ones (BLIP).

    Args:
        sim_i2t: ``[B, B]`` image-to-text similarities (rows images, columns texts).
        same: ``[B, B]`` bool, pairs that match (identical reports included).
        sample: sample instead of taking the arg-max.
        generator: RNG for sampling.

    Returns:
        dict with ``neg_text`` ``[B]`` (text index per image), ``neg_image`` ``[B]`` (image index per text)
        and ``valid_text``/``valid_image`` ``[B]`` bool (a non-matching candidate exists).
    """
    sim = sim_i2t.detach().float()

    def pick(s: torch.Tensor, forbid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = s.masked_fill(forbid, float("-inf"))
        valid = ~forbid.all(1)
        s = torch.where(valid.unsqueeze(1), s, torch.zeros_like(s))
        if sample:
            idx = torch.multinomial(F.softmax(s, dim=1), 1, generator=generator).squeeze(1)
        else:
            idx = s.argmax(1)
        return idx, valid

    neg_text, valid_text = pick(sim, same)
    neg_image, valid_image = pick(sim.t(), same.t())
    return {
        "neg_text": neg_text,
        "neg_image": neg_image,
        "valid_text": valid_text,
        "valid_image": valid_image,
    }


class ITMLoss(nn.Module):
    """ITM head and loss: one fused pass of the cross-modal encoder over positives and mined negatives.

    The batch for the fused pass is ``[B positives; negatives (image i, hard text); negatives (hard image,
    text j)]``, built by indexing the already-encoded text tokens and the visual memory (no text re-encoding).

    Args:
        dim: fused representation width.
        sample_negatives: sample negatives by similarity (BLIP) instead of taking the hardest.
    """

    def __init__(self, dim: int, sample_negatives: bool = False) -> None:
        super().__init__()
        self.classifier = nn.Linear(dim, 2)
        self.sample_negatives = sample_negatives

    def forward(
        self,
        fusion: Callable[..., torch.Tensor],
        text_tokens: torch.Tensor,
        text_mask: torch.Tensor,
        memory: torch.Tensor,
        sim_i2t: torch.Tensor,
        same: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Compute the loss.

        Args:
            fusion: image-grounded text encoder ``(text_tokens, text_mask, memory) -> [N, dim]``.
            text_tokens: ``[B, L, H]`` text-encoder tokens.
            text_mask: ``[B, L]`` attention mask.
            memory: ``[B, M, dim]`` visual memory per image.
            sim_i2t: ``[B, B]`` ITC similarities.
            same: ``[B, B]`` bool positives.

        Returns:
            dict with ``loss``, ``logits`` ``[N, 2]``, ``labels`` ``[N]`` and the mining result.
        """
        b = text_tokens.shape[0]
        mined = mine_hard_negatives(sim_i2t, same, sample=self.sample_negatives and self.training)
        ar = torch.arange(b, device=text_tokens.device)
        img_idx = torch.cat((ar, ar[mined["valid_text"]], mined["neg_image"][mined["valid_image"]]))
        txt_idx = torch.cat((ar, mined["neg_text"][mined["valid_text"]], ar[mined["valid_image"]]))
        labels = torch.zeros(img_idx.shape[0], dtype=torch.long, device=text_tokens.device)
        labels[:b] = 1
        fused = fusion(text_tokens[txt_idx], text_mask[txt_idx], memory[img_idx])
        logits = self.classifier(fused)
        return {"loss": F.cross_entropy(logits, labels), "logits": logits, "labels": labels, **mined}
