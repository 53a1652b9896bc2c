"""Report generation predictions: the generated and reference reports of an evaluation, as JSON."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

from ignite.engine import Engine, Events
from monai.utils import CommonKeys as Keys

logger = logging.getLogger(__name__)


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
