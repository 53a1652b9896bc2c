"""Clip the global gradient norm after backward, before each optimizer update (unscaling first under AMP)."""

from __future__ import annotations

import torch
from ignite.engine import Engine
from monai.engines.utils import IterationEvents


def _is_update_step(engine: Engine) -> bool:
    acc = getattr(engine, "accumulation_steps", 1)
    if acc <= 1:
        return True
    length = engine.state.epoch_length
    i = (engine.state.iteration - 1) % length if length else engine.state.iteration - 1
    return (i + 1) % acc == 0 or (length is not None and i + 1 == length)


class GradientClipping:
    """Clip the global gradient norm before each optimizer update.

    Args:
        max_norm: maximum total L2 norm; ``<= 0`` disables clipping.
    """

    def __init__(self, max_norm: float = 1.0) -> None:
        self.max_norm = max_norm

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(IterationEvents.BACKWARD_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if self.max_norm <= 0 or not _is_update_step(engine):
            return
        scaler = getattr(engine, "scaler", None)
        if getattr(engine, "amp", False) and scaler is not None:
            scaler.unscale_(engine.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(engine.network.parameters(), self.max_norm)
        engine.state.grad_norm = float(norm)
