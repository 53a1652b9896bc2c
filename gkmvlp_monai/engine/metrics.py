"""Metrics shared by several tasks: multi-label AUC with ignored entries (built on MONAI's ROC AUC), a
mean of a scalar output, and :func:`from_pred`, the output transform every metric uses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced
from monai.metrics import compute_roc_auc
from monai.utils import CommonKeys as Keys

from gkmvlp_monai.engine.accumulate import ScoreTargetAccumulator


def masked_multilabel_auc(
    probs: torch.Tensor, targets: torch.Tensor, ignore_value: float = -1.0
) -> list[float | None]:
    """Per-class ROC AUC where entries equal to ``ignore_value`` are left out.

    Args:
        probs: ``[N, C]`` scores.
        targets: ``[N, C]`` with 1 positive, 0 negative, ``ignore_value`` ignored.
        ignore_value: target value to leave out.

    Returns:
        One AUC per class; ``None`` for a class whose kept targets are all one value (AUC undefined).
    """
    if probs.shape != targets.shape or probs.ndim != 2:
        raise ValueError(f"probs {tuple(probs.shape)} and targets {tuple(targets.shape)} must both be [N, C]")
    out: list[float | None] = []
    for c in range(probs.shape[1]):
        keep = targets[:, c] != ignore_value
        y = targets[keep, c]
        if y.numel() == 0 or y.min() == y.max():
            out.append(None)
            continue
        out.append(float(compute_roc_auc(probs[keep, c].float(), y.float())))
    return out


def macro_auc(per_class: Sequence[float | None]) -> float:
    """Mean of the defined per-class AUCs (NaN when none is defined)."""
    vals = [v for v in per_class if v is not None]
    return float(sum(vals) / len(vals)) if vals else float("nan")


class MultiLabelAUC(ScoreTargetAccumulator):
    """Ignite metric: per-class and macro AUC over an epoch.

    ``output_transform`` must return ``(probs [B, C], targets [B, C])`` with ignored entries set to -1.

    Args:
        names: class names, used in the published keys ``"{prefix}AUC_{name}"``.
        prefix: key prefix.
        top_k: if set, the macro AUC (``"{prefix}macro_AUC"``) averages only the ``top_k`` classes with the
            most positives in the evaluated data (e.g. the 8 most frequent findings); all per-class AUCs are
            still published, and the chosen classes are logged.
        candidates: names eligible for the ``top_k`` choice (e.g. abnormal findings only; default all).
    """

    def __init__(
        self,
        names: Sequence[str],
        prefix: str = "",
        top_k: int | None = None,
        candidates: Sequence[str] | None = None,
        output_transform=lambda x: x,
        device="cpu",
    ) -> None:
        self.names = list(names)
        self.prefix = prefix
        self.top_k = top_k
        unknown = sorted(set(candidates or []) - set(self.names))
        if unknown:
            raise ValueError(f"candidates {unknown} are not among the class names")
        self.candidates = (
            [self.names.index(n) for n in candidates] if candidates else list(range(len(self.names)))
        )
        self.chosen: list[str] = []
        super().__init__(output_transform=output_transform, device=device, metrics_result_mode="flatten")

    def compute(self) -> dict[str, float]:
        probs, targets = self.collected()
        if probs.shape[1] != len(self.names):
            raise ValueError(f"got {probs.shape[1]} classes, expected {len(self.names)} names")
        per = masked_multilabel_auc(probs, targets)
        chosen = list(self.candidates)
        if self.top_k is not None:
            positives = (targets == 1).sum(0)[chosen]
            chosen = [
                chosen[i] for i in positives.argsort(descending=True, stable=True)[: self.top_k].tolist()
            ]
        self.chosen = [self.names[i] for i in chosen]
        out = {f"{self.prefix}AUC_{n}": v for n, v in zip(self.names, per) if v is not None}
        out[f"{self.prefix}macro_AUC"] = macro_auc([per[i] for i in chosen])
        return out


class MeanScalar(Metric):
    """Mean of a scalar network output (e.g. the validation LM loss) over an epoch, skipping skipped batches."""

    @reinit__is_reduced
    def reset(self) -> None:
        self._sum = 0.0
        self._n = 0

    @reinit__is_reduced
    def update(self, output) -> None:
        if output is None:
            return
        self._sum += float(output.detach().float().mean())
        self._n += 1

    def compute(self) -> float:
        if self._n == 0:
            raise RuntimeError("MeanScalar needs at least one batch before compute()")
        return self._sum / self._n


def from_pred(*names: str, keys: Sequence[str] = ()) -> Callable[[Any], Any]:
    """Output transform for metrics: the ``pred`` entries named as a tuple (``None`` for a skipped batch).

    Args:
        names: entry names (``from_pred("image_embed", "text_embed")`` in Python).
        keys: the same as a list, for bundle configs (``{"_target_": ..., "keys": ["loss_lm"]}``).

    Returns:
        A function of the engine output: one value for one name, a tuple for several.
    """
    wanted = tuple(names) or tuple(keys)
    if not wanted:
        raise ValueError("from_pred needs at least one entry name")

    def _get(output: dict) -> Any:
        pred = output.get(Keys.PRED) if isinstance(output, dict) else None
        if pred is None:
            return None
        missing = [k for k in wanted if k not in pred]
        if missing:
            raise KeyError(f"network output lacks {missing} (has {sorted(pred)})")
        values = tuple(pred[k] for k in wanted)
        return values[0] if len(values) == 1 else values

    return _get


def from_output(key: str) -> Callable[[Any], Any]:
    """Output transform for ``StatsHandler``/``MLFlowHandler``: ``engine.state.output[key]`` (e.g. the loss).

    Args:
        key: entry of the engine output.

    Returns:
        A function of the engine output.
    """

    def _get(output: dict) -> Any:
        return output[key]

    return _get
