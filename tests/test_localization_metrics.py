"""Localization metrics against hand-worked values."""

from __future__ import annotations

import math

import pytest
import torch

from gkmvlp_monai.tasks.localization.metrics import (
    LocalizationMetric,
    dice_iou_at_thresholds,
    dice_iou_sweep,
    pointing_game,
    select_threshold,
)


def test_pointing_game_hand_worked():
    y = torch.zeros(1, 3, 4, 4)
    y[0, 0, 0:2, 0:2] = 1  # channel 0: top-left block
    y[0, 1, 2:4, 2:4] = 1  # channel 1: bottom-right block
    p = torch.zeros(1, 3, 4, 4)
    p[0, 0, 1, 1] = 1.0  # peak inside -> hit
    p[0, 1, 0, 0] = 1.0  # peak outside -> miss
    hits = pointing_game(p, y)
    assert hits[0, 0] == 1 and hits[0, 1] == 0
    assert math.isnan(hits[0, 2])  # empty target: not counted
    # flat map: fraction of maximal pixels inside = area fraction 4/16
    flat = pointing_game(torch.ones(1, 1, 4, 4), y[:, :1])
    assert flat.item() == pytest.approx(0.25)


def test_dice_iou_hand_worked():
    y = torch.zeros(1, 1, 4, 4)
    y[0, 0, 0:2, 0:2] = 1  # 4 pixels
    p = torch.zeros(1, 1, 4, 4)
    p[0, 0, 0:2, 0:3] = 0.8  # 6 pixels at 0.8, overlap 4
    p[0, 0, 3, 3] = 0.3  # one more pixel at 0.3
    dice, iou = dice_iou_at_thresholds(p, y, thresholds=(0.2, 0.5, 0.9))
    # t=0.2: pred 7 px, inter 4 -> dice 8/11, iou 4/7; t=0.5: pred 6 -> dice 8/10, iou 4/6; t=0.9: empty
    assert dice[0, 0].tolist() == pytest.approx([8 / 11, 0.8, 0.0])
    assert iou[0, 0].tolist() == pytest.approx([4 / 7, 4 / 6, 0.0])
    assert select_threshold(dice, (0.2, 0.5, 0.9)) == 0.5


def test_sweep_hand_worked_and_equal_to_monai():
    y = torch.zeros(1, 1, 4, 4)
    y[0, 0, 0:2, 0:2] = 1
    p = torch.zeros(1, 1, 4, 4)
    p[0, 0, 0:2, 0:3] = 0.8
    p[0, 0, 3, 3] = 0.3
    dice, iou = dice_iou_sweep(p, y, thresholds=(0.9, 0.2, 0.5))  # unsorted: results in the given order
    assert dice[0, 0].tolist() == pytest.approx([0.0, 8 / 11, 0.8])
    assert iou[0, 0].tolist() == pytest.approx([0.0, 4 / 7, 4 / 6])
    # random maps, scores exactly on a threshold, empty targets (NaN), MetaTensor input (as the evaluator's)
    from monai.data import MetaTensor

    g = torch.Generator().manual_seed(0)
    scores = torch.rand(3, 4, 16, 12, generator=g)
    scores[0, 1, :4] = 0.35
    target = (torch.rand(3, 4, 16, 12, generator=g) > 0.7).float()
    target[2, 3] = 0
    ref = dice_iou_at_thresholds(scores, target)
    got = dice_iou_sweep(MetaTensor(scores), MetaTensor(target))
    for a, b in zip(ref, got):
        assert type(b) is torch.Tensor
        assert torch.equal(a.isnan(), b.isnan()) and bool(a.isnan()[2, 3].all())
        assert torch.allclose(a.nan_to_num(), b.nan_to_num(), atol=1e-6)


def test_select_threshold_needs_targets():
    with pytest.raises(ValueError, match="non-empty"):
        select_threshold(torch.full((2, 3), float("nan")), (0.1, 0.2, 0.3))


def test_cumulative_metric_and_threshold_choice():
    metric = LocalizationMetric(thresholds=(0.2, 0.5, 0.9), threshold=0.2)
    y = torch.zeros(2, 1, 4, 4)
    y[0, 0, 0:2, 0:2] = 1
    p = torch.zeros(2, 1, 4, 4)
    p[0, 0, 0:2, 0:3] = 0.8
    p[0, 0, 3, 3] = 0.3
    p[1, 0, 0, 0] = 1.0  # sample 1 has an empty target: ignored
    metric(p, y)
    res = metric.aggregate()
    assert res["n_findings"] == 1
    assert res["pointing_game"] == pytest.approx(4 / 6)  # 6 tied maxima, 4 inside
    assert res["dice"] == pytest.approx(8 / 11) and res["iou"] == pytest.approx(4 / 7)
    assert metric.best_threshold() == 0.5
    assert metric.aggregate(0.5)["dice"] == pytest.approx(0.8)
    metric.reset()
    assert metric.aggregate()["n_findings"] == 0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="one shape"):
        pointing_game(torch.zeros(1, 2, 4, 4), torch.zeros(1, 1, 4, 4))
