"""Training budgets shared by the downstream studies: the same number of optimizer updates for every run,
whatever its data fraction (so that fractions differ in data, not in compute)."""

from __future__ import annotations

import math

__all__ = ["budget_overrides", "epochs_for_steps", "step_budget"]


def epochs_for_steps(steps: int, n_items: int, batch_size: int) -> int:
    """Epochs giving at least ``steps`` optimizer steps with ``drop_last`` batches (the study's budget)."""
    per_epoch = max(1, n_items // max(1, batch_size))
    return max(1, math.ceil(steps / per_epoch))


def step_budget(steps: int, n_items: int, batch_size: int) -> tuple[int, int | None]:
    """``(max_epochs, epoch_length)`` of a run making about ``steps`` updates over ``n_items`` items.

    A small training set gets whole epochs (rounded up, :func:`epochs_for_steps`); a set holding more than
    ``steps`` ``drop_last`` batches gets one epoch cut at ``steps`` batches (a shuffled part of the data).
    The studies use it so every run, whatever its data fraction, makes the same number of updates.

    Args:
        steps: wanted optimizer updates.
        n_items: training items.
        batch_size: batch size (``drop_last``).

    Returns:
        ``(max_epochs, epoch_length)``, ``epoch_length`` ``None`` for whole epochs.
    """
    per_epoch = max(1, n_items // max(1, batch_size))
    if per_epoch > steps:
        return 1, int(steps)
    return epochs_for_steps(steps, n_items, batch_size), None


def budget_overrides(
    steps: int, n_items: int, batch_size: int, validations: int = 1
) -> dict[str, int | None]:
    """Bundle overrides of a run making about ``steps`` updates (:func:`step_budget`), validated
    ``validations`` times (every ``max_epochs // validations`` epochs, at least every epoch).

    Args:
        steps: wanted optimizer updates.
        n_items: training items.
        batch_size: batch size (``drop_last``).
        validations: validation passes per run (the last one after the final epoch).

    Returns:
        ``{"max_epochs", "epoch_length", "val_interval"}``.
    """
    max_epochs, epoch_length = step_budget(steps, n_items, batch_size)
    return {
        "max_epochs": max_epochs,
        "epoch_length": epoch_length,
        "val_interval": max(1, max_epochs // max(1, validations)),
    }
