"""VQA accuracy: exact match after answer normalisation, for closed, open and all questions."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced

from gkmvlp_monai.tasks.vqa.data import normalize_answer

__all__ = ["VQAAccuracy", "vqa_accuracy"]


def vqa_accuracy(
    predictions: Sequence[str], answers: Sequence[str], is_closed: Sequence[bool]
) -> dict[str, float]:
    """Closed, open and overall accuracy (exact match of normalised answers).

    Args:
        predictions: predicted answers.
        answers: reference answers.
        is_closed: whether each question is closed (yes/no, choice) rather than open.

    Returns:
        ``{"closed_acc", "open_acc", "overall_acc"}`` in [0, 1] (NaN for a group without questions) and
        ``{"n_closed", "n_open"}``.

    Raises:
        ValueError: the three sequences differ in length.
    """
    if not len(predictions) == len(answers) == len(is_closed):
        raise ValueError(
            f"{len(predictions)} predictions, {len(answers)} answers and {len(is_closed)} answer types differ"
        )
    hits = {True: 0, False: 0}
    counts = {True: 0, False: 0}
    for p, a, c in zip(predictions, answers, is_closed):
        c = bool(c)
        counts[c] += 1
        hits[c] += normalize_answer(p) == normalize_answer(a)

    def ratio(h: int, n: int) -> float:
        return h / n if n else math.nan

    return {
        "closed_acc": ratio(hits[True], counts[True]),
        "open_acc": ratio(hits[False], counts[False]),
        "overall_acc": ratio(hits[True] + hits[False], counts[True] + counts[False]),
        "n_closed": float(counts[True]),
        "n_open": float(counts[False]),
    }


class VQAAccuracy(Metric):
    """Ignite metric: closed / open / overall accuracy over an epoch (flattened into ``state.metrics``).

    ``output_transform`` must return ``(predictions list[str], answers list[str], is_closed [B])`` or
    ``None`` for a skipped batch. Published keys: ``{prefix}closed_acc``, ``{prefix}open_acc``,
    ``{prefix}overall_acc`` (name the metric ``{prefix}overall_acc`` to use it as a key metric).

    Args:
        prefix: key prefix (e.g. ``"val_"``, ``"gen_"``).
        output_transform: see above.
        device: unused (kept for the Ignite signature).
    """

    def __init__(self, prefix: str = "", output_transform=lambda x: x, device="cpu") -> None:
        self.prefix = prefix
        super().__init__(output_transform=output_transform, device=device, metrics_result_mode="flatten")

    @reinit__is_reduced
    def reset(self) -> None:
        self._pred: list[str] = []
        self._ans: list[str] = []
        self._closed: list[bool] = []

    @reinit__is_reduced
    def update(self, output) -> None:
        if output is None:
            return
        pred, ans, closed = output
        closed = [bool(c) for c in (closed.tolist() if hasattr(closed, "tolist") else closed)]
        if not len(pred) == len(ans) == len(closed):
            raise ValueError(f"batch of {len(pred)} predictions, {len(ans)} answers, {len(closed)} types")
        self._pred.extend(str(p) for p in pred)
        self._ans.extend(str(a) for a in ans)
        self._closed.extend(closed)

    def compute(self) -> dict[str, float]:
        if not self._pred:
            raise RuntimeError("VQAAccuracy needs at least one batch before compute()")
        acc = vqa_accuracy(self._pred, self._ans, self._closed)
        return {f"{self.prefix}{k}": acc[k] for k in ("closed_acc", "open_acc", "overall_acc")}
