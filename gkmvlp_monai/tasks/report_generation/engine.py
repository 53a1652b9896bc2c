"""Report generation with the GK-MVLP report decoder: data selection, the generation inferer, the writer of
generated reports and a traceable export wrapper.

Training is the pre-training glue as is (``CXRTrainer``, ``prepare_dict_batch``, ``select_loss``) with
only the LM objective switched on. Validation and evaluation decode reports with
:class:`ReportGenerationInferer` (greedy or beam search with length and repetition controls) and score
them with :class:`gkmvlp_monai.tasks.report_generation.metrics.CaptionMetrics` and
:class:`gkmvlp_monai.tasks.report_generation.clinical.ClinicalEfficacy`.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.inferers import Inferer
from monai.utils import CommonKeys as Keys
from torch import nn

from gkmvlp_monai.core.boxes import default_layout, fixed_region_inputs
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


# ------------------------------------------------------------------------------------------ writer
class GeneratedReportsWriter:
    """Collect the generated reports of an evaluation run and write them when it completes.

    Files in ``output_dir``: ``generated_reports.json`` (a list of ``{image_id, image, generated,
    reference}``) and ``generated_reports.csv`` (same columns).

    Args:
        output_dir: folder (created).
        filename: base name of the two files.
    """

    def __init__(self, output_dir: str, filename: str = "generated_reports") -> None:
        self.output_dir = output_dir
        self.filename = filename
        self.rows: list[dict[str, str]] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self.reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.update)
        engine.add_event_handler(Events.COMPLETED, self.write)

    def reset(self, engine: Engine | None = None) -> None:
        self.rows = []

    def update(self, engine: Engine) -> None:
        output = engine.state.output
        pred = output.get(Keys.PRED) if isinstance(output, dict) else None
        if pred is None:
            return
        batch = engine.state.batch if isinstance(engine.state.batch, dict) else {}
        paths = batch.get("image_path", [""] * len(pred["generated"]))
        for i, text in enumerate(pred["generated"]):
            self.rows.append(
                {
                    "image_id": pred["image_id"][i],
                    "image": str(paths[i]),
                    "generated": text,
                    "reference": pred["report"][i],
                }
            )

    def write(self, engine: Engine | None = None) -> tuple[str, str]:
        out = Path(self.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        json_path, csv_path = out / f"{self.filename}.json", out / f"{self.filename}.csv"
        json_path.write_text(json.dumps(self.rows, indent=1), encoding="utf-8")
        with csv_path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["image_id", "image", "generated", "reference"])
            writer.writeheader()
            writer.writerows(self.rows)
        logger.info("wrote %d generated reports to %s", len(self.rows), json_path)
        return str(json_path), str(csv_path)


# ------------------------------------------------------------------------------------------ export
class GKMVLPReportGenerator(nn.Module):
    """Image-only report generator for ``verify_net_in_out`` and traced ``ckpt_export``.

    ``image [B, 1, S, S] -> token ids [B, max_length]`` by greedy decoding over a fixed number of steps
    (tokens after EOS are ``pad_id``), so ``torch.jit.trace`` records the whole loop; region boxes are the
    default layout. Decode the ids with the network's tokenizer (``skip_special_tokens=True``). The state
    dict keys are those of the wrapped GK-MVLP network (no prefix), so ``models/model.pt`` loads directly.

    Args:
        model: a GK-MVLP network with a report decoder.
        image_size: side the default boxes are made for (inputs of another size get scaled boxes).
        max_length: generated tokens, at most the decoder's position table minus BOS (the output's fixed
            second dimension).
        repetition_penalty: CTRL-style repetition penalty (1.0 off).

    Raises:
        ValueError: no decoder, or ``max_length`` out of range.
    """

    def __init__(
        self, model: nn.Module, image_size: int, max_length: int = 32, repetition_penalty: float = 1.0
    ) -> None:
        super().__init__()
        if getattr(model, "decoder", None) is None:
            raise ValueError("GKMVLPReportGenerator needs a network with a report decoder (weight_lm > 0)")
        from gkmvlp_monai.models.gkmvlp import share_state

        share_state(self, model)  # the network's keys and checkpoint handling (old key names included)
        object.__setattr__(self, "_gkmvlp", model)  # not a sub-module: keys stay un-prefixed
        self.register_buffer("region_boxes", default_layout(image_size), False)
        self.image_size = image_size
        if not 1 <= max_length <= model.decoder.max_length - 1:
            raise ValueError(
                f"max_length {max_length} outside [1, {model.decoder.max_length - 1}] (the decoder's position "
                "table minus BOS; set export_max_length and the metadata's pred num_channels to match)"
            )
        self.max_length = max_length
        self.repetition_penalty = repetition_penalty

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``[B, 1, S, S]`` image -> ``[B, max_length]`` int64 token ids (BOS excluded)."""
        from gkmvlp_monai.models.decoder import apply_repetition_penalty

        model, dec = self._gkmvlp, self._gkmvlp.decoder
        b = image.shape[0]
        boxes, mask = fixed_region_inputs(image, self.region_boxes, self.image_size)
        memory = model.visual_features(image, boxes, mask)["memory"]
        seq = torch.full((b, 1), dec.bos_id, dtype=torch.long, device=image.device)
        done = torch.zeros(b, dtype=torch.bool, device=image.device)
        pad = torch.full((b,), dec.pad_id, dtype=torch.long, device=image.device)
        for _ in range(self.max_length):
            logits = dec.project(dec.hidden(seq, memory)[:, -1])
            logits = apply_repetition_penalty(logits, seq, self.repetition_penalty)
            nxt = torch.where(done, pad, logits.argmax(-1))
            seq = torch.cat((seq, nxt[:, None]), 1)
            done = done | (nxt == dec.eos_id)
        return seq[:, 1:]
