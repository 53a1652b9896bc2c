"""The generic trainer and evaluator: MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator`` over dict batches.

Every network of the project takes the whole batch dict and returns a dict (losses and outputs), so:

- :func:`prepare_dict_batch` hands the engine ``(batch, None)`` with every tensor on the device;
- :func:`select_loss` is the trainer's ``loss_function``: it returns the network's weighted ``loss``;
- :class:`CXRTrainer` / :class:`CXREvaluator` pass over a batch whose every sample was bad, and the
  trainer runs CPU bfloat16 autocast where the CPU supports it (``cpu_bf16``).

Gradient accumulation and AMP are ``SupervisedTrainer``'s own (``accumulation_steps``, ``amp``); the
handlers are in :mod:`gkmvlp_monai.engine.handlers`, one per file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from ignite.engine import Engine
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.utils import CommonKeys as Keys

from gkmvlp_monai.data.dataset import is_empty_batch


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


def cpu_bf16_supported() -> bool:
    """Whether this CPU runs bfloat16 matmuls and convolutions natively (oneDNN with AVX512-BF16 / AMX)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without the oneDNN ops
        return False


class CXRTrainer(SupervisedTrainer):
    """``SupervisedTrainer`` that passes over a batch whose every sample was bad (counted, not fatal).

    Everything else (AMP, gradient accumulation, events) is the stock MONAI iteration. MONAI's ``amp`` is
    CUDA autocast with a gradient scaler; ``cpu_bf16`` is its CPU counterpart.

    Args:
        cpu_bf16: run the forward pass (and so the backward) of each iteration on a CPU device under
            ``torch.autocast("cpu", dtype=torch.bfloat16)``: matmuls and convolutions in bfloat16, losses,
            softmax and normalisation in float32, weights and optimizer in float32 (no gradient scaler: bf16
            has float32's range). Only where the CPU supports bf16 natively (:func:`cpu_bf16_supported`;
            elsewhere it would be slower than float32, so a warning is logged and float32 is kept); ignored
            on CUDA (use ``amp``).
        args: ``SupervisedTrainer`` positional arguments.
        kwargs: ``SupervisedTrainer`` keyword arguments.
    """

    def __init__(self, *args: Any, cpu_bf16: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cpu_bf16 = False
        if cpu_bf16 and torch.device(self.state.device).type == "cpu":
            if cpu_bf16_supported():
                self.cpu_bf16 = True
            else:
                self.logger.warning("cpu_bf16: this CPU has no native bfloat16 support; training in float32")

    def _iteration(self, engine: SupervisedTrainer, batchdata: dict[str, Any]) -> dict:
        if is_empty_batch(batchdata):
            engine.state.output = {Keys.PRED: None, Keys.LOSS: torch.tensor(float("nan"))}
            return engine.state.output
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cpu_bf16):
            return super()._iteration(engine, batchdata)


class CXREvaluator(SupervisedEvaluator):
    """``SupervisedEvaluator`` that passes over a batch whose every sample was bad (metrics skip it)."""

    def _iteration(self, engine: SupervisedEvaluator, batchdata: dict[str, Any]) -> dict:
        if is_empty_batch(batchdata):
            engine.state.output = {Keys.PRED: None}
            return engine.state.output
        return super()._iteration(engine, batchdata)


def write_params(
    output_dir: str, params: dict[str, Any], filename: str = "params.json", enabled: bool = True
) -> str:
    """Write the resolved run parameters as JSON (an MLflow artifact) to ``<output_dir>/<filename>``.

    Args:
        output_dir: run output folder (created).
        params: the parameters.
        filename: file name inside ``output_dir``.
        enabled: write nothing when false (DDP ranks other than 0).

    Returns:
        The file path.
    """
    import json
    from pathlib import Path

    path = Path(output_dir) / filename
    if enabled:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(params, indent=1, default=str))
    return str(path)


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    max_epochs: int,
    dataloader: Any,
    epoch_length: int | None = None,
    warmup_fraction: float = 0.05,
) -> Any:
    """MONAI's ``WarmupCosineSchedule`` over the whole run, stepped every iteration.

    Args:
        optimizer: the optimizer.
        max_epochs: epochs of the run.
        dataloader: the training loader (its length is an epoch unless ``epoch_length`` is given).
        epoch_length: iterations per epoch, when not the loader's length.
        warmup_fraction: share of all steps spent warming up (at least one step).

    Returns:
        The scheduler (``warmup_steps = max(1, int(warmup_fraction * max_epochs * per_epoch))``).
    """
    from monai.optimizers import WarmupCosineSchedule

    per_epoch = epoch_length or len(dataloader)
    return WarmupCosineSchedule(
        optimizer,
        warmup_steps=max(1, int(warmup_fraction * max_epochs * per_epoch)),
        t_total=max_epochs * per_epoch,
    )


def every_n_iterations(n: int) -> Callable[[Engine, int], bool]:
    """Event filter for ``StatsHandler``/``MLFlowHandler`` ``iteration_log``: true every ``n`` iterations."""

    def _filter(engine: Engine, event: int) -> bool:
        return engine.state.iteration % n == 0

    return _filter
