"""Count the bad samples the robust datasets skipped and report them at the end of each epoch."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ignite.engine import Engine, Events


class SkippedSamplesHandler:
    """Count the bad samples the robust datasets skipped and report them at the end of each epoch.

    Reads ``batch["skipped_samples"]`` / ``batch["skipped_files"]`` (written by
    ``gkmvlp_monai.data.dataset.collate_skip_bad``) when each batch arrives, before MONAI engines
    decollate it. At EPOCH_COMPLETED it sets ``engine.state.metrics["skipped_samples"]`` and logs the
    count with the skipped file names.

    Args:
        name: logger name.
        max_files_logged: at most this many file names in the epoch log line.
    """

    def __init__(self, name: str = "gkmvlp_monai.skipped", max_files_logged: int = 20) -> None:
        self.logger = logging.getLogger(name)
        self.max_files_logged = max_files_logged
        self.count = 0
        self.files: list[str] = []
        self.history: list[int] = []

    def attach(self, engine: Engine) -> None:
        """Register the handler's events on ``engine``.

        Args:
            engine: an Ignite (or MONAI) engine.
        """
        engine.add_event_handler(Events.EPOCH_STARTED, self.reset)
        engine.add_event_handler(Events.GET_BATCH_COMPLETED, self.update)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.report)

    def reset(self, engine: Engine | None = None) -> None:
        """Start a new epoch's count."""
        self.count, self.files = 0, []

    def update(self, engine: Engine) -> None:
        """Add the skips recorded in the batch just fetched."""
        batch: Any = engine.state.batch
        if isinstance(batch, Mapping):
            self.count += int(batch.get("skipped_samples", 0))
            self.files.extend(str(f) for f in batch.get("skipped_files", []))

    def report(self, engine: Engine) -> None:
        """Publish the epoch's count in ``engine.state.metrics["skipped_samples"]`` and log it."""
        engine.state.metrics["skipped_samples"] = self.count
        self.history.append(self.count)
        shown = self.files[: self.max_files_logged]
        more = f" (+{len(self.files) - len(shown)} more)" if len(self.files) > len(shown) else ""
        self.logger.info(
            "epoch %d: skipped %d bad sample(s)%s%s",
            engine.state.epoch,
            self.count,
            f": {', '.join(shown)}" if shown else "",
            more,
        )
