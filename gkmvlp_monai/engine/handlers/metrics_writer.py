"""Write an engine's scalar metrics to a JSON file when it completes."""

from __future__ import annotations

from ignite.engine import Events


class MetricsJSONWriter:
    """Write an engine's scalar metrics to a JSON file when it completes (``eval/metrics.json``).

    Every bundle's ``evaluate.json`` attaches one, so figures can be collected without parsing logs.

    Args:
        path: output JSON file (parent folders are created).
        extra: constant fields to record beside the metrics (e.g. split, checkpoint, data fraction).
    """

    def __init__(self, path: str, extra: dict | None = None) -> None:
        self.path = path
        self.extra = dict(extra or {})

    def attach(self, engine) -> None:

        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine) -> None:
        import json
        import math
        from pathlib import Path

        metrics = {}
        for k, v in engine.state.metrics.items():
            try:
                f = float(v)
            except (TypeError, ValueError):
                continue
            metrics[k] = None if math.isnan(f) else f
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        Path(self.path).write_text(json.dumps({**self.extra, "metrics": metrics}, indent=1, sort_keys=True))
