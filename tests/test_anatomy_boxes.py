"""Box helpers: IoU/GIoU against hand-worked values, warps, letterbox round trip, region dicts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gkmvlp_monai.core.boxes import (
    box_iou_paired,
    boxes_from_dict,
    boxes_to_dict,
    generalized_box_iou_paired,
    letterbox,
    warp_boxes,
)
from gkmvlp_monai.core.vocab import region_names


def test_iou_and_giou_hand_worked() -> None:
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 4.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [2.0, 0.0, 3.0, 1.0], [0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 3.0, 2.0]])
    # 1) overlap 1, union 7, hull 9 -> IoU 1/7, GIoU 1/7 - 2/9
    # 2) disjoint, union 2, hull 3 -> IoU 0, GIoU -1/3
    # 3) identical -> 1, 1
    # 4) b inside a: overlap 4, union 8 -> 0.5, hull = a -> GIoU 0.5
    iou = box_iou_paired(a, b)
    giou = generalized_box_iou_paired(a, b)
    assert torch.allclose(iou, torch.tensor([1 / 7, 0.0, 1.0, 0.5]), atol=1e-6)
    assert torch.allclose(giou, torch.tensor([1 / 7 - 2 / 9, -1 / 3, 1.0, 0.5]), atol=1e-6)


def test_iou_empty_boxes_is_zero() -> None:
    z = torch.zeros(1, 4)
    assert box_iou_paired(z, z).item() == 0.0


def test_warp_boxes_scale_shift_and_rotation_hull() -> None:
    boxes = np.array([[10, 20, 30, 60]], dtype=np.float32)
    out = warp_boxes(boxes, np.diag([2.0, 0.5]), np.array([5.0, -3.0]))
    np.testing.assert_allclose(out, [[25, 7, 65, 27]], atol=1e-5)
    rot90 = np.array([[0.0, -1.0], [1.0, 0.0]])  # (x, y) -> (-y, x)
    out = warp_boxes(np.array([[0, 0, 2, 1]]), rot90, np.zeros(2))
    np.testing.assert_allclose(out, [[-1, 0, 0, 2]], atol=1e-6)


def test_letterbox_maps_boxes_both_ways_and_places_content() -> None:
    img = np.zeros((1, 200, 100), dtype=np.float32)  # W=200, H=100
    img[0, 50:100, 20:40] = 1.0  # a block at x in [50, 100), y in [20, 40)
    sq, lb = letterbox(img, 64)
    assert sq.shape == (1, 64, 64)
    assert (lb.scale_x, lb.scale_y, lb.off_x, lb.off_y) == (0.32, 0.32, 0.0, 16.0)
    box = np.array([[50, 20, 100, 40]], dtype=np.float32)
    sbox = lb.to_square(box)
    np.testing.assert_allclose(sbox, [[16, 22.4, 32, 28.8]], atol=1e-4)
    np.testing.assert_allclose(lb.to_original(sbox), box, atol=1e-4)
    # the block's pixels sit where the mapped box says (x along dim 1, y along dim 2)
    assert sq[0, 18:30, 24:27].min() > 0.9 and sq[0, 40:, :].max() < 1e-6 and sq[0, :, :15].max() < 1e-6


def test_region_dict_round_trip_and_unknown_name() -> None:
    names = region_names()
    boxes = np.arange(29 * 4, dtype=np.float32).reshape(29, 4)
    boxes[:, 2:] += 10
    mask = np.ones(29, dtype=bool)
    mask[3] = False
    d = boxes_to_dict(boxes, mask)
    assert names[3] not in d and len(d) == 28
    back, m = boxes_from_dict(d)
    np.testing.assert_array_equal(m, mask)
    np.testing.assert_allclose(back[mask], boxes[mask])
    with pytest.raises(KeyError, match="unknown anatomical region"):
        boxes_from_dict({"left pinky": [0, 0, 1, 1]})
