"""Image-text matching (ITM) with in-batch hard negatives mined from ITC similarities."""

from __future__ import annotations

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


def itm_pairs(
    sim_i2t: torch.Tensor,
    same: torch.Tensor,
    sample: bool = False,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """The image/text pairs of one ITM pass: ``[B positives; (image i, hard text); (hard image, text j)]``.

    Negatives come from :func:`mine_hard_negatives`; a row without a non-matching candidate contributes
    no negative. The network indexes its already-encoded text tokens and visual memory with the result.

    Args:
        sim_i2t: ``[B, B]`` ITC similarities.
        same: ``[B, B]`` bool positives.
        sample: sample negatives by similarity (BLIP) instead of taking the hardest.
        generator: RNG for sampling.

    Returns:
        dict with ``image_index`` and ``text_index`` ``[N]`` (rows of the fused batch), ``labels`` ``[N]``
        (1 match, 0 not) and the mining result.
    """
    b = sim_i2t.shape[0]
    mined = mine_hard_negatives(sim_i2t, same, sample=sample, generator=generator)
    ar = torch.arange(b, device=sim_i2t.device)
    img_idx = torch.cat((ar, ar[mined["valid_text"]], mined["neg_image"][mined["valid_image"]]))
    txt_idx = torch.cat((ar, mined["neg_text"][mined["valid_text"]], ar[mined["valid_image"]]))
    labels = torch.zeros(img_idx.shape[0], dtype=torch.long, device=sim_i2t.device)
    labels[:b] = 1
    return {"image_index": img_idx, "text_index": txt_idx, "labels": labels, **mined}


class ITMLoss(nn.Module):
    """Cross-entropy of the ITM head's match / no-match logits; holds no parameters.

    The head (a linear layer on the fused representation) belongs to the network; the pairs come from
    :func:`itm_pairs`.
    """

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Args:
            logits: ``[N, 2]`` ITM head logits (class 1: the image matches the text).
            labels: ``[N]`` int64 targets.

        Returns:
            scalar loss.
        """
        return F.cross_entropy(logits, labels)
