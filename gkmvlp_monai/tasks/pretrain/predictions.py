"""Inference for the pre-trained GK-MVLP network: embeddings, entity scores and attention maps per image.

Every prediction record (``predictions.json``, and the classification bundle's files) carries the input's
scope and its distance from the training data:

- ``view`` (PA, AP, LL, LATERAL, ...; ``""`` unknown), ``body_part`` (``""`` not recorded), ``in_scope``
  (False for a lateral of a frontal-only model, or another body part loaded with ``allow_non_chest``)
  and ``scope_reason`` (:func:`gkmvlp_monai.engine.scope.scope_records`, from the loader's metadata);
- ``training_domain``, ``ood_score``, ``ood_percentile`` and ``ood``
  (:class:`gkmvlp_monai.engine.ood.OODScorer`; ``ood: null`` with ``ood_reason`` when the checkpoint
  has no statistics).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.inferers import Inferer

from gkmvlp_monai.engine.ood import OODScorer
from gkmvlp_monai.engine.scope import scope_records
from gkmvlp_monai.transforms.regions import prediction_region_inputs

IMAGE_SUFFIXES = (".dcm", ".png", ".jpg", ".jpeg", ".nii", ".nii.gz")


def items_from_folder(folder: str) -> list[dict[str, str]]:
    """Datalist items (``{"image": path}``) for every image file under ``folder``, sorted.

    Raises:
        FileNotFoundError: the folder does not exist or holds no image file (the message names it).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES))
    if not files:
        raise FileNotFoundError(f"no image file ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    return [{"image": str(p)} for p in files]


def inference_items(
    datalist_file: str | None = None, split: str = "test", image_dir: str | None = None
) -> list[dict[str, Any]]:
    """What ``inference.json`` runs on: every image under ``image_dir`` when it is given
    (:func:`items_from_folder`), else the datalist split's items as they are."""
    if image_dir is not None:
        return items_from_folder(image_dir)
    if not datalist_file:
        raise FileNotFoundError("inference needs a datalist_file or an image_dir")
    from gkmvlp_monai.data.datalist import load_datalist

    return load_datalist(datalist_file, split)


def _model(network: torch.nn.Module) -> torch.nn.Module:
    """The GK-MVLP network inside an export wrapper (or the network itself)."""
    return getattr(network, "model", network)


class PretrainInferer(Inferer):
    """Per-image outputs of a GK-MVLP network.

    Images without region boxes, those whose region source
    (:class:`~gkmvlp_monai.transforms.regions.ExtractAnatomicalRegionsd`) is ``"default"`` or whose
    boxes are all unknown, get the default region layout
    (:func:`gkmvlp_monai.transforms.regions.prediction_region_inputs`) and are flagged ``default_regions``.

    Returns a dict: ``image_embed [B, d]``, ``entity_probs [B, E, 3]`` (absent/present/uncertain),
    ``attention [B, E, h, w]``, ``default_regions [B]`` and, when the batch has tokenised reports,
    ``text_embed [B, d]``.
    """

    def __call__(self, inputs: dict[str, Any], network: torch.nn.Module, *args: Any, **kwargs: Any) -> dict:
        model = _model(network)
        image = inputs["image"]
        boxes, mask, use_default = prediction_region_inputs(inputs)
        probs, attn = model.entity_scores(image, boxes, mask)
        out = {
            "image_embed": model.encode_image(image),
            "entity_probs": probs,
            "attention": attn,
            "default_regions": use_default,
        }
        if "input_ids" in inputs and "attention_mask" in inputs:
            out["text_embed"] = model.encode_text(inputs["input_ids"], inputs["attention_mask"])
        return out


class PretrainOutputWriter:
    """Write inference outputs: one ``<image stem>.npz`` per image and a ``predictions.json`` summary.

    Each image's record holds ``image``, ``outputs``, ``default_regions``, ``top_entities``, the scope
    fields of :func:`gkmvlp_monai.engine.scope.scope_records` and the OOD fields of :class:`~gkmvlp_monai.engine.ood.OODScorer`;
    the summary adds ``skipped_samples`` and the training domain, views and OOD threshold.

    Args:
        output_dir: folder for the files.
        entity_names: names in entity order.
        top_k: entities listed per image in the summary (by present probability).
        save_attention: include the attention maps in the ``.npz`` files.
        ood_stats: the checkpoint's ``ood_stats.npz`` (None or missing: ``ood`` null with the reason).
    """

    def __init__(
        self,
        output_dir: str,
        entity_names: list[str],
        top_k: int = 5,
        save_attention: bool = True,
        ood_stats: str | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.entity_names = list(entity_names)
        self.top_k = top_k
        self.save_attention = save_attention
        self.ood = OODScorer(ood_stats, embedding="encode_image")
        self.rows: list[dict[str, Any]] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._start)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._write)
        engine.add_event_handler(Events.COMPLETED, self._finish)

    def _start(self, engine: Engine) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.rows = []

    def _write(self, engine: Engine) -> None:
        output = engine.state.output
        pred = output.get("pred") if isinstance(output, dict) else None
        if not pred:
            return
        image = output.get("image")
        if isinstance(image, dict):  # prepare_dict_batch hands the whole batch over as the engine's "image"
            image = image.get("image")
        names = list(getattr(image, "meta", {}).get("filename_or_obj", [])) if image is not None else []
        probs = pred["entity_probs"].detach().float().cpu().numpy()
        scope = scope_records(image, probs.shape[0])
        ood = self.ood.records(pred["image_embed"])
        for i in range(probs.shape[0]):
            source = str(names[i]) if i < len(names) else f"item_{len(self.rows):06d}"
            stem = Path(source).name.split(".")[0] or f"item_{len(self.rows):06d}"
            arrays = {
                "image_embed": pred["image_embed"][i].detach().float().cpu().numpy(),
                "entity_probs": probs[i],
            }
            if self.save_attention:
                arrays["attention"] = pred["attention"][i].detach().float().cpu().numpy()
            if "text_embed" in pred:
                arrays["text_embed"] = pred["text_embed"][i].detach().float().cpu().numpy()
            np.savez_compressed(self.output_dir / f"{stem}.npz", **arrays)
            present = probs[i, :, 1]
            top = np.argsort(-present)[: self.top_k]
            self.rows.append(
                {
                    "image": source,
                    "outputs": f"{stem}.npz",
                    "default_regions": bool(pred["default_regions"][i]),
                    "top_entities": [
                        {"entity": self.entity_names[e], "present": round(float(present[e]), 4)} for e in top
                    ],
                    **scope[i],
                    **ood[i],
                }
            )

    def _finish(self, engine: Engine) -> None:
        skipped = engine.state.metrics.get("skipped_samples", 0)
        summary = {
            "entities": self.entity_names,
            **self.ood.summary(),
            "images": self.rows,
            "skipped_samples": skipped,
            "out_of_scope": sum(not r["in_scope"] for r in self.rows),
            "ood_images": sum(r["ood"] is True for r in self.rows),
        }
        (self.output_dir / "predictions.json").write_text(json.dumps(summary, indent=1))
