"""Transform pipelines the bundles build from their JSON configs.

Every pipeline puts the deterministic steps (load, box arrays, square resize) before the first random
one, so ``CacheDataset``/``PersistentDataset`` cache the decoded, resized image; in evaluation mode the
whole pipeline is deterministic. Boxes are mapped into the output image last (``MapBoxesToImaged``).

Example config entry::

    "train_transforms": {"_target_": "gkmvlp_monai.transforms.pipelines.cxr_transforms",
                         "image_size": 224, "train": true}
"""

from __future__ import annotations

import math

from monai.transforms import Compose, MapTransform, RandAffined

from gkmvlp_monai.transforms.boxes import MapBoxesToImaged, PrepareBoxesd
from gkmvlp_monai.transforms.intensity import ClipIntensityd, cxr_intensity_augmentations
from gkmvlp_monai.transforms.io import LoadCXRImaged
from gkmvlp_monai.transforms.spatial import RandResizedCropd, ResizeLongestPadd

__all__ = ["cxr_deterministic_transforms", "cxr_random_transforms", "cxr_transforms"]

_BOX_KEYS = ("region_boxes", "lesion_boxes")
_MASK_KEYS = ("region_mask", "lesion_mask")


def cxr_deterministic_transforms(
    image_size: int = 224,
    image_key: str = "image",
    with_boxes: bool = True,
    load_size: int | None = None,
    check_body_part: bool = True,
    region_extractor: MapTransform | None = None,
    allow_non_chest: bool = False,
    lateral: str = "accept",
) -> list[MapTransform]:
    """The cacheable part: load, (region extraction), box arrays, resize longest side and pad square.

    Args:
        image_size: output side length when no ``load_size`` is given.
        image_key: key of the image file name.
        with_boxes: convert ``region_boxes`` / ``lesion_boxes`` into arrays (still in original pixels).
        load_size: side length of the cached square image (e.g. 256 before a 224 random crop).
        check_body_part: refuse a DICOM that names another body part than the chest.
        region_extractor: the region-source transform inserted right after loading
            (``gkmvlp_monai.transforms.regions.ExtractAnatomicalRegionsd``, what the bundles'
            ``region_extractor(...)`` builds): it records each item's region source and fills in
            ``region_boxes`` from the anatomy model or atlas for items without them. Items without boxes
            otherwise keep an all-absent ``region_mask``, also with ``None`` (default: nothing recorded).
        allow_non_chest: load such a DICOM flagged (``meta["in_scope"]`` False) instead of refusing it.
        lateral: ``"accept"`` (default), ``"flag"`` or ``"refuse"`` lateral views (``LoadCXRImaged``).

    Returns:
        A list of dictionary transforms.
    """
    steps: list[MapTransform] = [
        LoadCXRImaged(
            image_key, check_body_part=check_body_part, allow_non_chest=allow_non_chest, lateral=lateral
        )
    ]
    if region_extractor is not None:
        steps.append(region_extractor)
    if with_boxes:
        steps.append(PrepareBoxesd())
    steps.append(ResizeLongestPadd(image_key, load_size or image_size))
    return steps


def cxr_random_transforms(
    image_size: int = 224,
    image_key: str = "image",
    crop_scale: tuple[float, float] = (0.7, 1.0),
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
    crop_prob: float = 1.0,
    affine_prob: float = 0.5,
    rotate_degrees: float = 10.0,
    scale_range: float = 0.1,
    translate_fraction: float = 0.05,
    intensity_prob: float = 0.5,
) -> list[MapTransform]:
    """The pre-training augmentations (no left-right flip, ever).

    Args:
        image_size: output side length.
        image_key: image key.
        crop_scale: random resized crop area fraction range.
        crop_ratio: random resized crop aspect range.
        crop_prob: probability of the random resized crop.
        affine_prob: probability of the small random affine.
        rotate_degrees: maximum rotation (degrees, either way).
        scale_range: maximum relative zoom change (either way).
        translate_fraction: maximum shift as a fraction of ``image_size``.
        intensity_prob: probability of each intensity augmentation.

    Returns:
        A list of dictionary transforms: crop, affine, gamma, scale, noise, blur, clip.
    """
    shift = translate_fraction * image_size
    return [
        RandResizedCropd(image_key, image_size, scale=crop_scale, ratio=crop_ratio, prob=crop_prob),
        RandAffined(
            image_key,
            prob=affine_prob,
            rotate_range=math.radians(rotate_degrees),
            scale_range=(scale_range, scale_range),
            translate_range=(shift, shift),
            mode="bilinear",
            padding_mode="zeros",
        ),
        *cxr_intensity_augmentations(image_key, prob=intensity_prob),
    ]


def cxr_transforms(
    image_size: int = 224,
    train: bool = False,
    image_key: str = "image",
    with_boxes: bool = True,
    load_size: int | None = None,
    check_body_part: bool = True,
    region_extractor: MapTransform | None = None,
    allow_non_chest: bool = False,
    lateral: str = "accept",
    **augment: float | tuple[float, float],
) -> Compose:
    """The full chest X-ray pipeline: deterministic steps, then (train) augmentations, then boxes.

    Args:
        image_size: output side length (224, 512, ...).
        train: add the random augmentations.
        image_key: key of the image file name.
        with_boxes: carry ``region_boxes`` (-> float32 ``[29, 4]`` + ``region_mask`` bool ``[29]``) and
            ``lesion_boxes`` (-> ``[N, 4]`` + ``lesion_mask``) into the output image's pixels.
        load_size: cached square size before the random crop (defaults to ``image_size``).
        check_body_part: refuse a DICOM that names another body part than the chest.
        region_extractor: optional region-box extraction right after loading, for items without
            ``region_boxes`` (see :func:`cxr_deterministic_transforms`).
        allow_non_chest: load such a DICOM flagged (``meta["in_scope"]`` False) instead of refusing it.
        lateral: ``"accept"`` (default), ``"flag"`` or ``"refuse"`` lateral views (``LoadCXRImaged``).
        augment: keyword arguments of ``cxr_random_transforms`` (``crop_scale``, ``affine_prob``, ...).

    Returns:
        A ``monai.transforms.Compose``; output ``image`` is a float32 ``[1, S, S]`` MetaTensor in [0, 1].

    Raises:
        TypeError: unknown augmentation keyword.
    """
    steps = cxr_deterministic_transforms(
        image_size,
        image_key,
        with_boxes,
        load_size,
        check_body_part,
        region_extractor,
        allow_non_chest=allow_non_chest,
        lateral=lateral,
    )
    if train:
        steps += cxr_random_transforms(image_size, image_key, **augment)
    elif augment:
        raise TypeError(f"augmentation arguments {sorted(augment)} need train=True")
    elif load_size and load_size != image_size:
        steps.append(ResizeLongestPadd(image_key, image_size))
    else:
        steps.append(ClipIntensityd(image_key))
    if with_boxes:
        steps.append(MapBoxesToImaged(_BOX_KEYS, image_key, _MASK_KEYS))
    return Compose(steps)


def cxr_train_transforms(
    image_size: int = 224,
    image_key: str = "image",
    load_size: int | None = None,
    check_body_part: bool = True,
    region_extractor: MapTransform | None = None,
    allow_non_chest: bool = False,
    lateral: str = "accept",
    **augment: float | tuple[float, float],
) -> tuple[Compose, Compose]:
    """The train pipeline split in two for caching and per-sample seeding.

    Args:
        image_size: output side length.
        image_key: image key.
        load_size: cached square size before the random crop (defaults to ``image_size``).
        check_body_part: refuse a DICOM that names another body part than the chest.
        region_extractor: optional region-box extraction right after loading, for items without
            ``region_boxes`` (cached with the deterministic part; see :func:`cxr_deterministic_transforms`).
        allow_non_chest: load such a DICOM flagged (``meta["in_scope"]`` False) instead of refusing it.
        lateral: ``"accept"`` (default), ``"flag"`` or ``"refuse"`` lateral views (``LoadCXRImaged``).
        augment: keyword arguments of :func:`cxr_random_transforms`.

    Returns:
        ``(deterministic, random)``: load, box arrays, resize and pad (cacheable); then the augmentations and
        the final mapping of the boxes into the augmented image's pixels.
    """
    deterministic = Compose(
        cxr_deterministic_transforms(
            image_size,
            image_key,
            True,
            load_size,
            check_body_part,
            region_extractor,
            allow_non_chest=allow_non_chest,
            lateral=lateral,
        )
    )
    random = Compose(
        cxr_random_transforms(image_size, image_key, **augment)
        + [MapBoxesToImaged(_BOX_KEYS, image_key, _MASK_KEYS)]
    )
    return deterministic, random
