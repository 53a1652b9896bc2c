"""Decision thresholds chosen on a validation split, and the classification metrics that use them.

One implementation serves every classification mode (linear probe, fine-tuning, zero-shot):

- :func:`select_threshold` picks a class's threshold on validation scores by maximum F1 (default) or
  Youden's J; a candidate threshold is an observed score and a sample is positive when its score is
  ``>= threshold``; ties go to the higher threshold.
- :class:`ThresholdStore` holds the per-class thresholds (fitted on validation, written to JSON) between
  the validation pass and the test pass of ``evaluate.json``.
- :class:`ClassificationMetrics` (Ignite) publishes per-class and macro AUC, and F1 / accuracy at the
  stored thresholds (multi-label) or at the arg-max (multi-class).

Definedness: a class whose evaluated targets are all one value has no AUC, and it is also left out of
the macro F1 / mean accuracy, so all macro figures average the same classes. Nothing is set to 0.5.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import torch

from gkmvlp_monai.engine.accumulate import ScoreTargetAccumulator
from gkmvlp_monai.engine.metrics import macro_auc, masked_multilabel_auc

CRITERIA = ("f1", "youden")
LABEL_TYPES = ("multilabel", "multiclass")

__all__ = [
    "ClassificationMetrics",
    "ThresholdStore",
    "binary_counts",
    "f1_from_counts",
    "multiclass_scores",
    "select_threshold",
    "select_thresholds",
    "thresholded_scores",
]


def binary_counts(scores: torch.Tensor, targets: torch.Tensor, threshold: float) -> tuple[int, int, int, int]:
    """``(tp, fp, fn, tn)`` of the decision ``score >= threshold`` against 0/1 ``targets``."""
    pred = scores >= threshold
    pos = targets == 1
    tp = int((pred & pos).sum())
    fp = int((pred & ~pos).sum())
    fn = int((~pred & pos).sum())
    tn = int((~pred & ~pos).sum())
    return tp, fp, fn, tn


def f1_from_counts(tp: int, fp: int, fn: int) -> float | None:
    """F1 = 2TP / (2TP + FP + FN); ``None`` when undefined (no positive target and no positive call)."""
    denom = 2 * tp + fp + fn
    return None if denom == 0 else 2 * tp / denom


def select_threshold(scores: torch.Tensor, targets: torch.Tensor, criterion: str = "f1") -> float | None:
    """The threshold maximising ``criterion`` on one class's scores.

    Args:
        scores: ``[N]`` scores (higher = more likely positive).
        targets: ``[N]`` 0/1 targets (ignored entries already removed).
        criterion: ``"f1"`` (maximum F1) or ``"youden"`` (maximum sensitivity + specificity - 1).

    Returns:
        The chosen threshold (one of the observed scores; positive means ``score >= threshold``; ties go to
        the higher threshold), or ``None`` when the targets hold fewer than two values (not selectable).

    Raises:
        ValueError: unknown criterion or mismatched shapes.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"unknown threshold criterion {criterion!r}; use one of {CRITERIA}")
    scores, targets = scores.flatten().float(), targets.flatten().float()
    if scores.shape != targets.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and targets {tuple(targets.shape)} differ")
    n_pos = int((targets == 1).sum())
    n_neg = int(targets.numel() - n_pos)
    if n_pos == 0 or n_neg == 0:
        return None
    best_t, best_v = None, -math.inf
    for t in torch.unique(scores).flip(0).tolist():  # descending: ties keep the higher threshold
        tp, fp, fn, tn = binary_counts(scores, targets, t)
        if criterion == "f1":
            value = f1_from_counts(tp, fp, fn) or 0.0
        else:
            value = tp / n_pos - fp / n_neg
        if value > best_v + 1e-12:
            best_t, best_v = t, value
    return float(best_t)


def select_thresholds(
    probs: torch.Tensor, targets: torch.Tensor, criterion: str = "f1", ignore_value: float = -1.0
) -> list[float | None]:
    """Per-class :func:`select_threshold` on ``[N, C]`` scores, leaving out ``ignore_value`` targets."""
    if probs.shape != targets.shape or probs.ndim != 2:
        raise ValueError(f"probs {tuple(probs.shape)} and targets {tuple(targets.shape)} must both be [N, C]")
    out: list[float | None] = []
    for c in range(probs.shape[1]):
        keep = targets[:, c] != ignore_value
        out.append(select_threshold(probs[keep, c], targets[keep, c], criterion))
    return out


def thresholded_scores(
    probs: torch.Tensor,
    targets: torch.Tensor,
    thresholds: Sequence[float],
    names: Sequence[str],
    ignore_value: float = -1.0,
) -> dict[str, float]:
    """Per-class F1 and accuracy at fixed thresholds, with their means over the defined classes.

    A class enters ``macro_F1`` / ``mean_accuracy`` when its kept targets hold both values (the classes of
    the macro AUC); its per-class F1 is published whenever it is defined.

    Returns:
        ``{"F1_<name>", "accuracy_<name>", "macro_F1", "mean_accuracy"}`` (macro values NaN when no class
        is defined).
    """
    if probs.shape != targets.shape or probs.shape[1] != len(names) or len(thresholds) != len(names):
        raise ValueError(
            f"probs {tuple(probs.shape)}, targets {tuple(targets.shape)}, {len(thresholds)} thresholds and "
            f"{len(names)} names do not agree"
        )
    out: dict[str, float] = {}
    f1s, accs = [], []
    for c, name in enumerate(names):
        keep = targets[:, c] != ignore_value
        y, s = targets[keep, c], probs[keep, c]
        if y.numel() == 0:
            continue
        tp, fp, fn, tn = binary_counts(s, y, thresholds[c])
        f1 = f1_from_counts(tp, fp, fn)
        acc = (tp + tn) / y.numel()
        if f1 is not None:
            out[f"F1_{name}"] = f1
        out[f"accuracy_{name}"] = acc
        if y.min() != y.max():
            f1s.append(f1 or 0.0)
            accs.append(acc)
    out["macro_F1"] = sum(f1s) / len(f1s) if f1s else float("nan")
    out["mean_accuracy"] = sum(accs) / len(accs) if accs else float("nan")
    return out


def multiclass_scores(probs: torch.Tensor, labels: torch.Tensor, names: Sequence[str]) -> dict[str, float]:
    """Multi-class accuracy and macro F1 at the arg-max, and one-vs-rest per-class / macro AUC.

    Args:
        probs: ``[N, K]`` class probabilities (or any monotone scores).
        labels: ``[N]`` class indices.
        names: ``K`` class names.

    Returns:
        ``{"accuracy", "macro_F1", "F1_<name>", "AUC_<name>", "macro_AUC"}``; a class absent from the labels
        has no AUC and no F1 term (left out of the macro means).
    """
    labels = labels.flatten().long()
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0] or probs.shape[1] != len(names):
        raise ValueError(f"probs {tuple(probs.shape)} / labels {tuple(labels.shape)} / {len(names)} names")
    if labels.numel() and (labels.min() < 0 or labels.max() >= len(names)):
        raise ValueError(f"labels outside [0, {len(names)})")
    pred = probs.argmax(1)
    onehot = torch.nn.functional.one_hot(labels, len(names)).float()
    out: dict[str, float] = {"accuracy": float((pred == labels).float().mean())}
    f1s = []
    for k, name in enumerate(names):
        pos, call = labels == k, pred == k
        f1 = f1_from_counts(int((pos & call).sum()), int((~pos & call).sum()), int((pos & ~call).sum()))
        if f1 is not None:
            out[f"F1_{name}"] = f1
        if bool(pos.any()):
            f1s.append(f1 or 0.0)
    out["macro_F1"] = sum(f1s) / len(f1s) if f1s else float("nan")
    per = masked_multilabel_auc(probs.float(), onehot)
    out.update({f"AUC_{n}": v for n, v in zip(names, per) if v is not None})
    out["macro_AUC"] = macro_auc(per)
    return out


class ThresholdStore:
    """Per-class decision thresholds shared between a validation (fitting) and a test (using) pass.

    Args:
        names: class names.
        criterion: ``"f1"`` or ``"youden"`` (see :func:`select_threshold`).
        default: threshold of a class that cannot be fitted (one target value in validation); such classes
            are listed in the JSON under ``"fallback"``.
        path: JSON file written by :meth:`fit` (optional).
    """

    def __init__(
        self, names: Sequence[str], criterion: str = "f1", default: float = 0.5, path: str | None = None
    ) -> None:
        if criterion not in CRITERIA:
            raise ValueError(f"unknown threshold criterion {criterion!r}; use one of {CRITERIA}")
        self.names = list(names)
        self.criterion = criterion
        self.default = default
        self.path = path
        self._thresholds: list[float] | None = None
        self.fallback: list[str] = []

    @property
    def fitted(self) -> bool:
        return self._thresholds is not None

    @property
    def thresholds(self) -> list[float]:
        """The fitted thresholds (class order of ``names``)."""
        if self._thresholds is None:
            raise RuntimeError("thresholds not fitted: run the validation (calibration) pass first")
        return list(self._thresholds)

    def fit(self, probs: torch.Tensor, targets: torch.Tensor) -> list[float]:
        """Choose the thresholds on ``[N, C]`` validation scores/targets (-1 ignored); writes ``path``."""
        chosen = select_thresholds(probs, targets, self.criterion)
        self.fallback = [n for n, t in zip(self.names, chosen) if t is None]
        self._thresholds = [self.default if t is None else t for t in chosen]
        if self.path:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            Path(self.path).write_text(json.dumps(self.to_dict(), indent=1))
        return self.thresholds

    def to_dict(self) -> dict:
        return {
            "criterion": self.criterion,
            "thresholds": dict(zip(self.names, self.thresholds)),
            "fallback": self.fallback,
            "default": self.default,
        }


class ClassificationMetrics(ScoreTargetAccumulator):
    """Ignite metric: AUC (per class and macro), plus F1 / accuracy, over an epoch.

    ``output_transform`` must return ``(probs [B, C], targets)``: multi-label targets ``[B, C]`` in
    {1, 0, -1 (ignored)}; multi-class targets ``[B]`` indices.

    Multi-label: with a ``threshold_store`` and ``fit_thresholds=True`` the thresholds are chosen on this
    data (the validation pass) and the F1 / accuracy at them published; with a fitted store and
    ``fit_thresholds=False`` the stored thresholds are used (the test pass). Without a store only AUCs are
    published. Multi-class: accuracy and macro F1 at the arg-max (no thresholds), one-vs-rest AUCs.

    Args:
        names: class names (keys ``"{prefix}AUC_<name>"`` etc.).
        label_type: ``"multilabel"`` or ``"multiclass"``.
        threshold_store: thresholds to fit or use (multi-label only).
        fit_thresholds: fit the store on this data.
        prefix: key prefix.
    """

    target_dtype = None  # multi-class targets stay integer indices

    def __init__(
        self,
        names: Sequence[str],
        label_type: str = "multilabel",
        threshold_store: ThresholdStore | None = None,
        fit_thresholds: bool = False,
        prefix: str = "",
        output_transform=lambda x: x,
        device="cpu",
    ) -> None:
        if label_type not in LABEL_TYPES:
            raise ValueError(f"unknown label_type {label_type!r}; use one of {LABEL_TYPES}")
        self.names = list(names)
        self.label_type = label_type
        self.store = threshold_store
        self.fit_thresholds = fit_thresholds
        self.prefix = prefix
        super().__init__(output_transform=output_transform, device=device, metrics_result_mode="flatten")

    def compute(self) -> dict[str, float]:
        probs, targets = self.collected()
        if probs.shape[1] != len(self.names):
            raise ValueError(f"got {probs.shape[1]} classes, expected {len(self.names)} names")
        if self.label_type == "multiclass":
            out = multiclass_scores(probs, targets, self.names)
        else:
            targets = targets.float()
            per = masked_multilabel_auc(probs, targets)
            out = {f"AUC_{n}": v for n, v in zip(self.names, per) if v is not None}
            out["macro_AUC"] = macro_auc(per)
            if self.store is not None:
                thresholds = self.store.fit(probs, targets) if self.fit_thresholds else self.store.thresholds
                out.update(thresholded_scores(probs, targets, thresholds, self.names))
        return {f"{self.prefix}{k}": v for k, v in out.items()}
