"""Box geometry (``gkmvlp_monai.core.boxes``): IoU/GIoU against hand-worked values, checks, clipping,
warps and grid maps, letterbox round trip, region dicts, boxes <-> masks; and that it is the only module
defining box geometry."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from gkmvlp_monai.core import boxes as core_boxes
from gkmvlp_monai.core.boxes import (
    box_area,
    box_iou_paired,
    boxes_from_dict,
    boxes_to_dict,
    boxes_to_mask,
    boxes_to_patch_mask,
    check_box,
    clip_boxes,
    generalized_box_iou_paired,
    is_box,
    letterbox,
    map_boxes,
    mask_box,
    region_boxes_to_array,
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


def test_region_boxes_to_array():
    names = region_names()
    assert len(names) == 29
    boxes, mask = region_boxes_to_array({names[2].upper(): [1, 2, 3, 4]})
    assert boxes.shape == (29, 4) and mask.dtype == bool and mask.sum() == 1 and mask[2]
    assert boxes[2].tolist() == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="unknown anatomical region 'spleen'"):
        region_boxes_to_array({"spleen": [0, 0, 1, 1]})
    with pytest.raises(ValueError, match="x2 < x1"):
        region_boxes_to_array({names[0]: [5, 0, 1, 1]})


def test_map_boxes_exact_for_scale_and_shift():
    a0 = np.diag([0.4, 0.2, 1.0])
    a1 = np.array([[0.8, 0, 3.0], [0, 0.4, -1.0], [0, 0, 1]])  # half resolution, shifted grid
    out, kept = map_boxes(np.array([[10, 20, 30, 40], [500, 500, 600, 600]]), a0, a1, (100, 100))
    # world of continuous x: 0.4 * (x - 0.5); new continuous: (world - 3) / 0.8 + 0.5
    x = lambda v: (0.4 * (v - 0.5) - 3.0) / 0.8 + 0.5  # noqa: E731
    y = lambda v: (0.2 * (v - 0.5) + 1.0) / 0.4 + 0.5  # noqa: E731
    np.testing.assert_allclose(out[0], [x(10), y(20), x(30), y(40)], atol=1e-5)
    assert kept.tolist() == [True, False] and out[1].tolist() == [0, 0, 0, 0]


def test_boxes_to_mask_pixel_centres():
    # box x in [1, 3), y in [0.4, 2.6): pixel centres 1.5, 2.5 (x) and 0.5, 1.5, 2.5 (y)
    m = boxes_to_mask([[1.0, 0.4, 3.0, 2.6]], (4, 4))
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[1:3, 0:3] = True
    assert torch.equal(m, expected)
    assert not boxes_to_mask([], (3, 3)).any()
    with pytest.raises(ValueError):
        boxes_to_mask([[0, 0, 1]], (3, 3))


def test_boxes_to_patch_mask():
    m = boxes_to_patch_mask(torch.tensor([[0.0, 32.0, 32.0, 64.0]]), (4, 4), image_size=64)
    want = torch.zeros(4, 4, dtype=torch.bool)
    want[:2, 2:] = True
    assert torch.equal(m[0], want)


def test_boxes_to_patch_mask_of_a_non_square_picture_is_the_pixel_mask() -> None:
    boxes = torch.tensor([[1.0, 0.4, 3.0, 2.6], [4.2, 5.0, 6.0, 6.5]], dtype=torch.float64)
    cells = boxes_to_patch_mask(boxes, (7, 5), (7, 5)).any(0)
    assert cells.shape == (7, 5) and torch.equal(cells, boxes_to_mask(boxes, (7, 5)))
    assert cells[4, :].tolist() == [False, False, False, False, False]  # centre 4.5 >= 4.2, y 5.5 >= 5
    assert cells[5, :].tolist() == [False, False, False, False, False]
    # halving the grid of a 64 px square: 2 cells per side of 32 px each
    half = boxes_to_patch_mask(torch.tensor([[0.0, 0.0, 32.0, 64.0]]), (2, 2), 64)[0]
    assert half.tolist() == [[True, True], [False, False]]


def test_box_checks_area_and_clipping() -> None:
    assert check_box([1, 2, 3, 4]).tolist() == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="region 'x': box .* has x2 < x1"):
        check_box([3, 0, 1, 1], "region 'x'")
    with pytest.raises(ValueError, match="4 finite numbers"):
        check_box([0, 0, float("nan"), 1])
    assert is_box([0, 0, 1, 1]) and is_box((0.5, 1, 2, 1))  # empty is still a box
    assert not is_box([0, 0, 1]) and not is_box(np.array([0, 0, 1, 1])) and not is_box(["0", 0, 1, 1])
    assert not is_box([2, 0, 1, 1]) and not is_box([0, 0, float("inf"), 1])
    b = np.array([[-5, 2, 10, 30], [1, 1, 0, 3]], dtype=np.float32)
    np.testing.assert_array_equal(box_area(b), [15 * 28, 0])
    assert torch.equal(box_area(torch.from_numpy(b)), torch.tensor([420.0, 0.0]))
    clipped = clip_boxes(b, (8, 20))
    assert clipped.dtype == np.float32 and clipped.tolist() == [[0, 2, 8, 20], [1, 1, 0, 3]]
    assert b[0, 0] == -5  # a copy
    assert clip_boxes([[-1, -1, 5, 5]], (3, 4)).dtype == np.float64


def test_mask_box_is_the_tight_box_in_picture_order() -> None:
    m = np.zeros((6, 8), dtype=bool)  # (rows, cols)
    m[2:4, 1:7] = True
    assert mask_box(m) == [1.0, 2.0, 7.0, 4.0]
    assert mask_box(np.zeros((3, 3), dtype=bool)) is None
    # its box rasterises back to the mask (boxes_to_mask is [W, H], i.e. the transpose)
    assert torch.equal(boxes_to_mask([mask_box(m)], (8, 6)), torch.from_numpy(m.T))


def test_map_boxes_empty_and_non_2d_affines() -> None:
    out, kept = map_boxes(np.zeros((0, 4)), np.eye(3), np.eye(3), (10, 10))
    assert out.shape == (0, 4) and kept.shape == (0,)
    with pytest.raises(ValueError, match="3x3"):
        map_boxes(np.zeros((1, 4)), np.eye(4), np.eye(3), (10, 10))


#: functions outside core/boxes.py whose name says IoU but that are not box geometry: the Dice / IoU of
#: thresholded heat maps (pixel masks, MONAI's compute_iou) and the anatomy metric that averages
#: core.boxes.box_iou_paired per region
_IOU_NAMES_ELSEWHERE = {
    "tasks/localization/metrics.py": {"dice_iou_at_thresholds", "dice_iou_sweep"},
    "tasks/anatomy/metrics.py": {"mean_iou_per_region", "iou_inputs"},
}


def _functions(package: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        out[path.relative_to(package).as_posix()] = names
    return out


def test_core_boxes_is_the_only_module_defining_box_geometry() -> None:
    package = Path(core_boxes.__file__).resolve().parents[1]
    functions = _functions(package)
    public = set(core_boxes.__all__) - {"Letterbox"}
    assert public <= functions["core/boxes.py"]
    geometry = public | {"_check_box", "_is_box", "_inter_union"}  # _check_box, _is_box: the old copies
    for module, names in functions.items():
        if module == "core/boxes.py":
            continue
        assert not names & geometry, f"{module} defines box geometry {sorted(names & geometry)}"
        iou = {n for n in names if "iou" in n.lower()} - _IOU_NAMES_ELSEWHERE.get(module, set())
        assert not iou, f"{module} defines IoU functions {sorted(iou)}; box IoU lives in core/boxes.py"
