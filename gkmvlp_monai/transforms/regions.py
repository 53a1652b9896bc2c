"""``ExtractAnatomicalRegionsd``: fill in the 29 region boxes of samples that lack them.

Method per image: the trained :class:`~gkmvlp_monai.models.anatomy.RegionBoxNet` when given and confident;
otherwise the atlas registration (:func:`~gkmvlp_monai.transforms.atlas.register_atlas`); the choice and the
confidence are recorded in the sample. Results are cached by image content hash (JSON, one file per
image, written atomically) so a data set is processed once, across epochs, workers and runs.
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
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from gkmvlp_monai.core.boxes import boxes_from_dict, boxes_to_dict
from gkmvlp_monai.models.anatomy import RegionBoxNet, load_region_model
from gkmvlp_monai.transforms.atlas import Atlas, register_atlas

__all__ = [
    "ExtractAnatomicalRegionsd",
    "ExtractAnatomicalRegionsD",
    "ExtractAnatomicalRegionsDict",
    "LowConfidenceRegionsWarning",
    "image_content_hash",
    "region_extractor",
]

logger = logging.getLogger(__name__)

CACHE_VERSION = 1


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
    """Fill ``boxes_key`` with the 29 region boxes (data contract dict, ORIGINAL picture pixels) when missing.

    Place it after loading (``LoadCXRImaged``) and before any resize/pad/augment transform; the
    resize transforms then map the boxes like data-set truth. A ``keys`` value that is still a file name
    is loaded for prediction (the sample keeps the file name).

    Recorded per sample: ``method_key`` (``"truth"`` when boxes were present, ``"model"``, ``"atlas"``, or
    ``"none"`` when dropped for low confidence) and ``confidence_key`` (mean confidence, 1.0 for truth).

    Args:
        keys: the image key (one).
        boxes_key: region-box dict key.
        model: a :class:`RegionBoxNet` or a checkpoint path (``load_region_model``); ``None``: atlas only.
        atlas: an :class:`Atlas` or an ``.npz`` path; ``None``: model only.
        min_confidence: below it the model falls back to the atlas, and a final result below it warns
            (``LowConfidenceRegionsWarning`` naming the file).
        low_confidence: ``"drop"`` (default: leave ``boxes_key`` empty, the regions count as unknown) or
            ``"keep"`` (keep the best boxes anyway, flagged by the method/confidence keys).
        cache_dir: folder of the JSON cache (``None``: in-memory only).
        method_key: where the method is recorded.
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
        method_key: str = "region_method",
        confidence_key: str = "region_confidence",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 1:
            raise ValueError("ExtractAnatomicalRegionsd works on one image key")
        if model is None and atlas is None:
            raise ValueError("ExtractAnatomicalRegionsd needs a model, an atlas or both")
        if low_confidence not in ("drop", "keep"):
            raise ValueError(f"low_confidence must be 'drop' or 'keep', not {low_confidence!r}")
        self.model = load_region_model(model) if isinstance(model, (str, os.PathLike)) else model
        self.atlas = Atlas.load(atlas) if isinstance(atlas, (str, os.PathLike)) else atlas
        self.boxes_key, self.method_key, self.confidence_key = boxes_key, method_key, confidence_key
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
            "out_keys": [self.boxes_key, self.method_key, self.confidence_key],
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
        """Run model and/or atlas on one picture.

        Args:
            image: ``[1, W, H]`` picture.

        Returns:
            ``{"boxes": [[x1, y1, x2, y2]] * 29, "confidence": [29], "method": str, "score": float,
            "issues": [str]}``.
        """
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
        """Fill in missing region boxes of one sample.

        Args:
            data: a sample whose image key holds a loaded ``[1, W, H]`` picture (or its file name).

        Returns:
            A copy of ``data`` with ``boxes_key``, ``method_key`` and ``confidence_key`` set.
        """
        d = dict(data)
        for key in self.key_iterator(d):
            existing = d.get(self.boxes_key)
            if isinstance(existing, Mapping) and boxes_from_dict(existing)[1].any():
                d[self.method_key], d[self.confidence_key] = "truth", 1.0
                continue
            image = d[key]
            source = str(image) if isinstance(image, (str, os.PathLike)) else _source_name(image, d)
            entry = self.find(image, source)
            if entry["low_confidence"] and self.low_confidence == "drop":
                d[self.boxes_key] = {}
                d[self.method_key] = "none"
            else:
                d[self.boxes_key] = boxes_to_dict(np.asarray(entry["boxes"], dtype=np.float32))
                d[self.method_key] = entry["method"]
            d[self.confidence_key] = float(entry["score"])
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
) -> ExtractAnatomicalRegionsd | None:
    """The region-box filler a bundle puts in its pipelines for items without boxes (``None``: switched off).

    Bundles expose it as one config dict, ``anatomy``, whose ``model`` / ``atlas`` point at the
    ``cxr_anatomy`` bundle's ``models/model.pt`` and ``models/atlas.npz``; both ``None`` (the default)
    leaves the pipelines as they are.

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
        the transform, or ``None`` when neither ``model`` nor ``atlas`` is given.
    """
    if model is None and atlas is None:
        return None
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
