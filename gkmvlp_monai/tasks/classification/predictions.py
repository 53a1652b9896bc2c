"""Classification predictions: one JSON record per image with scores, findings, scope and OOD."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ignite.engine import Engine, Events
from monai.utils import CommonKeys as Keys

from gkmvlp_monai.engine.ood import OODScorer
from gkmvlp_monai.engine.scope import scope_records
from gkmvlp_monai.tasks.classification.engine import scores_and_targets

logger = logging.getLogger(__name__)

#: per-image columns after the class probabilities in ``predictions.csv``
RECORD_COLUMNS = (
    "view",
    "body_part",
    "in_scope",
    "scope_reason",
    "training_domain",
    "ood_score",
    "ood_percentile",
    "ood",
)

_NO_EMBEDDING = {
    "ood_score": None,
    "ood_percentile": None,
    "ood": None,
    "ood_reason": "the inferer gave no image embedding (use ClassificationInferer)",
}


class PredictionsWriter:
    """Write per-image class probabilities, scope and OOD fields when the engine completes.

    ``predictions.csv``: ``image``, one column per class, then :data:`RECORD_COLUMNS` (empty cell: null).
    ``json_path`` (``predictions.json``): the same records (``scores`` by class name) with the training
    domain, the OOD threshold and ``skipped_samples`` at the top.

    Args:
        path: CSV file (parent folders created).
        label_names: column names of the classes.
        activation: see :func:`scores_and_targets`.
        json_path: JSON file (None: CSV only).
        ood_stats: the checkpoint's ``ood_stats.npz`` (None or missing: ``ood`` null with the reason).
        embedding: the embedding kind the network gives (checked against the statistics').
    """

    def __init__(
        self,
        path: str,
        label_names: list[str],
        activation: str | None = "sigmoid",
        json_path: str | None = None,
        ood_stats: str | None = None,
        embedding: str | None = None,
    ) -> None:
        self.path = path
        self.json_path = json_path
        self.label_names = list(label_names)
        self.transform = scores_and_targets(activation)
        self.ood = OODScorer(ood_stats, embedding=embedding)
        self.rows: list[dict[str, Any]] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, lambda e: self.rows.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.update)
        engine.add_event_handler(Events.COMPLETED, self.write)

    def update(self, engine: Engine) -> None:
        output = engine.state.output
        if not isinstance(output, dict) or output.get(Keys.PRED) is None:
            return
        pred = output[Keys.PRED]
        embed = None
        if isinstance(pred, Mapping):  # ClassificationInferer
            pred, embed = pred[Keys.PRED], pred.get("image_embed")
        pred = self.transform({Keys.PRED: pred.detach().float(), Keys.LABEL: None})[0]
        image = engine.state.batch.get(Keys.IMAGE) if isinstance(engine.state.batch, Mapping) else None
        meta = getattr(image, "meta", {}) or {}
        files = meta.get("filename_or_obj", [""] * len(pred))
        if isinstance(files, str):
            files = [files]
        scope = scope_records(image, len(pred))
        if embed is None:
            ood = [{"training_domain": self.ood.training_domain, **_NO_EMBEDDING}] * len(pred)
        else:
            ood = self.ood.records(embed)
        for f, p, sc, oo in zip(files, pred.cpu().tolist(), scope, ood):
            scores = {name: round(float(v), 6) for name, v in zip(self.label_names, p)}
            self.rows.append({"image": str(f), "scores": scores, **sc, **oo})

    def write(self, engine: Engine) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["image", *self.label_names, *RECORD_COLUMNS])
            for r in self.rows:
                cells = ["" if r.get(c) is None else r[c] for c in RECORD_COLUMNS]
                w.writerow([r["image"], *(f"{r['scores'][n]:.6f}" for n in self.label_names), *cells])
        if self.json_path:
            summary = {
                "label_names": self.label_names,
                **self.ood.summary(),
                "images": self.rows,
                "skipped_samples": engine.state.metrics.get("skipped_samples", 0),
                "out_of_scope": sum(not r["in_scope"] for r in self.rows),
                "ood_images": sum(r["ood"] is True for r in self.rows),
            }
            Path(self.json_path).parent.mkdir(parents=True, exist_ok=True)
            Path(self.json_path).write_text(json.dumps(summary, indent=1), encoding="utf-8")
        logger.info("wrote %d predictions to %s", len(self.rows), self.path)
