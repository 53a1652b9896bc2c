"""Average each ``loss_*`` term of the network output over the epoch into ``engine.state.metrics``."""

from __future__ import annotations

from collections import defaultdict

import torch
from ignite.engine import Engine, Events


class LossComponents:
    """Average every ``loss*`` scalar of the network output over the epoch into ``engine.state.metrics``.

    Args:
        prefix: key prefix, e.g. ``"train_"`` gives ``train_loss_itc``.
    """

    def __init__(self, prefix: str = "train_") -> None:
        self.prefix = prefix
        self._sums: dict[str, float] = defaultdict(float)
        self._count = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self.reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.update)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.publish)

    def reset(self, engine: Engine) -> None:
        self._sums.clear()
        self._count = 0

    def update(self, engine: Engine) -> None:
        output = engine.state.output
        pred = output.get("pred") if isinstance(output, dict) else None
        if not pred:  # a batch whose every sample was bad: nothing to average
            return
        for k, v in pred.items():
            if k.startswith("loss") and isinstance(v, torch.Tensor) and v.numel() == 1:
                self._sums[k] += float(v.detach())
        self._count += 1

    def publish(self, engine: Engine) -> None:
        for k, v in self._sums.items():
            engine.state.metrics[self.prefix + k] = v / max(self._count, 1)
