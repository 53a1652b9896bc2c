"""Inference and atlas building for the ``cxr_anatomy`` bundle.

- :func:`inference_items`: the pictures to process, from a datalist split or a folder of images.
- :class:`RegionExtractionInferer`: runs :class:`~gkmvlp_monai.transforms.regions.ExtractAnatomicalRegionsd`
  (model first, atlas fallback, low-confidence warning naming the file) on each picture of a batch.
- :class:`RegionBoxWriter`: writes per picture ``<stem>.json`` (boxes in ORIGINAL pixels, per-region
  confidence, method, flags) and ``<stem>.png`` (overlay), plus ``summary.json`` at the end.
- :func:`load_or_build_atlas`: ``models/atlas.npz`` from training pictures, built once.
"""

from __future__ import annotations

import colorsys
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.inferers import Inferer
from monai.utils import CommonKeys as Keys

from gkmvlp_monai.core.boxes import boxes_from_dict
from gkmvlp_monai.core.vocab import region_names
from gkmvlp_monai.transforms.atlas import Atlas
from gkmvlp_monai.transforms.regions import ExtractAnatomicalRegionsd

__all__ = [
    "IMAGE_SUFFIXES",
    "inference_items",
    "image_batch",
    "atlas_if_present",
    "RegionExtractionInferer",
    "RegionBoxWriter",
    "draw_region_overlay",
    "load_or_build_atlas",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom", ".nii", ".nii.gz")


def inference_items(
    datalist_file: str | os.PathLike | None = None,
    split: str = "test",
    image_dir: str | os.PathLike | None = None,
) -> list[dict[str, str]]:
    """Items ``{"image": path}`` to run the region model on.

    Args:
        datalist_file: datalist JSON (used when ``image_dir`` is ``None``).
        split: datalist split.
        image_dir: a folder of images (searched recursively; DICOM, PNG/JPEG, NIfTI).

    Returns:
        Items with absolute image paths (datalist truth boxes are not passed on: the model predicts).

    Raises:
        FileNotFoundError: the folder holds no image, or neither source is given.
    """
    if image_dir:
        root = Path(image_dir)
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES))
        if not files:
            raise FileNotFoundError(f"{root}: no image files ({', '.join(IMAGE_SUFFIXES)})")
        return [{"image": str(p)} for p in files]
    if not datalist_file:
        raise FileNotFoundError("inference needs a datalist_file or an image_dir")
    from gkmvlp_monai.data.datalist import load_datalist

    return [{"image": str(it["image"])} for it in load_datalist(str(datalist_file), split)]


def image_batch(
    batchdata: dict[str, Any], device: Any = None, non_blocking: bool = False, **kwargs: Any
) -> tuple[torch.Tensor, None]:
    """The evaluator's ``prepare_batch`` for inference: ``(batch["image"], None)``, left where it is
    (:class:`RegionExtractionInferer` moves each picture itself)."""
    return batchdata["image"], None


def atlas_if_present(atlas_file: str | os.PathLike | None) -> Atlas | None:
    """The atlas in ``atlas_file``, or ``None`` (no fallback) when there is no such file."""
    return Atlas.load(atlas_file) if atlas_file and os.path.isfile(atlas_file) else None


def _names_of(inputs: torch.Tensor) -> list[str]:
    meta = getattr(inputs, "meta", None) or {}
    names = meta.get("filename_or_obj") if isinstance(meta, Mapping) else None
    if isinstance(names, str):
        names = [names]
    if not names or len(names) != inputs.shape[0]:
        return [f"image_{i}" for i in range(inputs.shape[0])]
    return [str(n) for n in names]


class RegionExtractionInferer(Inferer):
    """Evaluator inferer: region boxes of every picture of a batch, in its ORIGINAL pixels.

    Batches hold pictures as loaded (``[B, 1, W, H]``; use batch size 1 when sizes differ). The
    ``network`` argument is the extractor's model (the same object, loaded by the evaluator's
    ``CheckpointLoader``); the extractor also holds the atlas fallback.

    Args:
        extractor: an :class:`ExtractAnatomicalRegionsd` (``low_confidence="keep"`` to write flagged boxes).

    Returns (per call): a list of records ``{"source", "image", "boxes" (region dict), "confidence"
    (per region), "score", "method", "low_confidence", "issues"}``.
    """

    def __init__(self, extractor: ExtractAnatomicalRegionsd) -> None:
        super().__init__()
        self.extractor = extractor

    def __call__(self, inputs: torch.Tensor, network: torch.nn.Module, *args: Any, **kwargs: Any) -> list:
        records = []
        for i, name in enumerate(_names_of(inputs)):
            pic = inputs[i].detach().cpu()
            entry = self.extractor.find(pic, name)
            boxes = np.asarray(entry["boxes"], dtype=np.float32)
            keep = not (entry["low_confidence"] and self.extractor.low_confidence == "drop")
            names = region_names()
            records.append(
                {
                    "source": name,
                    "image": pic,
                    "boxes": {n: [round(float(v), 2) for v in boxes[k]] for k, n in enumerate(names)}
                    if keep
                    else {},
                    "confidence": dict(zip(names, [float(c) for c in entry["confidence"]])),
                    "score": float(entry["score"]),
                    "method": entry["method"] if keep else "none",
                    "low_confidence": bool(entry["low_confidence"]),
                    "issues": list(entry["issues"]),
                }
            )
        return records


def _colour(i: int, n: int) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.9, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_region_overlay(
    image: torch.Tensor | np.ndarray,
    boxes: Mapping[str, Sequence[float]],
    path: str | os.PathLike,
    title: str = "",
    warn: bool = False,
) -> Path:
    """Draw region boxes on a picture and save it as PNG.

    Args:
        image: ``[1, W, H]`` or ``[W, H]`` picture in [0, 1] (MONAI order; transposed for the file).
        boxes: region dict in the picture's pixels.
        path: output PNG.
        title: text drawn in the top-left corner.
        warn: draw the title in red (low confidence).

    Returns:
        The written path.
    """
    from PIL import Image, ImageDraw

    arr = np.asarray(image.detach().cpu().float() if isinstance(image, torch.Tensor) else image, np.float32)
    arr = arr.reshape(arr.shape[-2:])
    grey = (np.clip(arr.T, 0, 1) * 255).astype(np.uint8)  # [W, H] -> rows = y
    pic = Image.fromarray(grey).convert("RGB")
    draw = ImageDraw.Draw(pic)
    names = region_names()
    b, m = boxes_from_dict(boxes)
    for i in range(len(names)):
        if m[i]:
            draw.rectangle([float(v) for v in b[i]], outline=_colour(i, len(names)), width=1)
    if title:
        draw.text((2, 2), title, fill=(255, 40, 40) if warn else (255, 255, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pic.save(path)
    return path


class RegionBoxWriter:
    """Write the inferer's records: ``<stem>.json`` + ``<stem>.png`` per picture, ``summary.json`` at the end.

    Args:
        output_dir: folder for the files (created).
        overlay: also write the PNG overlays.
    """

    def __init__(self, output_dir: str | os.PathLike, overlay: bool = True) -> None:
        self.output_dir = Path(output_dir)
        self.overlay = overlay
        self.summary: list[dict] = []
        self._stems: set[str] = set()

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self.reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.write)
        engine.add_event_handler(Events.COMPLETED, self.finish)

    def reset(self, engine: Engine | None = None) -> None:
        self.summary, self._stems = [], set()

    def _stem(self, source: str) -> str:
        name = Path(source).name
        for suffix in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
                break
        stem, k = name or "image", 1
        while stem in self._stems:
            k += 1
            stem = f"{name}_{k}"
        self._stems.add(stem)
        return stem

    def write(self, engine: Engine) -> None:
        output = engine.state.output
        records = output.get(Keys.PRED) if isinstance(output, dict) else None
        if not records:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for rec in records:
            stem = self._stem(rec["source"])
            data = {k: v for k, v in rec.items() if k != "image"}
            data["image_size"] = [int(s) for s in rec["image"].shape[-2:]]
            (self.output_dir / f"{stem}.json").write_text(json.dumps(data, indent=1))
            if self.overlay:
                flag = " LOW CONFIDENCE" if rec["low_confidence"] else ""
                draw_region_overlay(
                    rec["image"],
                    rec["boxes"],
                    self.output_dir / f"{stem}.png",
                    title=f"{rec['method']} {rec['score']:.2f}{flag}",
                    warn=rec["low_confidence"],
                )
            self.summary.append(
                {k: data[k] for k in ("source", "method", "score", "low_confidence")}
                | {"file": f"{stem}.json"}
            )

    def finish(self, engine: Engine) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        (self.output_dir / "summary.json").write_text(json.dumps(self.summary, indent=1))


def load_or_build_atlas(
    atlas_file: str | os.PathLike,
    datalist_file: str | os.PathLike,
    num_images: int = 16,
    size: int = 256,
    split: str = "training",
    rebuild: bool = False,
) -> Atlas:
    """Load ``atlas_file``, or build it from the first ``num_images`` items of ``split`` that have boxes.

    Args:
        atlas_file: ``.npz`` path (written when built).
        datalist_file: datalist JSON.
        num_images: training pictures averaged into the template.
        size: template side.
        split: datalist split to draw from.
        rebuild: build even if the file exists.

    Returns:
        The atlas.

    Raises:
        ValueError: no item of the split has region boxes (names the datalist).
    """
    path = Path(atlas_file)
    if path.is_file() and not rebuild:
        return Atlas.load(path)
    from gkmvlp_monai.data.datalist import load_datalist

    items = [
        it
        for it in load_datalist(str(datalist_file), split)
        if isinstance(it.get("region_boxes"), Mapping) and boxes_from_dict(it["region_boxes"])[1].any()
    ][:num_images]
    if not items:
        raise ValueError(f"{datalist_file}: no {split!r} item has region_boxes to build an atlas from")
    atlas = Atlas.from_datalist_items(items, size=size)
    atlas.save(path)
    return atlas
