"""Localization metrics: pointing game, IoU and Dice of thresholded heat maps, threshold selection.

Inputs are per-finding score maps ``y_pred [B, K, W, H]`` (heat maps or probabilities, higher = more
likely the finding) and binary targets ``y [B, K, W, H]`` (one channel per target finding). A
(sample, channel) pair counts only when its target is non-empty: localization is asked only where
the finding is drawn. Figures are means over those pairs.

- **Pointing game**: the map's maximum falls inside the target. With several maximal pixels (e.g. a
  flat map), the hit is the fraction of maximal pixels inside the target, so a flat map scores the
  target's area fraction (chance level), never a free hit.
- **Dice / IoU** of the map thresholded at ``t`` (``score >= t``) against the target. One pass records
  them for a grid of candidate thresholds, so the threshold can be chosen on validation
  (:meth:`LocalizationMetric.best_threshold`, best mean Dice) and applied to test. The sweep counts each
  pixel once (:func:`dice_iou_sweep`: the pixel's bucket among the sorted thresholds, then cumulative
  counts), which gives exactly ``compute_dice`` / ``compute_iou`` at every candidate at the cost of one;
  the figures at the threshold in use (the one reported) are computed by ``monai.metrics.compute_dice`` /
  ``compute_iou`` themselves. (Calling the MONAI functions once per candidate on the evaluator's
  ``MetaTensor`` batches took ~90 % of a localization evaluation on CPU.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.handlers import IgniteMetricHandler
from monai.metrics import CumulativeIterationMetric, compute_dice, compute_iou

__all__ = [
    "DEFAULT_THRESHOLDS",
    "pointing_game",
    "dice_iou_at_thresholds",
    "dice_iou_sweep",
    "select_threshold",
    "LocalizationMetric",
    "LocalizationMetricHandler",
]

#: candidate thresholds for maps in [0, 1] (min-max normalised heat maps, sigmoid probabilities)
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))


def _check(y_pred: torch.Tensor, y: torch.Tensor) -> None:
    if y_pred.shape != y.shape or y_pred.ndim < 3:
        raise ValueError(
            f"localization metrics need score maps and targets of one shape [B, K, ...], got "
            f"{tuple(y_pred.shape)} and {tuple(y.shape)}"
        )


def pointing_game(y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pointing-game hits per (sample, channel).

    Args:
        y_pred: ``[B, K, *spatial]`` scores.
        y: ``[B, K, *spatial]`` binary targets.

    Returns:
        float ``[B, K]``: 1 when the maximum is inside the target, the inside fraction of the maximal
        pixels on ties, NaN where the target is empty.
    """
    _check(y_pred, y)
    p = y_pred.detach().float().flatten(2)
    t = y.detach().flatten(2) > 0
    peak = p == p.amax(-1, keepdim=True)
    hits = (peak & t).sum(-1).float() / peak.sum(-1).clamp_min(1).float()
    return torch.where(t.any(-1), hits, torch.full_like(hits, float("nan")))


def dice_iou_at_thresholds(
    y_pred: torch.Tensor, y: torch.Tensor, thresholds: Sequence[float] = DEFAULT_THRESHOLDS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dice and IoU of ``y_pred >= t`` against ``y`` for each threshold (MONAI ``compute_dice``/``compute_iou``).

    Args:
        y_pred: ``[B, K, *spatial]`` scores.
        y: ``[B, K, *spatial]`` binary targets.
        thresholds: candidate thresholds.

    Returns:
        ``(dice, iou)``, each float ``[B, K, T]``; NaN where the target is empty.
    """
    _check(y_pred, y)
    scores = _plain(y_pred)
    target = (_plain(y) > 0).float()
    dice, iou = [], []
    for t in thresholds:
        pred = (scores >= t).float()
        dice.append(compute_dice(pred, target, include_background=True, ignore_empty=True))
        iou.append(compute_iou(pred, target, include_background=True, ignore_empty=True))
    return torch.stack(dice, -1), torch.stack(iou, -1)


def _plain(x: torch.Tensor) -> torch.Tensor:
    """``x`` detached, as a plain ``torch.Tensor`` (a ``MetaTensor`` makes every op copy its metadata)."""
    x = x.detach()
    return x.as_tensor() if hasattr(x, "as_tensor") else x


def dice_iou_sweep(
    y_pred: torch.Tensor, y: torch.Tensor, thresholds: Sequence[float] = DEFAULT_THRESHOLDS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dice and IoU of ``y_pred >= t`` against ``y`` for every threshold, counting each pixel once.

    Equal to :func:`dice_iou_at_thresholds` (MONAI ``compute_dice`` / ``compute_iou``, empty targets NaN)
    in ``O(pixels + thresholds)`` per map instead of ``O(pixels x thresholds)``: each pixel's bucket is the
    number of sorted thresholds ``<= score``; the predicted area (and its overlap with the target) at
    threshold ``j`` is the count of pixels in buckets above ``j``.

    Args:
        y_pred: ``[B, K, *spatial]`` scores.
        y: ``[B, K, *spatial]`` binary targets.
        thresholds: candidate thresholds (any order).

    Returns:
        ``(dice, iou)``, each float ``[B, K, T]`` in the order of ``thresholds``; NaN where the target is
        empty.
    """
    _check(y_pred, y)
    p = _plain(y_pred).flatten(2)
    t = (_plain(y) > 0).flatten(2)
    b, k, n = p.shape
    thr = torch.as_tensor([float(v) for v in thresholds], dtype=p.dtype, device=p.device)
    order = torch.argsort(thr)
    sorted_thr = thr[order]
    bucket = torch.bucketize(p.contiguous(), sorted_thr, right=True)  # [B, K, N] in 0..T
    n_thr = len(thresholds)
    flat = bucket.reshape(b * k, n)
    area = torch.zeros(b * k, n_thr + 1, dtype=torch.float64, device=p.device)
    area.scatter_add_(1, flat, torch.ones_like(flat, dtype=torch.float64))
    hit = torch.zeros_like(area)
    hit.scatter_add_(1, flat, t.reshape(b * k, n).to(torch.float64))
    # predicted pixels at sorted threshold j: buckets j + 1 .. T
    pred_area = area.flip(1).cumsum(1).flip(1)[:, 1:]
    inter = hit.flip(1).cumsum(1).flip(1)[:, 1:]
    target_area = t.reshape(b * k, n).sum(1, keepdim=True).to(torch.float64)
    dice_sorted = 2 * inter / (pred_area + target_area)
    iou_sorted = inter / (pred_area + target_area - inter)
    dice = torch.empty_like(dice_sorted)
    iou = torch.empty_like(iou_sorted)
    dice[:, order] = dice_sorted
    iou[:, order] = iou_sorted
    empty = (target_area == 0).expand_as(dice)
    nan = torch.full_like(dice, float("nan"))
    dice = torch.where(empty, nan, dice).float().reshape(b, k, n_thr)
    iou = torch.where(empty, nan, iou).float().reshape(b, k, n_thr)
    return dice, iou


def select_threshold(dice: torch.Tensor, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> float:
    """The threshold with the best mean Dice (NaN entries ignored; ties go to the lower threshold).

    Args:
        dice: ``[..., T]`` Dice values per candidate threshold.
        thresholds: the ``T`` candidates.

    Returns:
        The chosen threshold.

    Raises:
        ValueError: no finite Dice value (no non-empty target was seen).
    """
    flat = dice.reshape(-1, dice.shape[-1])
    if flat.shape[-1] != len(thresholds):
        raise ValueError(f"dice has {flat.shape[-1]} thresholds, {len(thresholds)} candidates given")
    valid = ~torch.isnan(flat[:, 0])
    if not valid.any():
        raise ValueError("cannot choose a threshold: no sample had a non-empty target")
    mean = flat[valid].nan_to_num(0.0).mean(0)
    return float(thresholds[int(torch.argmax(mean))])


class LocalizationMetric(CumulativeIterationMetric):
    """Accumulates pointing game and Dice/IoU at every candidate threshold over an evaluation run.

    Args:
        thresholds: candidate thresholds recorded per pair.
        threshold: threshold used by :meth:`aggregate` unless one is given (snapped to the nearest
            candidate).
    """

    def __init__(self, thresholds: Sequence[float] = DEFAULT_THRESHOLDS, threshold: float = 0.5) -> None:
        super().__init__()
        if not thresholds:
            raise ValueError("LocalizationMetric needs at least one candidate threshold")
        self.thresholds = tuple(float(t) for t in thresholds)
        self.threshold = float(threshold)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        if y is None:
            raise ValueError("LocalizationMetric needs targets")
        y_pred, y = _plain(y_pred), _plain(y)
        hits = pointing_game(y_pred, y)
        dice, iou = dice_iou_sweep(y_pred, y, self.thresholds)
        # the threshold in use (the reported figures): MONAI's own compute_dice / compute_iou
        t_index = self._index(self.threshold)
        at_t = dice_iou_at_thresholds(y_pred, y, (self.thresholds[t_index],))
        dice[..., t_index], iou[..., t_index] = at_t[0][..., 0], at_t[1][..., 0]
        rows = torch.cat([hits.unsqueeze(-1).cpu(), dice.cpu(), iou.cpu()], -1)  # [B, K, 1 + 2T]
        return rows.reshape(-1, rows.shape[-1])

    def _rows(self) -> torch.Tensor:
        buf = self.get_buffer()
        if buf is None or (isinstance(buf, torch.Tensor) and buf.numel() == 0):
            return torch.zeros(0, 1 + 2 * len(self.thresholds))
        rows = buf.reshape(-1, 1 + 2 * len(self.thresholds))
        return rows[~torch.isnan(rows[:, 0])]

    def _index(self, threshold: float) -> int:
        return int(np.argmin([abs(t - threshold) for t in self.thresholds]))

    def best_threshold(self) -> float:
        """The candidate with the best mean Dice over the accumulated pairs."""
        rows = self._rows()
        return select_threshold(rows[:, 1 : 1 + len(self.thresholds)], self.thresholds)

    def aggregate(self, threshold: float | None = None) -> dict[str, float]:  # type: ignore[override]
        """Mean figures over the non-empty pairs.

        Args:
            threshold: Dice/IoU threshold (default: ``self.threshold``).

        Returns:
            ``{"pointing_game", "dice", "iou", "threshold", "n_findings"}`` (NaN figures with no pair).
        """
        t_index = self._index(self.threshold if threshold is None else threshold)
        rows = self._rows()
        n = int(rows.shape[0])
        nan = float("nan")
        if n == 0:
            return {
                "pointing_game": nan,
                "dice": nan,
                "iou": nan,
                "threshold": self.thresholds[t_index],
                "n_findings": 0,
            }
        t = len(self.thresholds)
        return {
            "pointing_game": float(rows[:, 0].mean()),
            "dice": float(rows[:, 1 + t_index].mean()),
            "iou": float(rows[:, 1 + t + t_index].mean()),
            "threshold": self.thresholds[t_index],
            "n_findings": n,
        }


class LocalizationMetricHandler(IgniteMetricHandler):
    """Ignite handler of :class:`LocalizationMetric`.

    Its own value (usable as a key metric) is the mean Dice at the current threshold; when the engine
    completes it also writes ``<prefix>pointing_game``, ``<prefix>iou``, ``<prefix>threshold`` and
    ``<prefix>n_findings`` into ``engine.state.metrics``.

    Args:
        thresholds: candidate thresholds.
        threshold: Dice/IoU threshold (change it with :meth:`set_threshold`, e.g. to the validation choice).
        prefix: prefix of the extra metric names.
        output_transform: engine output -> ``(y_pred, y)``.
    """

    def __init__(
        self,
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
        threshold: float = 0.5,
        prefix: str = "",
        output_transform: Any = lambda x: x,
    ) -> None:
        super().__init__(
            metric_fn=LocalizationMetric(thresholds, threshold),
            output_transform=output_transform,
            save_details=False,
        )
        self.prefix = prefix
        self.last: dict[str, float] = {}

    def set_threshold(self, threshold: float) -> float:
        """Use ``threshold`` for Dice/IoU from now on; returns it."""
        self.metric_fn.threshold = float(threshold)
        return float(threshold)

    def best_threshold(self) -> float:
        """Threshold with the best mean Dice over the last run (call after the engine ran)."""
        return self.metric_fn.best_threshold()

    def update(self, output: Sequence[torch.Tensor]) -> None:
        if output is None:  # a batch whose every sample was bad
            return
        super().update(output)

    def compute(self) -> float:
        self.last = self.metric_fn.aggregate()
        self._is_reduced = True
        return self.last["dice"]

    def completed(self, engine: Any, name: str) -> None:
        super().completed(engine, name)
        for key in ("pointing_game", "iou", "threshold", "n_findings"):
            engine.state.metrics[self.prefix + key] = self.last[key]
