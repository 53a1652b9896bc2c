"""Region and lesion boxes that follow the image through every spatial transform.

Boxes arrive in the data contract's form (``[x1, y1, x2, y2]`` in pixels of the original picture,
continuous coordinates: pixel ``i`` covers ``[i, i + 1)``, ``x`` along array dim 1 of ``[C, W, H]``).

How they follow the image: every MONAI spatial transform (resize, pad, crop, affine, ...) updates the
image ``MetaTensor``'s affine (pixel index -> world), and the loaders store the affine at load time as
``meta["original_affine"]``. ``MapBoxesToImaged`` maps the four corners of each box from the original
pixel grid to world coordinates (original affine) and back to the current pixel grid (inverse of the
current affine), takes the min/max of the mapped corners, clips to the image, and masks boxes that
became (nearly) empty. It is exact for resize/pad/crop and gives the enclosing box for rotations.
Pixel-index coordinates (MONAI's affine maps pixel *centres*) and continuous box coordinates differ by
half a pixel; the conversion handles it.

So boxes need no per-transform handling: ``PrepareBoxesd`` (any time) turns them into arrays,
``MapBoxesToImaged`` (after the last spatial transform) moves them into the output image's pixels.
The geometry itself (:func:`~gkmvlp_monai.core.boxes.map_boxes`, box checks, dict <-> array) is in
:mod:`gkmvlp_monai.core.boxes`; this module holds only the dictionary transforms.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import MapTransform

from gkmvlp_monai.core.boxes import check_box, map_boxes, region_boxes_to_array
from gkmvlp_monai.core.vocab import region_names

__all__ = [
    "PrepareBoxesd",
    "PrepareBoxesD",
    "PrepareBoxesDict",
    "MapBoxesToImaged",
    "MapBoxesToImageD",
    "MapBoxesToImageDict",
]


class PrepareBoxesd(MapTransform):
    """Convert the datalist's box fields into arrays (boxes stay in original-image pixels).

    ``region_boxes`` ({name: box}) becomes float32 ``[R, 4]`` in vocabulary order plus
    ``region_mask`` bool ``[R]``; ``lesion_boxes`` (list of boxes) becomes float32 ``[N, 4]`` plus
    ``lesion_mask`` bool ``[N]``. Missing keys give all-absent regions / zero lesions.

    Args:
        region_key: key of the region boxes.
        lesion_key: key of the lesion boxes.
        region_mask_key: key written for the region mask.
        lesion_mask_key: key written for the lesion mask.
        names: region vocabulary (defaults to ``region_names()``).
    """

    def __init__(
        self,
        region_key: str = "region_boxes",
        lesion_key: str = "lesion_boxes",
        region_mask_key: str = "region_mask",
        lesion_mask_key: str = "lesion_mask",
        names: Sequence[str] | None = None,
    ) -> None:
        super().__init__([region_key, lesion_key], allow_missing_keys=True)
        self.region_key, self.lesion_key = region_key, lesion_key
        self.region_mask_key, self.lesion_mask_key = region_mask_key, lesion_mask_key
        self.names = list(names) if names is not None else region_names()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Convert the box fields.

        Args:
            data: a datalist item.

        Returns:
            A copy with array boxes and masks.

        Raises:
            ValueError: unknown region or malformed box (message names the item's image).
        """
        d = dict(data)
        where = d.get("image") if isinstance(d.get("image"), str) else d.get("image_id", "item")
        try:
            regions = d.get(self.region_key)
            if isinstance(regions, Mapping) or regions is None:
                d[self.region_key], d[self.region_mask_key] = region_boxes_to_array(regions, self.names)
            lesions = d.get(self.lesion_key)
            if lesions is None or not isinstance(lesions, np.ndarray | torch.Tensor) or lesions.ndim != 2:
                lesion_list = [] if lesions is None else list(lesions)
                arr = (
                    np.stack([check_box(b, f"lesion box {i}") for i, b in enumerate(lesion_list)])
                    if lesion_list
                    else np.zeros((0, 4))
                )
                d[self.lesion_key] = arr.astype(np.float32)
                d[self.lesion_mask_key] = np.ones(len(arr), dtype=bool)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from err
        return d


class MapBoxesToImaged(MapTransform):
    """Move boxes from original-image pixels to the current image's pixels (see module docstring).

    Args:
        keys: box keys (``[N, 4]`` arrays in original pixels), e.g. ``("region_boxes", "lesion_boxes")``.
        image_key: the transformed image (a ``MetaTensor`` with ``original_affine`` in its meta).
        mask_keys: one mask key per box key (``None`` entries: no mask); masks are and-ed with "box kept".
        min_size: boxes smaller than this (pixels) after clipping are marked absent.
        allow_missing_keys: skip absent box keys.
    """

    def __init__(
        self,
        keys: Sequence[str] = ("region_boxes", "lesion_boxes"),
        image_key: str = "image",
        mask_keys: Sequence[str | None] = ("region_mask", "lesion_mask"),
        min_size: float = 1.0,
        allow_missing_keys: bool = True,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(mask_keys) != len(self.keys):
            raise ValueError(f"need one mask key per box key: {self.keys} vs {mask_keys}")
        self.image_key, self.mask_keys, self.min_size = image_key, dict(zip(self.keys, mask_keys)), min_size

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Map every box key.

        Args:
            data: item with a transformed image and boxes in original pixels.

        Returns:
            A copy with float32 tensor boxes in the image's pixels and bool tensor masks.

        Raises:
            ValueError: the image is not a 2-D MetaTensor with an ``original_affine``.
        """
        d = dict(data)
        img = d[self.image_key]
        if not isinstance(img, MetaTensor) or "original_affine" not in img.meta:
            raise ValueError(
                f"{self.image_key!r} must be a MetaTensor loaded by LoadCXRImaged (needs original_affine)"
            )
        name = img.meta.get("filename_or_obj", self.image_key)
        from_affine = np.asarray(img.meta["original_affine"], dtype=np.float64)
        to_affine = np.asarray(img.affine, dtype=np.float64)
        if to_affine.shape != (3, 3) or img.ndim != 3:
            raise ValueError(
                f"{name}: box mapping needs a [C, W, H] image with a 3x3 affine, got {tuple(img.shape)}, {to_affine.shape}"
            )
        for key in self.key_iterator(d):
            boxes = d[key]
            boxes = boxes.detach().cpu().numpy() if isinstance(boxes, torch.Tensor) else np.asarray(boxes)
            mapped, kept = map_boxes(
                boxes.reshape(-1, 4), from_affine, to_affine, img.shape[1:], self.min_size
            )
            d[key] = torch.as_tensor(mapped)
            mask_key = self.mask_keys[key]
            if mask_key is not None:
                mask = np.asarray(d.get(mask_key, np.ones(len(kept), dtype=bool)), dtype=bool).reshape(-1)
                d[mask_key] = torch.as_tensor(mask & kept)
                d[key][~d[mask_key]] = 0
        return d


PrepareBoxesD = PrepareBoxesDict = PrepareBoxesd
MapBoxesToImageD = MapBoxesToImageDict = MapBoxesToImaged
