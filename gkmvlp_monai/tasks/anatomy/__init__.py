"""Anatomy-aware region extraction: the 29 Chest ImaGenome region boxes for any frontal chest radiograph.

- :mod:`.boxes`: IoU/GIoU, region dict <-> ``[29, 4]`` arrays, affine box warps, letterbox.
- :mod:`.model`: ``RegionBoxNet`` (MONAI ResNet + per-region edge soft-argmax head + IoU-aware
  confidence) and ``RegionBoxLoss`` (L1 + GIoU + confidence BCE).
- :mod:`.atlas`: training-free fallback, ITK affine registration of a template with its boxes.
- :mod:`.transforms`: ``ExtractAnatomicalRegionsd`` (fills missing boxes, records method and confidence,
  caches per image, warns on low confidence).
- :mod:`.train`: MONAI-engine glue (transforms with box tracking and negatives, prepare_batch, IoU metric,
  evaluation inferer with the atlas); :mod:`.inference`: bundle inference (JSON + PNG overlay), atlas building.
- :mod:`.phantom`: a parametric chest phantom with exact boxes (tests, smoke runs).
"""

from gkmvlp_monai.core.boxes import (
    box_iou_paired,
    boxes_from_dict,
    boxes_to_dict,
    generalized_box_iou_paired,
    letterbox,
    warp_boxes,
)
from gkmvlp_monai.models.anatomy import RegionBoxLoss, RegionBoxNet, load_region_model
from gkmvlp_monai.transforms.atlas import Atlas, AtlasTransform, register_atlas
from gkmvlp_monai.transforms.regions import ExtractAnatomicalRegionsd, LowConfidenceRegionsWarning

__all__ = [
    "Atlas",
    "AtlasTransform",
    "register_atlas",
    "box_iou_paired",
    "generalized_box_iou_paired",
    "boxes_from_dict",
    "boxes_to_dict",
    "letterbox",
    "warp_boxes",
    "RegionBoxNet",
    "RegionBoxLoss",
    "load_region_model",
    "ExtractAnatomicalRegionsd",
    "LowConfidenceRegionsWarning",
]
