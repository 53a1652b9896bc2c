"""``ExtractAnatomicalRegionsd``, the region-source transform: where each image's 29 region boxes come from.

One rule, decided here for every image: the annotation (region boxes in the datalist) when the item has
any; else the trained :class:`~gkmvlp_monai.models.anatomy.RegionBoxNet` when given and confident; else
the atlas registration (:func:`~gkmvlp_monai.transforms.atlas.register_atlas`) when given; else the
default layout (``gkmvlp_monai/core/vocabularies/region_layout.json``). The source (one of
:data:`REGION_SOURCES`) and a confidence are recorded in the sample and in the image's metadata.
Model and atlas results are cached by image content hash (JSON, one file per image, written atomically)
so a data set is processed once, across epochs, workers and runs.

The default layout is defined in the network's square input frame, so it is not written as boxes here
(this transform runs on the picture as loaded, before any resize, and training keeps such images'
regions unknown): the networks called on such a batch for predictions get it from
:func:`prediction_region_inputs` (:func:`gkmvlp_monai.core.boxes.fill_default_regions` for the images
:func:`recorded_region_sources` says have source ``"default"``); image-only export wrappers use
:func:`gkmvlp_monai.core.boxes.default_layout` for every image.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from gkmvlp_monai.core.boxes import boxes_from_dict, boxes_to_dict, fill_default_regions
from gkmvlp_monai.models.anatomy import RegionBoxNet, load_region_model
from gkmvlp_monai.transforms.atlas import Atlas, register_atlas

__all__ = [
    "REGION_SOURCES",
    "ExtractAnatomicalRegionsd",
    "ExtractAnatomicalRegionsD",
    "ExtractAnatomicalRegionsDict",
    "LowConfidenceRegionsWarning",
    "image_content_hash",
    "prediction_region_inputs",
    "recorded_region_sources",
    "region_extractor",
]

logger = logging.getLogger(__name__)

CACHE_VERSION = 1

#: where an image's region boxes came from, in the order they are tried
REGION_SOURCES: Final = ("annotation", "model", "atlas", "default")


class LowConfidenceRegionsWarning(UserWarning):
    """Region boxes could not be found with enough confidence (lateral view, non-chest image, no lungs)."""


def image_content_hash(image: Any) -> str:
    """SHA-1 of a picture's shape, dtype and values (path independent)."""
    t = image.as_tensor() if hasattr(image, "as_tensor") else image
    arr = np.ascontiguousarray(t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t))
    h = hashlib.sha1()
    h.update(str((arr.shape, arr.dtype.str)).encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def _source_name(image: Any, data: Mapping) -> str:
    meta = getattr(image, "meta", None)
    name = meta.get("filename_or_obj") if isinstance(meta, Mapping) else None
    return str(name or data.get("image_id") or "<in-memory image>")


class ExtractAnatomicalRegionsd(MapTransform):
    """Decide and record each sample's region source; fill ``boxes_key`` (data contract dict, ORIGINAL
    picture pixels) from the model or the atlas when the item has no annotated box.

    Place it after loading (``LoadCXRImaged``) and before any resize/pad/augment transform; the
    resize transforms then map the boxes like data-set truth. A ``keys`` value that is still a file name
    is loaded for prediction (the sample keeps the file name).

    Recorded per sample, in the data and (for a loaded ``MetaTensor``) in the image's ``meta``:
    ``source_key``, one of :data:`REGION_SOURCES`: ``"annotation"`` when the item has a box of positive
    area, ``"model"`` or ``"atlas"`` when they found the boxes, ``"default"`` when neither is given or
    their boxes were dropped for low confidence (the boxes stay unknown; see the module docstring). Also
    ``confidence_key``: 1.0 for an annotation, the mean confidence of the model or atlas result (even
    when dropped), 0.0 when neither ran.

    Args:
        keys: the image key (one).
        boxes_key: region-box dict key.
        model: a :class:`RegionBoxNet` or a checkpoint path (``load_region_model``); ``None``: no model.
        atlas: an :class:`Atlas` or an ``.npz`` path; ``None``: no atlas. With neither, the source is the
            annotation or the default layout.
        min_confidence: below it the model falls back to the atlas, and a final result below it warns
            (``LowConfidenceRegionsWarning`` naming the file).
        low_confidence: ``"drop"`` (default: leave ``boxes_key`` empty, source ``"default"``) or
            ``"keep"`` (keep the best boxes anyway, flagged by the confidence key).
        cache_dir: folder of the JSON cache (``None``: in-memory only).
        source_key: where the source is recorded.
        confidence_key: where the confidence is recorded.
        allow_missing_keys: skip samples without the image key.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        boxes_key: str = "region_boxes",
        model: RegionBoxNet | str | os.PathLike | None = None,
        atlas: Atlas | str | os.PathLike | None = None,
        min_confidence: float = 0.5,
        low_confidence: str = "drop",
        cache_dir: str | os.PathLike | None = None,
        source_key: str = "region_source",
        confidence_key: str = "region_confidence",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 1:
            raise ValueError("ExtractAnatomicalRegionsd works on one image key")
        if low_confidence not in ("drop", "keep"):
            raise ValueError(f"low_confidence must be 'drop' or 'keep', not {low_confidence!r}")
        self.model = load_region_model(model) if isinstance(model, (str, os.PathLike)) else model
        self.atlas = Atlas.load(atlas) if isinstance(atlas, (str, os.PathLike)) else atlas
        self.boxes_key, self.source_key, self.confidence_key = boxes_key, source_key, confidence_key
        self.min_confidence, self.low_confidence = float(min_confidence), low_confidence
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._memory: dict[str, dict] = {}
        self._tag: str | None = None
        #: number of images actually processed (cache misses), for monitoring
        self.computed = 0

    def fingerprint(self) -> dict[str, Any]:
        """What the output depends on, for the data set caches
        (:func:`gkmvlp_monai.data.dataset.transform_fingerprint`). It covers the keys, the
        confidence policy, and the identity of the model weights and the atlas. It leaves out the
        results computed so far and the cache folder."""
        return {
            "keys": list(self.keys),
            "out_keys": [self.boxes_key, self.source_key, self.confidence_key],
            "min_confidence": self.min_confidence,
            "low_confidence": self.low_confidence,
            "allow_missing_keys": self.allow_missing_keys,
            "methods": self._cache_tag(),
        }

    def _cache_tag(self) -> str:
        if self._tag is not None:
            return self._tag
        parts = [f"v{CACHE_VERSION}", f"min{self.min_confidence}"]
        if self.model is not None:
            parts.append(
                "model-"
                + hashlib.sha1(json.dumps(self.model.config(), sort_keys=True).encode()).hexdigest()[:8]
            )
            h = hashlib.sha1()
            for p in list(self.model.parameters())[-2:]:
                h.update(p.detach().cpu().numpy().tobytes())
            parts.append(h.hexdigest()[:8])
        if self.atlas is not None:
            parts.append(
                "atlas-"
                + hashlib.sha1(self.atlas.image.tobytes() + self.atlas.boxes.tobytes()).hexdigest()[:8]
            )
        self._tag = "_".join(parts)
        return self._tag

    def _read_cache(self, key: str) -> dict | None:
        if key in self._memory:
            return self._memory[key]
        if self.cache_dir is None:
            return None
        path = self.cache_dir / f"{key}.json"
        if not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            logger.warning("%s: unreadable region cache entry, recomputing", path)
            return None
        self._memory[key] = entry
        return entry

    def _write_cache(self, key: str, entry: dict) -> None:
        self._memory[key] = entry
        if self.cache_dir is None:
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(entry, fh)
        os.replace(tmp, self.cache_dir / f"{key}.json")

    def extract(self, image: Any) -> dict:
        """Run model and/or atlas on one picture (at least one of them must be given).

        Args:
            image: ``[1, W, H]`` picture.

        Returns:
            ``{"boxes": [[x1, y1, x2, y2]] * 29, "confidence": [29], "method": str, "score": float,
            "issues": [str]}``.

        Raises:
            ValueError: neither a model nor an atlas was given.
        """
        if self.model is None and self.atlas is None:
            raise ValueError("region extraction needs a model, an atlas or both; this transform has neither")
        candidates: list[tuple[str, np.ndarray, np.ndarray, list[str]]] = []
        if self.model is not None:
            boxes, conf = self.model.predict_boxes(image)
            issues = [] if conf.mean() >= self.min_confidence else [f"model confidence {conf.mean():.2f}"]
            candidates.append(("model", boxes, conf, issues))
        if self.atlas is not None and (not candidates or candidates[0][2].mean() < self.min_confidence):
            boxes, conf, tf = register_atlas(image, self.atlas)
            candidates.append(("atlas", boxes, conf, list(tf.issues)))
        method, boxes, conf, _ = max(candidates, key=lambda c: float(c[2].mean()))
        issues = [f"{m}: {i}" for m, _, _, iss in candidates for i in iss]
        return {
            "boxes": np.asarray(boxes, dtype=float).round(3).tolist(),
            "confidence": np.asarray(conf, dtype=float).round(4).tolist(),
            "method": method,
            "score": round(float(np.mean(conf)), 4),
            "issues": issues,
        }

    def find(self, image: Any, source: str | None = None) -> dict:
        """Boxes of one picture through the cache, warning on low confidence.

        Args:
            image: ``[1, W, H]`` picture (or its file name).
            source: name used in warnings (default: the picture's file name).

        Returns:
            The cache entry (see :meth:`extract`) plus ``"low_confidence"`` (bool) and ``"source"``.
        """
        if isinstance(image, (str, os.PathLike)):
            from gkmvlp_monai.transforms.io import LoadCXRImage

            source = source or str(image)
            image = LoadCXRImage()(image)
        source = source or _source_name(image, {})
        cache_key = image_content_hash(image) + "_" + self._cache_tag()
        entry = self._read_cache(cache_key)
        if entry is None:
            entry = self.extract(image)
            entry["source"] = source
            self.computed += 1
            self._write_cache(cache_key, entry)
        score = float(entry["score"])
        low = score < self.min_confidence
        if low:
            warnings.warn(
                f"{source}: anatomical regions found with low confidence {score:.2f} by {entry['method']} "
                f"(lateral view, non-chest image or no lungs visible?); "
                f"{'boxes dropped' if self.low_confidence == 'drop' else 'boxes kept'}; "
                + "; ".join(entry["issues"]),
                LowConfidenceRegionsWarning,
                stacklevel=3,
            )
        return {**entry, "source": source, "low_confidence": low}

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Decide one sample's region source (filling in model or atlas boxes) and record it.

        Args:
            data: a sample whose image key holds a loaded ``[1, W, H]`` picture (or its file name).

        Returns:
            A copy of ``data`` with ``source_key`` and ``confidence_key`` set, ``boxes_key`` filled when
            the model or the atlas gave the boxes.
        """
        d = dict(data)
        for key in self.key_iterator(d):
            existing = d.get(self.boxes_key)
            if isinstance(existing, Mapping) and boxes_from_dict(existing)[1].any():
                source, confidence = "annotation", 1.0
            elif self.model is None and self.atlas is None:
                source, confidence = "default", 0.0
            else:
                image = d[key]
                name = str(image) if isinstance(image, (str, os.PathLike)) else _source_name(image, d)
                entry = self.find(image, name)
                if entry["low_confidence"] and self.low_confidence == "drop":
                    d[self.boxes_key] = {}
                    source = "default"
                else:
                    d[self.boxes_key] = boxes_to_dict(np.asarray(entry["boxes"], dtype=np.float32))
                    source = entry["method"]
                confidence = float(entry["score"])
            d[self.source_key], d[self.confidence_key] = source, confidence
            meta = getattr(d[key], "meta", None)
            if isinstance(meta, dict):
                meta[self.source_key] = source
        return d


ExtractAnatomicalRegionsD = ExtractAnatomicalRegionsDict = ExtractAnatomicalRegionsd


def region_extractor(
    model: str | os.PathLike | None = None,
    atlas: str | os.PathLike | None = None,
    arch: str = "resnet_tiny",
    img_size: int = 128,
    hidden: int = 64,
    min_confidence: float = 0.5,
    low_confidence: str = "drop",
    cache_dir: str | os.PathLike | None = None,
) -> ExtractAnatomicalRegionsd:
    """The region-source transform a bundle puts in its pipelines, right after loading.

    Bundles expose it as one config dict, ``anatomy``, whose ``model`` / ``atlas`` point at the
    ``cxr_anatomy`` bundle's ``models/model.pt`` and ``models/atlas.npz``. With both ``None`` (the
    default) an image's source is its annotation or the default layout, and nothing is computed.

    Args:
        model: region model checkpoint (the bundle's plain ``model.pt`` or a self-describing one).
        atlas: atlas ``.npz`` (the fallback).
        arch: ``cxr_anatomy``'s ``image_arch`` (for a plain state dict).
        img_size: ``cxr_anatomy``'s ``image_size``.
        hidden: ``cxr_anatomy``'s ``hidden``.
        min_confidence: see :class:`ExtractAnatomicalRegionsd`.
        low_confidence: see :class:`ExtractAnatomicalRegionsd`.
        cache_dir: JSON cache of the predicted boxes (each picture processed once).

    Returns:
        the transform.
    """
    net = None
    if model is not None:
        net = load_region_model(model, arch=arch, img_size=int(img_size), hidden=int(hidden))
    return ExtractAnatomicalRegionsd(
        "image",
        model=net,
        atlas=atlas,
        min_confidence=min_confidence,
        low_confidence=low_confidence,
        cache_dir=cache_dir,
    )


def recorded_region_sources(
    batch: Mapping[str, Any], key: str = "region_source", image_key: str = "image"
) -> list[str] | None:
    """The region source :class:`ExtractAnatomicalRegionsd` recorded for each image of a batch.

    Read from ``batch[key]`` when the batch kept that key, else from the image's metadata (which survives
    ``SelectItemsd``).

    Args:
        batch: a collated batch (or one sample).
        key: the transform's ``source_key``.
        image_key: the image key.

    Returns:
        One of :data:`REGION_SOURCES` per image, or ``None`` when the batch did not pass through the
        transform.

    Raises:
        ValueError: a recorded value that is not a region source.
    """
    sources = batch.get(key)
    if sources is None:
        meta = getattr(batch.get(image_key), "meta", None)
        sources = meta.get(key) if isinstance(meta, Mapping) else None
    if sources is None:
        return None
    sources = [sources] if isinstance(sources, str) else [str(s) for s in sources]
    unknown = sorted(set(sources) - set(REGION_SOURCES))
    if unknown:
        raise ValueError(f"recorded region sources {unknown} are not among {REGION_SOURCES}")
    return sources


def prediction_region_inputs(
    batch: Mapping[str, Any], image_key: str = "image"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The region inputs a network gets for predictions on a batch: its region boxes, and the default
    layout for the images whose recorded region source is ``"default"`` (or that have no known box).

    Args:
        batch: a collated batch with ``image_key`` and, when it has them, ``region_boxes`` / ``region_mask``.
        image_key: the image key.

    Returns:
        ``(boxes [B, R, 4], mask [B, R], used [B])``, see :func:`gkmvlp_monai.core.boxes.fill_default_regions`.
    """
    sources = recorded_region_sources(batch, image_key=image_key)
    return fill_default_regions(
        batch[image_key],
        batch.get("region_boxes"),
        batch.get("region_mask"),
        None if sources is None else [s == "default" for s in sources],
    )
