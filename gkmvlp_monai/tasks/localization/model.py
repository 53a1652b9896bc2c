"""Localization networks on the GK-MVLP image encoder.

- :class:`FindingSegmenter` (fine-tuned variant): the pre-training image encoder (same module names, so
  ``load_pretrained_weights`` fills it from a GK-MVLP checkpoint) and a U-Net style decoder built from
  MONAI blocks (``UpSample`` deconvolution, ``UnetResBlock``, ``Convolution``) that upsamples the last
  feature map back to the input size, fusing the ResNet's intermediate feature maps as skips. One
  logit map per target finding.
- :class:`ZeroShotHeatmaps` (zero-shot variant): the GK module's patch attention of each target
  finding's entity, upsampled to the image and min-max normalised per map.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution, UnetResBlock, UpSample
from torch import nn

from gkmvlp_monai.models.config import record_config
from gkmvlp_monai.models.gkmvlp import GKMVLP, SIZES
from gkmvlp_monai.models.image import ImageEncoder

__all__ = ["FindingSegmenter", "build_finding_segmenter", "ZeroShotHeatmaps", "normalise_maps"]


def encoder_features(encoder: ImageEncoder, image: torch.Tensor) -> list[torch.Tensor]:
    """Feature maps of an :class:`ImageEncoder`, deepest first.

    ResNets give ``[layer4 (S/32), layer3 (S/16), layer2 (S/8), layer1 (S/4), stem (S/2)]``; ViTs give
    their single patch grid ``[S/16]``.
    """
    return encoder.feature_maps(image)


class _UpStage(nn.Module):
    """x2 deconvolution, optional skip (projected by a 1x1 convolution, concatenated), residual block."""

    def __init__(self, in_channels: int, out_channels: int, skip_channels: int, norm: str | tuple) -> None:
        super().__init__()
        self.up = UpSample(2, in_channels, out_channels, scale_factor=2, mode="deconv")
        self.skip = (
            Convolution(2, skip_channels, out_channels, kernel_size=1, norm=norm, act="LEAKYRELU")
            if skip_channels
            else None
        )
        width = out_channels * (2 if skip_channels else 1)
        self.block = UnetResBlock(2, width, out_channels, kernel_size=3, stride=1, norm_name=norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = self.up(x)
        if self.skip is not None and skip is not None:
            x = torch.cat([x, self.skip(skip)], dim=1)
        return self.block(x)


class FindingSegmenter(nn.Module):
    """Segmentation decoder on a GK-MVLP image encoder: ``image [B, 1, S, S] -> logits [B, K, S, S]``.

    Args:
        image_encoder: the encoder (attribute name ``image_encoder`` matches the GK-MVLP checkpoint keys).
        num_classes: target findings ``K`` (independent sigmoid channels: findings may overlap).
        image_size: square input size (fixes the number of up-sampling stages).
        decoder_channels: widths of the up-sampling stages, deepest first; the last is repeated when the
            encoder needs more stages.
        norm: MONAI norm name of the decoder blocks.
        freeze_encoder: keep the encoder weights fixed (linear-probe style fine-tuning).
    """

    def __init__(
        self,
        image_encoder: ImageEncoder,
        num_classes: int,
        image_size: int = 224,
        decoder_channels: Sequence[int] = (64, 32, 16, 16, 16),
        norm: str | tuple = "instance",
        freeze_encoder: bool = False,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.image_encoder = image_encoder
        self.num_classes = num_classes
        self.image_size = image_size
        if freeze_encoder:
            for p in self.image_encoder.parameters():
                p.requires_grad_(False)
        with torch.no_grad():
            was = image_encoder.training
            image_encoder.eval()
            feats = encoder_features(image_encoder, torch.zeros(1, 1, image_size, image_size))
            image_encoder.train(was)
        ratio = image_size / feats[0].shape[-1]
        stages = int(round(math.log2(ratio)))
        if 2**stages * feats[0].shape[-1] != image_size:
            raise ValueError(
                f"image_size {image_size} is not a power-of-two multiple of the encoder's "
                f"{feats[0].shape[-1]}-wide feature map"
            )
        widths = list(decoder_channels) + [decoder_channels[-1]] * max(0, stages - len(decoder_channels))
        in_ch = feats[0].shape[1]
        skips = [f.shape[1] for f in feats[1:]]
        self.stages = nn.ModuleList()
        for i in range(stages):
            skip_ch = skips[i] if i < len(skips) else 0
            self.stages.append(_UpStage(in_ch, widths[i], skip_ch, norm))
            in_ch = widths[i]
        self.head = Convolution(2, in_ch, num_classes, kernel_size=1, conv_only=True)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``[B, 1, S, S]`` -> ``[B, K, S, S]`` logits."""
        feats = self.image_encoder.feature_maps(image)  # a method call, so the network scripts
        x = feats[0]
        for i, stage in enumerate(self.stages):
            skip = feats[i + 1] if i + 1 < len(feats) else None
            x = stage(x, skip)
        return self.head(x)


def build_finding_segmenter(
    num_classes: int,
    size: str = "base",
    image_size: int = 224,
    image_arch: str | None = None,
    **kwargs: Any,
) -> FindingSegmenter:
    """A :class:`FindingSegmenter` whose encoder matches ``build_gkmvlp(size, image_arch=...)``.

    Args:
        num_classes: target findings.
        size: GK-MVLP size (``tiny``/``small``/``base``), which fixes the image encoder.
        image_size: square input size.
        image_arch: override the encoder (as in ``build_gkmvlp``).
        **kwargs: other :class:`FindingSegmenter` arguments.
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; known: {sorted(SIZES)}")
    arch = image_arch or SIZES[size]["image_arch"]
    encoder = ImageEncoder(arch, in_channels=1, img_size=image_size)
    segmenter = FindingSegmenter(encoder, num_classes, image_size=image_size, **kwargs)
    config = {"network": "FindingSegmenter", "size": size, "image_arch": arch, "image_size": image_size}
    return record_config(segmenter, {**config, "num_classes": num_classes})  # gkmvlp_monai.models.config


def normalise_maps(maps: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Min-max normalise each ``[..., W, H]`` map to [0, 1] (a constant map becomes all zeros)."""
    flat = maps.flatten(-2)
    lo = flat.amin(-1, keepdim=True)
    hi = flat.amax(-1, keepdim=True)
    return ((flat - lo) / (hi - lo).clamp_min(eps)).reshape(maps.shape)


class ZeroShotHeatmaps(nn.Module):
    """Zero-shot grounding heat maps from a pre-trained GK-MVLP network.

    Args:
        model: the GK-MVLP network.
        entity_indices: entity index of each target finding (``K`` entries).
        normalise: min-max normalise each map (so one threshold works across images).
    """

    def __init__(self, model: GKMVLP, entity_indices: Sequence[int], normalise: bool = True) -> None:
        super().__init__()
        if not entity_indices:
            raise ValueError("ZeroShotHeatmaps needs at least one entity index")
        bad = [i for i in entity_indices if not 0 <= int(i) < model.num_entities]
        if bad:
            raise ValueError(f"entity indices {bad} outside [0, {model.num_entities})")
        self.model = model
        self.register_buffer(
            "entity_indices", torch.as_tensor(list(entity_indices), dtype=torch.long), persistent=False
        )
        self.normalise = normalise

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Heat maps ``[B, K, S, S]`` for ``batch`` with ``image``, ``region_boxes`` and ``region_mask``."""
        image = batch["image"]
        _, attn = self.model.entity_scores(image, batch["region_boxes"], batch["region_mask"])
        maps = F.interpolate(
            attn[:, self.entity_indices], size=image.shape[-2:], mode="bilinear", align_corners=False
        )
        return normalise_maps(maps) if self.normalise else maps
