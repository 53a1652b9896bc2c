"""Glue that lets MONAI's stock ``SupervisedTrainer`` / ``SupervisedEvaluator`` drive GK-MVLP.

The network takes the whole batch dict and returns a dict of losses and outputs, so:

- :func:`prepare_dict_batch` hands the trainer ``(batch, None)`` with every tensor on the device;
- :func:`select_loss` is the trainer's ``loss_function``: it returns the network's weighted ``loss``;
- :class:`GradientClipping` clips at ``IterationEvents.BACKWARD_COMPLETED`` (after backward, before the
  optimizer step; unscaling first under AMP; only on steps that really update, with accumulation);
- :class:`LossComponents` averages each ``loss_*`` term over the epoch into ``engine.state.metrics``
  (so StatsHandler and MLFlowHandler log the objectives separately).

Gradient accumulation and AMP are ``SupervisedTrainer``'s own (``accumulation_steps``, ``amp``).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.engines.utils import IterationEvents


def prepare_dict_batch(
    batchdata: dict[str, Any],
    device: str | torch.device | None = None,
    non_blocking: bool = False,
    **kwargs: Any,
) -> tuple[dict[str, Any], None]:
    """Move every tensor of a dict batch to ``device``; strings and lists stay as they are.

    Returns:
        ``(batch, None)``: the trainer passes ``batch`` to the network and ``None`` as the target.
    """
    if not isinstance(batchdata, dict):
        raise TypeError(f"GK-MVLP engines expect dict batches, got {type(batchdata).__name__}")
    out = {}
    for k, v in batchdata.items():
        out[k] = (
            v.to(device=device, non_blocking=non_blocking, **kwargs) if isinstance(v, torch.Tensor) else v
        )
    return out, None


def select_loss(pred: dict[str, torch.Tensor], target: Any = None) -> torch.Tensor:
    """The trainer's ``loss_function``: the network output's weighted total ``loss``."""
    if "loss" not in pred:
        raise KeyError(f"network output has no 'loss' (keys: {sorted(pred)})")
    return pred["loss"]


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
        pred = output.get("pred", {}) if isinstance(output, dict) else {}
        for k, v in pred.items():
            if k.startswith("loss") and isinstance(v, torch.Tensor) and v.numel() == 1:
                self._sums[k] += float(v.detach())
        self._count += 1

    def publish(self, engine: Engine) -> None:
        for k, v in self._sums.items():
            engine.state.metrics[self.prefix + k] = v / max(self._count, 1)
