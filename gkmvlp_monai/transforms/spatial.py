"""Spatial transforms for chest radiographs: square resize-and-pad and a random resized crop.

All are built from MONAI spatial transforms, so the image affine records every step (boxes follow it,
see ``boxes.py``). Nothing here flips left-right: laterality is part of the knowledge we ground.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import (
    MapTransform,
    RandomizableTransform,
    Resize,
    SpatialCrop,
    SpatialPad,
    Transform,
)

__all__ = [
    "ResizeLongestPad",
    "ResizeLongestPadd",
    "ResizeLongestPadD",
    "ResizeLongestPadDict",
    "RandResizedCrop",
    "RandResizedCropd",
    "RandResizedCropD",
    "RandResizedCropDict",
]


class ResizeLongestPad(Transform):
    """Resize so the longest side is ``size`` (aspect kept), then pad symmetrically to ``size x size``.

    Args:
        size: output side length (e.g. 224 or 512).
        mode: interpolation for ``monai.transforms.Resize``; ``"area"`` (default) averages when shrinking.
        pad_value: value of the padding (0 = black).
    """

    def __init__(self, size: int, mode: str = "area", pad_value: float = 0.0) -> None:
        if int(size) < 1:
            raise ValueError(f"size must be positive, got {size}")
        self.size = int(size)
        self.resize = Resize(spatial_size=self.size, size_mode="longest", mode=mode)
        self.pad = SpatialPad(spatial_size=(self.size, self.size), method="symmetric", value=pad_value)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        """Resize then pad.

        Args:
            img: ``[C, W, H]`` image.

        Returns:
            ``[C, size, size]`` image.

        Raises:
            ValueError: ``img`` is not ``[C, W, H]``.
        """
        if img.ndim != 3:
            raise ValueError(f"expected a [C, W, H] image, got shape {tuple(img.shape)}")
        return self.pad(self.resize(img))


class ResizeLongestPadd(MapTransform):
    """Dictionary version of ``ResizeLongestPad``.

    Args:
        keys: image keys.
        size: output side length.
        mode: interpolation mode (one per key or one for all).
        pad_value: padding value.
        allow_missing_keys: skip absent keys.
    """

    def __init__(
        self,
        keys: KeysCollection,
        size: int,
        mode: str | Sequence[str] = "area",
        pad_value: float = 0.0,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        modes = [mode] * len(self.keys) if isinstance(mode, str) else list(mode)
        self.ops = {k: ResizeLongestPad(size, m, pad_value) for k, m in zip(self.keys, modes)}

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Apply to every key.

        Args:
            data: item with ``[C, W, H]`` images.

        Returns:
            A copy with square images.
        """
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.ops[key](d[key])
        return d


class RandResizedCrop(RandomizableTransform):
    """Crop a random region (area fraction ``scale``, aspect ``ratio``) and resize it to ``size x size``.

    Args:
        size: output side length.
        scale: range of the crop's area as a fraction of the image area.
        ratio: range of the crop's width/height ratio (sampled log-uniformly).
        prob: probability of cropping; otherwise the whole image is resized.
        mode: interpolation mode of the resize.
    """

    def __init__(
        self,
        size: int,
        scale: tuple[float, float] = (0.7, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        prob: float = 1.0,
        mode: str = "bilinear",
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got {scale}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < min <= max, got {ratio}")
        self.size, self.scale, self.ratio, self.mode = int(size), scale, ratio, mode
        self._box: tuple[int, int, int, int] | None = None

    def randomize(self, spatial_shape: Sequence[int]) -> None:
        """Draw the crop window for an image of ``spatial_shape`` ``(W, H)``."""
        super().randomize(None)
        w, h = int(spatial_shape[0]), int(spatial_shape[1])
        self._box = (0, 0, w, h)
        if not self._do_transform:
            return
        area = w * h
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * self.R.uniform(*self.scale)
            aspect = math.exp(self.R.uniform(*log_ratio))
            cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < cw <= w and 0 < ch <= h:
                x0, y0 = int(self.R.randint(0, w - cw + 1)), int(self.R.randint(0, h - ch + 1))
                self._box = (x0, y0, x0 + cw, y0 + ch)
                return
        # fall back to a centred crop with the closest allowed aspect
        aspect = min(max(w / h, self.ratio[0]), self.ratio[1])
        cw, ch = (w, round(w / aspect)) if w / h < aspect else (round(h * aspect), h)
        cw, ch = min(cw, w), min(ch, h)
        self._box = ((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch)

    def __call__(self, img: torch.Tensor, randomize: bool = True) -> torch.Tensor:
        """Crop and resize.

        Args:
            img: ``[C, W, H]`` image.
            randomize: draw a new window (False re-uses the last one, for paired keys).

        Returns:
            ``[C, size, size]`` image.
        """
        if randomize or self._box is None:
            self.randomize(img.shape[1:])
        x0, y0, x1, y1 = self._box
        cropped = SpatialCrop(roi_start=(x0, y0), roi_end=(x1, y1))(img)
        return Resize(spatial_size=(self.size, self.size), mode=self.mode)(cropped)


class RandResizedCropd(RandomizableTransform, MapTransform):
    """Dictionary version of ``RandResizedCrop``: the same window for all keys.

    Args:
        keys: image keys (same spatial shape).
        size: output side length.
        scale: crop area fraction range.
        ratio: crop aspect range.
        prob: probability of cropping.
        mode: interpolation mode.
        allow_missing_keys: skip absent keys.
    """

    def __init__(
        self,
        keys: KeysCollection,
        size: int,
        scale: tuple[float, float] = (0.7, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        prob: float = 1.0,
        mode: str = "bilinear",
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, 1.0)
        self.cropper = RandResizedCrop(size, scale, ratio, prob, mode)

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> RandResizedCropd:
        """Seed this transform and its array counterpart."""
        super().set_random_state(seed, state)
        self.cropper.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Crop every key with one random window.

        Args:
            data: item with ``[C, W, H]`` images.

        Returns:
            A copy with ``[C, size, size]`` images.
        """
        d = dict(data)
        first = True
        for key in self.key_iterator(d):
            d[key] = self.cropper(d[key], randomize=first)
            first = False
        return d


ResizeLongestPadD = ResizeLongestPadDict = ResizeLongestPadd
RandResizedCropD = RandResizedCropDict = RandResizedCropd
