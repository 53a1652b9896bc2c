"""Report generation with the GK-MVLP report decoder: data selection, the generation inferer, the writer of
generated reports and a traceable export wrapper.

Training is the pre-training glue as is (``CXRTrainer``, ``prepare_dict_batch``, ``select_loss``) with
only the LM objective switched on. Validation and evaluation decode reports with
:class:`ReportGenerationInferer` (greedy or beam search with length and repetition controls) and score
them with :class:`gkmvlp_monai.tasks.report_generation.metrics.CaptionMetrics` and
:class:`gkmvlp_monai.tasks.report_generation.clinical.ClinicalEfficacy`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from monai.inferers import Inferer
from monai.utils import CommonKeys as Keys
from torch import nn

from gkmvlp_monai.data.datalist import load_datalist
from gkmvlp_monai.transforms.regions import prediction_region_inputs

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- data
def with_ids(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of datalist items with ``image_id`` (the file stem when the item has none) and
    ``image_path`` (the image file), so the writers can name each generated report."""
    out = []
    for item in items:
        if "image" not in item:
            raise KeyError(f"datalist item without 'image': {sorted(item)}")
        d = dict(item)
        path = str(d["image"])
        d.setdefault("image_id", Path(path).name.split(".")[0])
        d["image_id"] = str(d["image_id"] or Path(path).name.split(".")[0])
        d["image_path"] = path
        d.setdefault("report", "")
        out.append(d)
    return out


def training_items(datalist_file: str, fraction: float | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Training items, optionally a fraction of them (data-efficiency studies).

    Uses the datalist's own ``training_<p>pct`` key when the adapter wrote it; otherwise the same nested,
    seeded subset rule (:func:`gkmvlp_monai.data.datalist.training_fractions`) is applied to ``training``.

    Args:
        datalist_file: datalist JSON.
        fraction: ``None`` or ``1.0`` for all training items, else a fraction in (0, 1).
        seed: subset seed (only when the datalist has no key for this fraction).

    Returns:
        items with ``image_id``/``image_path`` (see :func:`with_ids`).

    Raises:
        ValueError: fraction outside (0, 1].
    """
    return with_ids(load_datalist(datalist_file, "training", fraction=fraction, seed=seed))


def evaluation_items(datalist_file: str, split: str, max_items: int | None = None) -> list[dict[str, Any]]:
    """Items of ``split``; the first ``max_items`` only when given (a fixed, documented subset)."""
    items = with_ids(load_datalist(datalist_file, split))
    return items if max_items is None else items[: int(max_items)]


def inference_items(
    datalist_file: str | None = None,
    split: str = "test",
    max_items: int | None = None,
    image_dir: str | None = None,
) -> list[dict[str, Any]]:
    """What ``inference.json`` reports on: every image under ``image_dir`` when it is given, else the
    :func:`evaluation_items` of the datalist split (both with ``image_id``/``image_path``)."""
    if image_dir is not None:
        from gkmvlp_monai.tasks.pretrain.predictions import items_from_folder

        return with_ids(items_from_folder(image_dir))
    if not datalist_file:
        raise FileNotFoundError("inference needs a datalist_file or an image_dir")
    return evaluation_items(datalist_file, split, max_items)


# ----------------------------------------------------------------------------------------- inferer
def _model(network: nn.Module) -> nn.Module:
    """The GK-MVLP network inside DDP (``module``) or an export wrapper (``model``)."""
    network = getattr(network, "module", network)
    return getattr(network, "model", network)


class ReportGenerationInferer(Inferer):
    """Generate reports for a batch (greedy with ``num_beams=1``, else beam search).

    Images without region boxes (region source ``"default"``) get the default region layout
    (:func:`gkmvlp_monai.transforms.regions.prediction_region_inputs`).

    Args:
        num_beams: beams (1: greedy).
        max_length: most generated tokens (capped by the decoder's position table minus BOS).
        min_length: EOS is blocked before this many tokens.
        repetition_penalty: CTRL-style penalty on already generated tokens (1.0 off).
        length_penalty: beam search ranks finished hypotheses by ``score / length ** length_penalty``.
        compute_loss: also return the teacher-forced LM loss of the batch's reports (``loss_lm``).

    Returns (``__call__``): dict with ``generated`` (list of str), ``generated_ids`` ``[B, T]``,
    ``report`` (reference texts, ``""`` when absent), ``image_id`` and, with ``compute_loss``, ``loss_lm``.
    """

    def __init__(
        self,
        num_beams: int = 1,
        max_length: int = 64,
        min_length: int = 1,
        repetition_penalty: float = 1.0,
        length_penalty: float = 1.0,
        compute_loss: bool = False,
    ) -> None:
        super().__init__()
        if num_beams < 1 or max_length < 1 or min_length < 0:
            raise ValueError(
                f"need num_beams >= 1, max_length >= 1, min_length >= 0; got {num_beams}, {max_length}, "
                f"{min_length}"
            )
        if repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {repetition_penalty}")
        self.num_beams = num_beams
        self.max_length = max_length
        self.min_length = min_length
        self.repetition_penalty = repetition_penalty
        self.length_penalty = length_penalty
        self.compute_loss = compute_loss

    def __call__(self, inputs: dict[str, Any], network: nn.Module, *args: Any, **kwargs: Any) -> dict:
        model = _model(network)
        if getattr(model, "decoder", None) is None:
            raise RuntimeError("the network has no report decoder (build it with weight_lm > 0)")
        image = inputs["image"]
        boxes, mask, _ = prediction_region_inputs(inputs)
        vis = model.visual_features(image, boxes, mask)
        ids = model.decoder.generate(
            vis["memory"],
            max_length=self.max_length,
            num_beams=self.num_beams,
            repetition_penalty=self.repetition_penalty,
            min_length=self.min_length,
            length_penalty=self.length_penalty,
        )
        b = image.shape[0]
        out: dict[str, Any] = {
            "generated": model.tokenizer.batch_decode(ids.tolist(), skip_special_tokens=True),
            "generated_ids": ids,
            "report": [str(r) for r in inputs.get("report", [""] * b)],
            "image_id": [str(i) for i in inputs.get("image_id", [""] * b)],
        }
        if self.compute_loss and "input_ids" in inputs and "attention_mask" in inputs:
            tokens, am = inputs["input_ids"], inputs["attention_mask"]
            logits = model.decoder(tokens[:, :-1], vis["memory"], am[:, :-1])
            out["loss_lm"] = model.lm_loss(logits, tokens, am)
        return out


def generated_and_references(output: dict) -> tuple[list[str], list[str]] | None:
    """Metric output transform: ``(generated, references)`` of an evaluator output (``None``: skipped)."""
    pred = output.get(Keys.PRED) if isinstance(output, dict) else None
    if pred is None:
        return None
    return pred["generated"], pred["report"]
