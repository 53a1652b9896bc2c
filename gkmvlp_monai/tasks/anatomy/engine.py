"""Training and evaluation glue that lets MONAI's engines train :class:`~gkmvlp_monai.models.anatomy.RegionBoxNet`.

Data come through ``gkmvlp_monai.transforms`` (``LoadCXRImaged`` -> box arrays -> square resize and pad;
then, for training, random resized crop + zoom/shift without rotation and intensity augmentations, the
boxes following exactly through ``MapBoxesToImaged``) and :class:`RandNonChestd`, which replaces a
share of the samples by non-chest pictures whose confidence target is 0. No left-right flips
(laterality is knowledge).

Engines are the stock ones (``CXRTrainer`` / ``CXREvaluator`` are ``SupervisedTrainer`` /
``SupervisedEvaluator`` that pass over all-bad batches): :func:`prepare_region_batch` turns a batch
into ``(image, {"boxes", "mask", "negative"})``, :class:`~gkmvlp_monai.models.anatomy.RegionBoxLoss` is
the ``loss_function``, :class:`RegionEvalInferer` runs the network (and optionally the atlas) for the
evaluator and :class:`RegionIoU` is the metric (mean IoU over all known region instances, and per
region).
"""

from __future__ import annotations

import os
import time
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.inferers import Inferer
from monai.transforms import Compose, MapTransform, RandomizableTransform, SelectItemsd

from gkmvlp_monai.models.anatomy import split_output
from gkmvlp_monai.transforms.atlas import Atlas, register_atlas

__all__ = [
    "RandNonChestd",
    "region_train_transforms",
    "region_eval_transforms",
    "prepare_region_batch",
    "RegionEvalInferer",
]

_KEEP = ("image", "region_boxes", "region_mask")
NEGATIVE_KINDS = ("noise", "flat", "smooth", "rot90")


class RandNonChestd(RandomizableTransform, MapTransform):
    """With probability ``prob``, replace the picture by a non-chest one and flag the sample negative.

    Kinds (uniform): uniform noise, a flat grey, a smooth random field, or the picture itself rotated by
    90 degrees (a crude stand-in for a non-frontal view). The picture's metadata are kept. Every sample
    gets ``negative_key`` (bool tensor) so batches collate.

    Args:
        keys: the image key (one).
        prob: probability of a negative sample.
        negative_key: where the flag is written.
    """

    def __init__(self, keys: str = "image", prob: float = 0.1, negative_key: str = "negative") -> None:
        RandomizableTransform.__init__(self, prob)
        MapTransform.__init__(self, keys)
        if len(self.keys) != 1:
            raise ValueError("RandNonChestd works on one image key")
        self.negative_key = negative_key
        self._kind = 0

    def randomize(self, data: Any = None) -> None:
        super().randomize(None)
        self._kind = int(self.R.randint(len(NEGATIVE_KINDS)))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Maybe replace the picture; always set the flag."""
        d = dict(data)
        self.randomize()
        key = self.keys[0]
        d[self.negative_key] = torch.tensor(bool(self._do_transform))
        if not self._do_transform:
            return d
        img = d[key]
        shape = tuple(img.shape)
        kind = NEGATIVE_KINDS[self._kind]
        if kind == "noise":
            new = torch.as_tensor(self.R.uniform(0, 1, shape), dtype=torch.float32)
        elif kind == "flat":
            new = torch.full(shape, float(self.R.uniform(0, 1)), dtype=torch.float32)
        elif kind == "smooth":
            coarse = torch.as_tensor(self.R.uniform(0, 1, (1, shape[0], 4, 4)), dtype=torch.float32)
            new = F.interpolate(coarse, size=shape[1:], mode="bicubic", align_corners=False)[0].clamp(0, 1)
        else:
            new = torch.rot90(torch.as_tensor(img).float(), 1, dims=(-2, -1))
        out = img.clone()
        out[...] = new.to(out.dtype)
        d[key] = out
        return d


def region_train_transforms(
    image_size: int = 128,
    negative_prob: float = 0.1,
    crop_scale: tuple[float, float] = (0.8, 1.0),
    crop_prob: float = 0.5,
    scale_range: float = 0.1,
    translate_fraction: float = 0.06,
    intensity_prob: float = 0.5,
    check_body_part: bool = True,
) -> tuple[Compose, Compose]:
    """Training pipeline for the region model, split for caching and per-sample seeding.

    Args:
        image_size: square side the network sees.
        negative_prob: share of non-chest negatives (:class:`RandNonChestd`).
        crop_scale: area range of the random resized crop (aspect 0.9-1.1).
        crop_prob: probability of the crop.
        scale_range: zoom range of the random affine (no rotation: boxes stay exact).
        translate_fraction: shift range of the random affine, as a fraction of ``image_size``.
        intensity_prob: probability of each intensity augmentation.
        check_body_part: warn when a DICOM's BodyPartExamined is not the chest.

    Returns:
        ``(deterministic, random)``; samples end as ``image [1, S, S]``, ``region_boxes [29, 4]`` in
        image pixels, ``region_mask [29]`` and ``negative`` (bool).
    """
    from gkmvlp_monai.transforms.pipelines import cxr_train_transforms

    det, rnd = cxr_train_transforms(
        image_size,
        check_body_part=check_body_part,
        crop_scale=crop_scale,
        crop_ratio=(0.9, 1.1),
        crop_prob=crop_prob,
        affine_prob=0.5,
        rotate_degrees=0.0,
        scale_range=scale_range,
        translate_fraction=translate_fraction,
        intensity_prob=intensity_prob,
    )
    deterministic = Compose([det, SelectItemsd(_KEEP)])
    random = Compose([rnd, RandNonChestd("image", prob=negative_prob), SelectItemsd((*_KEEP, "negative"))])
    return deterministic, random


def region_eval_transforms(image_size: int = 128, check_body_part: bool = True) -> Compose:
    """Evaluation pipeline: load, square resize and pad, boxes in image pixels (deterministic)."""
    from gkmvlp_monai.transforms.pipelines import cxr_transforms

    return Compose([cxr_transforms(image_size, check_body_part=check_body_part), SelectItemsd(_KEEP)])


def prepare_region_batch(
    batchdata: dict[str, Any],
    device: str | torch.device | None = None,
    non_blocking: bool = False,
    **kwargs: Any,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``prepare_batch`` of the region engines: the image and the box targets.

    Boxes are normalised by the image's sides (``x`` by dim -2, ``y`` by dim -1), the frame of the
    network's output.

    Returns:
        ``(image [B, 1, S, S], {"boxes": [B, 29, 4] in [0, 1], "mask": [B, 29] bool, "negative": [B] bool})``.

    Raises:
        KeyError: the batch lacks ``image``, ``region_boxes`` or ``region_mask``.
    """
    for key in ("image", "region_boxes", "region_mask"):
        if key not in batchdata:
            raise KeyError(f"region batch lacks {key!r} (has {sorted(batchdata)})")
    image = batchdata["image"]
    image = image.as_tensor() if hasattr(image, "as_tensor") else torch.as_tensor(image)
    image = image.to(device=device, non_blocking=non_blocking, dtype=torch.float32)
    w, h = image.shape[-2], image.shape[-1]
    scale = torch.tensor([w, h, w, h], dtype=torch.float32, device=image.device)
    boxes = torch.as_tensor(batchdata["region_boxes"]).to(device=image.device, dtype=torch.float32) / scale
    mask = torch.as_tensor(batchdata["region_mask"]).to(device=image.device).bool()
    neg = batchdata.get("negative")
    negative = (
        torch.zeros(image.shape[0], dtype=torch.bool, device=image.device)
        if neg is None
        else torch.as_tensor(neg).to(device=image.device).bool().reshape(-1)
    )
    return image, {"boxes": boxes, "mask": mask, "negative": negative}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class RegionEvalInferer(Inferer):
    """Evaluation pass: the network's boxes and confidence, time per image, and optionally the atlas's.

    Output (``pred`` of the evaluator): ``boxes [B, R, 4]`` normalised, ``confidence [B, R]`` (sigmoid),
    ``model_seconds`` (forward time per image of this batch); with an atlas also ``atlas_boxes``,
    ``atlas_confidence`` and ``atlas_seconds`` (ITK registration on the same evaluation picture).

    Args:
        atlas: an :class:`Atlas` or ``.npz`` path (``None``: model only).
    """

    def __init__(self, atlas: Atlas | str | os.PathLike | None = None) -> None:
        super().__init__()
        self.atlas = Atlas.load(atlas) if isinstance(atlas, (str, os.PathLike)) else atlas

    def __call__(self, inputs: torch.Tensor, network: torch.nn.Module, *args: Any, **kwargs: Any) -> dict:
        b = inputs.shape[0]
        _sync(inputs.device)
        t = time.perf_counter()
        out = network(inputs)
        _sync(inputs.device)
        secs = (time.perf_counter() - t) / b
        boxes, logits = split_output(out)
        res = {
            "boxes": boxes,
            "confidence": torch.sigmoid(logits),
            "model_seconds": torch.tensor(secs),
        }
        if self.atlas is not None:
            ab, ac, at = [], [], []
            for i in range(b):
                pic = inputs[i].detach().float().cpu().numpy()
                t = time.perf_counter()
                bx, conf, _ = register_atlas(pic, self.atlas)
                at.append(time.perf_counter() - t)
                w, h = pic.shape[-2], pic.shape[-1]
                ab.append(torch.as_tensor(np.asarray(bx) / np.array([w, h, w, h]), dtype=torch.float32))
                ac.append(torch.as_tensor(conf, dtype=torch.float32))
            res["atlas_boxes"] = torch.stack(ab).to(inputs.device)
            res["atlas_confidence"] = torch.stack(ac).to(inputs.device)
            res["atlas_seconds"] = torch.tensor(float(np.mean(at)))
        return res
