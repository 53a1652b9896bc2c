"""Intensity transforms for [0, 1] chest radiographs: clipping and the pre-training augmentations."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import (
    MapTransform,
    RandAdjustContrastd,
    RandGaussianNoised,
    RandGaussianSmoothd,
    RandScaleIntensityd,
    Transform,
)

__all__ = [
    "ClipIntensity",
    "ClipIntensityd",
    "ClipIntensityD",
    "ClipIntensityDict",
    "cxr_intensity_augmentations",
]


class ClipIntensity(Transform):
    """Clip intensities into ``[low, high]`` (default [0, 1]); keeps MetaTensor metadata.

    Args:
        low: lower bound.
        high: upper bound.
    """

    def __init__(self, low: float = 0.0, high: float = 1.0) -> None:
        if high < low:
            raise ValueError(f"high ({high}) must not be below low ({low})")
        self.low, self.high = float(low), float(high)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        """Clip ``img``.

        Args:
            img: any tensor.

        Returns:
            The clipped tensor (same type).
        """
        return img.clamp(self.low, self.high)


class ClipIntensityd(MapTransform):
    """Dictionary version of ``ClipIntensity``.

    Args:
        keys: image keys.
        low: lower bound.
        high: upper bound.
        allow_missing_keys: skip absent keys.
    """

    def __init__(
        self, keys: KeysCollection, low: float = 0.0, high: float = 1.0, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.op = ClipIntensity(low, high)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Clip every key.

        Args:
            data: item.

        Returns:
            A copy with clipped images.
        """
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.op(d[key])
        return d


def cxr_intensity_augmentations(
    keys: KeysCollection = "image",
    prob: float = 0.5,
    gamma: tuple[float, float] = (0.7, 1.5),
    scale: float = 0.1,
    noise_std: float = 0.02,
    blur_sigma: tuple[float, float] = (0.25, 1.0),
) -> list[MapTransform]:
    """The pre-training intensity augmentations, ending with a clip to [0, 1].

    Args:
        keys: image keys.
        prob: probability of each augmentation.
        gamma: gamma range of ``RandAdjustContrastd`` (contrast).
        scale: ``RandScaleIntensityd`` factor range ``(-scale, scale)``.
        noise_std: maximum std of the Gaussian noise.
        blur_sigma: sigma range of the Gaussian blur.

    Returns:
        A list of MONAI dictionary transforms: gamma, scale, noise, blur, clip.
    """
    return [
        RandAdjustContrastd(keys, prob=prob, gamma=gamma),
        RandScaleIntensityd(keys, factors=scale, prob=prob),
        RandGaussianNoised(keys, prob=prob, mean=0.0, std=noise_std, sample_std=True),
        RandGaussianSmoothd(keys, sigma_x=blur_sigma, sigma_y=blur_sigma, prob=prob),
        ClipIntensityd(keys, 0.0, 1.0),
    ]


ClipIntensityD = ClipIntensityDict = ClipIntensityd
