"""Data path and engine glue of the localization bundle (``bundles/gkmvlp_localization``).

Targets: one channel per *target finding*. An item's finding masks (iu-synth ``masks`` PNGs aligned
with ``lesion_labels``; SIIM's single ``mask``) are loaded with the project's MONAI reader, and box-only
findings (RSNA, NIH BBox, or an iu-synth finding without a mask file) are rasterised in original-image
pixels; the label map ``[K, W, H]`` then goes through the *same* spatial transforms as the image
(resize-and-pad, random affine), so masks and image stay aligned by construction. Areas are resampled
softly and binarised at 0.5 at the end.

Engines are the stock MONAI ones: the fine-tuned segmenter trains with ``SupervisedTrainer``'s default
``(image, label)`` batches; zero-shot evaluation hands the whole batch dict (image and region boxes)
to :class:`~gkmvlp_monai.tasks.localization.model.ZeroShotHeatmaps` with :func:`prepare_zero_shot_batch`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.data import MetaTensor
from monai.transforms import AsDiscreted, Compose, MapTransform, RandAffined, SelectItemsd

from gkmvlp_monai.core.boxes import boxes_to_mask
from gkmvlp_monai.data.datalist import load_datalist
from gkmvlp_monai.knowledge import vocab
from gkmvlp_monai.transforms.boxes import MapBoxesToImaged, PrepareBoxesd
from gkmvlp_monai.transforms.intensity import ClipIntensityd, cxr_intensity_augmentations
from gkmvlp_monai.transforms.io import LoadCXRImage, LoadCXRImaged
from gkmvlp_monai.transforms.spatial import ResizeLongestPadd

__all__ = [
    "FindingMasksd",
    "localization_items",
    "frequent_findings",
    "finding_entity_indices",
    "localization_transforms",
    "prepare_zero_shot_batch",
]

_NET_KEYS = ["image", "label", "region_boxes", "region_mask"]


def localization_items(
    datalist_file: str | Path, split: str = "training", fraction: float | None = None, seed: int = 0
) -> list[dict[str, Any]]:
    """Items of one split with absolute ``image``, ``mask`` and ``masks`` paths.

    Args:
        datalist_file: datalist JSON.
        split: split name.
        fraction: training fraction in (0, 1]; the datalist's ``training_<p>pct`` key when it has one,
            else the same nested subsets drawn with ``training_fractions(seed)``.
        seed: seed of a drawn subset.

    Returns:
        The items (copies).
    """
    path = Path(datalist_file)
    items = load_datalist(path, split, fraction=fraction, seed=seed)
    base = path.parent.resolve()
    for item in items:
        if isinstance(item.get("masks"), list):
            item["masks"] = [
                str(base / m) if m and not Path(m).is_absolute() else (m or "") for m in item["masks"]
            ]
    return items


def frequent_findings(datalist_file: str | Path, k: int = 8, split: str = "training") -> list[str]:
    """The ``k`` most frequent drawn findings (``lesion_labels``) of a split, most frequent first
    (ties by name), for choosing a data set's target set."""
    counts: Counter = Counter()
    for item in load_datalist(datalist_file, split):
        counts.update(str(lab) for lab in item.get("lesion_labels", []))
    return [name for name, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def finding_entity_indices(findings: Sequence[str]) -> list[int]:
    """Entity index of each target finding, for zero-shot heat maps.

    A finding that is an entity name (iu-synth, SIIM's ``Pneumothorax``) maps to itself
    (case-insensitive); a public label name (NIH ``Infiltration``, RSNA ``Lung Opacity``) maps to the
    first entity of its CheXpert-14 / NIH-14 mapping.

    Raises:
        KeyError: a finding with no entity (the message lists what was tried).
    """
    names = {n.lower(): i for i, n in enumerate(vocab.entity_names())}
    label_maps: dict[str, list[str]] = {}
    for label_set in ("chexpert14", "nih14"):
        for label, ents in vocab.label_entities(label_set).items():
            label_maps.setdefault(label.lower(), list(ents))
    out = []
    for finding in findings:
        key = finding.strip().lower()
        if key in names:
            out.append(names[key])
        elif label_maps.get(key):
            out.append(names[label_maps[key][0].lower()])
        else:
            raise KeyError(
                f"finding {finding!r} is neither an entity (gkmvlp_monai/core/vocabularies/entities.json) nor a "
                "chexpert14/nih14 label with an entity mapping"
            )
    return out


class FindingMasksd(MapTransform):
    """Build the ``[K, W, H]`` target map of an item, aligned with its loaded image.

    Sources, per finding of the item: its mask file (``masks[i]`` beside ``lesion_labels[i]``), else its
    box (``lesion_boxes[i]``, original pixels). An item-level ``mask`` file (SIIM) goes to
    ``mask_finding`` (default: the only target finding) when the item has no per-finding ``masks``
    (iu-synth's ``mask`` repeats ``masks[0]``). Findings outside ``findings`` are ignored.
    Must run right after the image is loaded (before any spatial transform).

    Args:
        findings: target finding names (channel order; matched case-insensitively).
        image_key: loaded image (``MetaTensor [1, W, H]``).
        label_key: key written.
        mask_finding: finding of an item-level ``mask`` file.
    """

    def __init__(
        self,
        findings: Sequence[str],
        image_key: str = "image",
        label_key: str = "label",
        mask_finding: str | None = None,
    ) -> None:
        super().__init__([image_key])
        if not findings:
            raise ValueError("FindingMasksd needs at least one target finding")
        self.findings = [f.lower() for f in findings]
        self.image_key, self.label_key = image_key, label_key
        if mask_finding is None and len(findings) == 1:
            mask_finding = findings[0]
        self.mask_finding = mask_finding.lower() if mask_finding else None
        self.loader = LoadCXRImage(check_body_part=False)

    def _load_mask(self, path: str, size: tuple[int, int], where: str) -> torch.Tensor:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{where}: mask file {path} not found")
        mask = self.loader(path)
        if tuple(mask.shape[1:]) != size:
            raise ValueError(
                f"{where}: mask {path} is {tuple(mask.shape[1:])} but the image is {size} (W, H)"
            )
        return torch.as_tensor(mask[0]).float() > 0.5

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        img = d[self.image_key]
        if not isinstance(img, MetaTensor) or img.ndim != 3:
            raise ValueError(f"{self.image_key!r} must be a loaded [1, W, H] MetaTensor before FindingMasksd")
        where = str(img.meta.get("filename_or_obj", self.image_key))
        size = (int(img.shape[1]), int(img.shape[2]))
        label = torch.zeros((len(self.findings), *size), dtype=torch.bool)
        labels = [str(x).lower() for x in d.get("lesion_labels", []) or []]
        boxes = list(d.get("lesion_boxes", []) or [])
        masks = list(d.get("masks", []) or [])
        if len(boxes) != len(labels):
            raise ValueError(f"{where}: {len(boxes)} lesion_boxes but {len(labels)} lesion_labels")
        for i, name in enumerate(labels):
            if name not in self.findings:
                continue
            c = self.findings.index(name)
            if i < len(masks) and masks[i]:
                label[c] |= self._load_mask(masks[i], size, where)
            else:
                label[c] |= boxes_to_mask([boxes[i]], size)
        if not masks and isinstance(d.get("mask"), str) and d["mask"]:  # iu-synth's "mask" repeats masks[0]
            if self.mask_finding is None or self.mask_finding not in self.findings:
                raise ValueError(f"{where}: item has a 'mask' file but no mask_finding among {self.findings}")
            label[self.findings.index(self.mask_finding)] |= self._load_mask(d["mask"], size, where)
        out = MetaTensor(label.float(), affine=img.affine.clone())
        out.meta.update({k: v for k, v in img.meta.items() if k != "affine"})
        d[self.label_key] = out
        return d


def localization_transforms(
    image_size: int,
    findings: Sequence[str],
    train: bool = False,
    mask_finding: str | None = None,
    affine_prob: float = 0.5,
    rotate_degrees: float = 10.0,
    scale_range: float = 0.1,
    translate_fraction: float = 0.05,
    intensity_prob: float = 0.5,
    region_extractor: Any = None,
) -> tuple[Compose, Compose]:
    """``(deterministic, tail)`` pipelines: image + target map + region boxes.

    Deterministic (cacheable): load, target map, box arrays, resize-and-pad of image *and* map. Tail:
    for training a small random affine applied to image and map together plus intensity augmentation
    of the image (never a left-right flip); then boxes mapped into the output image, the map binarised
    at 0.5 and the network keys selected (``image``, ``label``, ``region_boxes``, ``region_mask``).

    Args:
        image_size: output side.
        findings: target findings (channels).
        train: add the augmentations.
        mask_finding: finding of an item-level ``mask`` file (SIIM).
        affine_prob, rotate_degrees, scale_range, translate_fraction: random affine.
        intensity_prob: probability of each intensity augmentation.
        region_extractor: optional region-box filler for items without boxes, right after loading
            (e.g. :func:`gkmvlp_monai.transforms.regions.region_extractor`).
    """
    keys = ["image", "label"]
    deterministic = Compose(
        [
            LoadCXRImaged("image"),
            *([region_extractor] if region_extractor is not None else []),
            FindingMasksd(findings, mask_finding=mask_finding),
            PrepareBoxesd(),
            ResizeLongestPadd(keys, image_size, mode=["area", "area"]),
        ]
    )
    tail: list[Any] = []
    if train:
        shift = translate_fraction * image_size
        tail += [
            RandAffined(
                keys,
                prob=affine_prob,
                rotate_range=math.radians(rotate_degrees),
                scale_range=(scale_range, scale_range),
                translate_range=(shift, shift),
                mode=("bilinear", "bilinear"),
                padding_mode="zeros",
            ),
            *cxr_intensity_augmentations("image", prob=intensity_prob),
        ]
    else:
        tail.append(ClipIntensityd("image"))
    tail += [
        MapBoxesToImaged(("region_boxes", "lesion_boxes"), "image", ("region_mask", "lesion_mask")),
        AsDiscreted("label", threshold=0.5),
        SelectItemsd(_NET_KEYS),
    ]
    return deterministic, Compose(tail)


def prepare_zero_shot_batch(
    batchdata: dict[str, Any],
    device: str | torch.device | None = None,
    non_blocking: bool = False,
    **kwargs: Any,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """``(inputs, label)`` for zero-shot evaluation: inputs hold ``image``, ``region_boxes``, ``region_mask``."""
    if not isinstance(batchdata, dict) or "label" not in batchdata:
        raise TypeError("zero-shot localization expects dict batches with a 'label' target map")
    inputs = {
        k: batchdata[k].to(device=device, non_blocking=non_blocking)
        for k in ("image", "region_boxes", "region_mask")
    }
    return inputs, batchdata["label"].to(device=device, non_blocking=non_blocking)


def maps_and_targets(activation: str | None = "sigmoid") -> Any:
    """Metric output transform: ``(maps, label)`` from an engine output (``None`` for a skipped batch).

    Args:
        activation: ``"sigmoid"`` for a segmenter's logits; ``None`` for maps already in [0, 1] (the
            zero-shot heat-maps).
    """

    def _get(output: dict) -> tuple[torch.Tensor, torch.Tensor] | None:
        pred = output["pred"]
        if pred is None:
            return None
        return (pred.sigmoid() if activation == "sigmoid" else pred), output["label"]

    return _get
