"""What report generation adds to the network: the export wrapper that decodes a report from an image."""

from __future__ import annotations

import torch
from torch import nn

from gkmvlp_monai.core.boxes import default_layout, fixed_region_inputs


# ------------------------------------------------------------------------------------------ export
class GKMVLPReportGenerator(nn.Module):
    """Image-only report generator for ``verify_net_in_out`` and traced ``ckpt_export``.

    ``image [B, 1, S, S] -> token ids [B, max_length]`` by greedy decoding over a fixed number of steps
    (tokens after EOS are ``pad_id``), so ``torch.jit.trace`` records the whole loop; region boxes are the
    default layout. Decode the ids with the network's tokenizer (``skip_special_tokens=True``). The state
    dict keys are those of the wrapped GK-MVLP network (no prefix), so ``models/model.pt`` loads directly.

    Args:
        model: a GK-MVLP network with a report decoder.
        image_size: side the default boxes are made for (inputs of another size get scaled boxes).
        max_length: generated tokens, at most the decoder's position table minus BOS (the output's fixed
            second dimension).
        repetition_penalty: CTRL-style repetition penalty (1.0 off).

    Raises:
        ValueError: no decoder, or ``max_length`` out of range.
    """

    def __init__(
        self, model: nn.Module, image_size: int, max_length: int = 32, repetition_penalty: float = 1.0
    ) -> None:
        super().__init__()
        if getattr(model, "decoder", None) is None:
            raise ValueError("GKMVLPReportGenerator needs a network with a report decoder (weight_lm > 0)")
        from gkmvlp_monai.models.gkmvlp import share_state

        share_state(self, model)  # the network's keys and checkpoint handling (old key names included)
        object.__setattr__(self, "_gkmvlp", model)  # not a sub-module: keys stay un-prefixed
        self.register_buffer("region_boxes", default_layout(image_size), False)
        self.image_size = image_size
        if not 1 <= max_length <= model.decoder.max_length - 1:
            raise ValueError(
                f"max_length {max_length} outside [1, {model.decoder.max_length - 1}] (the decoder's position "
                "table minus BOS; set export_max_length and the metadata's pred num_channels to match)"
            )
        self.max_length = max_length
        self.repetition_penalty = repetition_penalty

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``[B, 1, S, S]`` image -> ``[B, max_length]`` int64 token ids (BOS excluded)."""
        from gkmvlp_monai.models.decoder import apply_repetition_penalty

        model, dec = self._gkmvlp, self._gkmvlp.decoder
        b = image.shape[0]
        boxes, mask = fixed_region_inputs(image, self.region_boxes, self.image_size)
        memory = model.visual_features(image, boxes, mask)["memory"]
        seq = torch.full((b, 1), dec.bos_id, dtype=torch.long, device=image.device)
        done = torch.zeros(b, dtype=torch.bool, device=image.device)
        pad = torch.full((b,), dec.pad_id, dtype=torch.long, device=image.device)
        for _ in range(self.max_length):
            logits = dec.project(dec.hidden(seq, memory)[:, -1])
            logits = apply_repetition_penalty(logits, seq, self.repetition_penalty)
            nxt = torch.where(done, pad, logits.argmax(-1))
            seq = torch.cat((seq, nxt[:, None]), 1)
            done = done | (nxt == dec.eos_id)
        return seq[:, 1:]
