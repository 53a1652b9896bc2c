"""Epoch accumulators shared by the Ignite metrics: score/target tensor pairs and hypothesis/reference texts.

Each collects one epoch's outputs (``reset`` at epoch start, ``update`` per batch) and hands them to the
subclass's ``compute``; a ``None`` output (a batch whose samples were all skipped as bad input) is ignored,
and ``compute`` before any batch raises a ``RuntimeError`` naming the metric.
"""

from __future__ import annotations

from typing import Any

import torch
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced


class ScoreTargetAccumulator(Metric):
    """Accumulates ``(scores, targets)`` tensor pairs over an epoch (on the CPU, scores as float32).

    Subclasses call :meth:`collected` in ``compute``. ``target_dtype`` (class attribute) casts targets;
    ``None`` keeps their dtype (e.g. integer class indices).
    """

    target_dtype: torch.dtype | None = torch.float32

    @reinit__is_reduced
    def reset(self) -> None:
        self._p: list[torch.Tensor] = []
        self._t: list[torch.Tensor] = []

    @reinit__is_reduced
    def update(self, output: Any) -> None:
        if output is None:  # a skipped (all-bad) batch
            return
        p, t = output
        t = t.detach()
        self._p.append(p.detach().float().cpu())
        self._t.append((t if self.target_dtype is None else t.to(self.target_dtype)).cpu())

    def collected(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The epoch's ``(scores [N, ...], targets [N, ...])``.

        Raises:
            RuntimeError: no batch was seen.
        """
        if not self._p:
            raise RuntimeError(f"{type(self).__name__} needs at least one batch before compute()")
        return torch.cat(self._p), torch.cat(self._t)


class TextPairAccumulator(Metric):
    """Accumulates ``(hypotheses, references)`` string lists over an epoch (generated vs reference text).

    Subclasses call :meth:`collected` in ``compute``.
    """

    @reinit__is_reduced
    def reset(self) -> None:
        self._hyp: list[str] = []
        self._ref: list[str] = []

    @reinit__is_reduced
    def update(self, output: Any) -> None:
        if output is None:
            return
        hyp, ref = output
        if len(hyp) != len(ref):
            raise ValueError(f"{len(hyp)} generated texts but {len(ref)} references in a batch")
        self._hyp.extend(str(h) for h in hyp)
        self._ref.extend(str(r) for r in ref)

    def collected(self) -> tuple[list[str], list[str]]:
        """The epoch's ``(hypotheses, references)``.

        Raises:
            RuntimeError: no text was seen.
        """
        if not self._hyp:
            raise RuntimeError(f"{type(self).__name__} needs at least one text before compute()")
        return self._hyp, self._ref
