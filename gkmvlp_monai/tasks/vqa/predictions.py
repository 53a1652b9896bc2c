"""VQA predictions: every question's answers (classifier, generated, hybrid) as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ignite.engine import Engine, Events
from monai.utils import CommonKeys as Keys


class VQAPredictionWriter:
    """Write every question's answers to a JSON list when the evaluator completes.

    Each row: ``question``, ``answer`` (normalised reference), ``answer_type``, ``pred_answer``,
    ``gen_answer``, ``hybrid_answer``, ``confidence`` (classifier probability of its answer).

    Args:
        path: output JSON file (parent folders are created).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self.reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.update)
        engine.add_event_handler(Events.COMPLETED, self.write)

    def reset(self, engine: Engine | None = None) -> None:
        self.rows = []

    def update(self, engine: Engine) -> None:
        pred = engine.state.output.get(Keys.PRED) if isinstance(engine.state.output, dict) else None
        if pred is None:
            return
        conf = pred["answer_probs"].max(-1).values.tolist()
        for i, q in enumerate(pred["question"]):
            self.rows.append(
                {
                    "question": q,
                    "answer": pred["answer_text"][i],
                    "answer_type": "CLOSED" if bool(pred["is_closed"][i]) else "OPEN",
                    "pred_answer": pred["pred_answer"][i],
                    "gen_answer": pred["gen_answer"][i],
                    "hybrid_answer": pred["hybrid_answer"][i],
                    "confidence": round(float(conf[i]), 4),
                }
            )

    def write(self, engine: Engine | None = None) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        Path(self.path).write_text(json.dumps(self.rows, indent=1))
