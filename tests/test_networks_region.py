"""RoIAlign with torch ops vs a brute-force reference; region tokens and masks."""

from __future__ import annotations

import math

import pytest
import torch

from gkmvlp_monai.models.region import RegionPooling, roi_align, roi_mean_pool


def _bilinear(fm: torch.Tensor, x: float, y: float) -> torch.Tensor:
    """Value at index coordinates (x along dim -2, y along dim -1; cell centres at integers), clamped."""
    size_x, size_y = fm.shape[-2:]
    x = min(max(x, 0.0), size_x - 1.0)
    y = min(max(y, 0.0), size_y - 1.0)
    x0, y0 = int(math.floor(x)), int(math.floor(y))
    x1, y1 = min(x0 + 1, size_x - 1), min(y0 + 1, size_y - 1)
    ax, ay = x - x0, y - y0
    return (
        fm[:, x0, y0] * (1 - ax) * (1 - ay)
        + fm[:, x1, y0] * ax * (1 - ay)
        + fm[:, x0, y1] * (1 - ax) * ay
        + fm[:, x1, y1] * ax * ay
    )


def _reference(fm: torch.Tensor, box: list[float], out: int, scale: float, sr: int) -> torch.Tensor:
    """torchvision-style RoIAlign (aligned=True) for one box, written with plain loops."""
    x1, y1, x2, y2 = (v * scale - 0.5 for v in box)
    bw, bh = (x2 - x1) / out, (y2 - y1) / out
    res = torch.zeros(fm.shape[0], out, out, dtype=fm.dtype)
    for i in range(out):
        for j in range(out):
            acc = torch.zeros(fm.shape[0], dtype=fm.dtype)
            for si in range(sr):
                for sj in range(sr):
                    x = x1 + i * bw + (si + 0.5) * bw / sr
                    y = y1 + j * bh + (sj + 0.5) * bh / sr
                    acc += _bilinear(fm, x, y)
            res[:, i, j] = acc / (sr * sr)
    return res


def test_roi_align_matches_bruteforce_reference():
    g = torch.Generator().manual_seed(0)
    fm = torch.randn(2, 3, 9, 7, generator=g, dtype=torch.float64)  # non-square: catches swapped axes
    boxes = torch.tensor(
        [
            [[0.0, 0.0, 36.0, 28.0], [5.0, 3.0, 21.0, 25.0]],
            [[10.5, 2.25, 30.0, 11.0], [0.0, 14.0, 12.0, 28.0]],
        ],
        dtype=torch.float64,
    )
    scale = 0.25  # image 36 x 28 pixels -> map 9 x 7
    got = roi_align(fm, boxes, output_size=3, spatial_scale=scale, sampling_ratio=2)
    assert got.shape == (2, 2, 3, 3, 3)
    for b in range(2):
        for r in range(2):
            ref = _reference(fm[b], boxes[b, r].tolist(), 3, scale, 2)
            torch.testing.assert_close(got[b, r], ref, rtol=1e-9, atol=1e-9)


def test_roi_align_linear_ramp_mean_is_value_at_box_centre():
    # f(x, y) = 2x + 3y sampled at cell centres: bilinear sampling is exact, so the box mean is f(centre)
    xs = torch.arange(8.0) + 0.5
    ys = torch.arange(10.0) + 0.5
    fm = (2 * xs[:, None] + 3 * ys[None, :])[None, None]
    boxes = torch.tensor([[[1.0, 2.0, 5.0, 7.0], [0.6, 0.6, 7.4, 9.3]]])
    got = roi_align(fm, boxes, output_size=4, spatial_scale=1.0, sampling_ratio=2).mean(dim=(-2, -1))
    want = torch.tensor([2 * 3.0 + 3 * 4.5, 2 * 4.0 + 3 * 4.95])
    torch.testing.assert_close(got.flatten(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("output_size,sampling_ratio", [(4, 2), (3, 1), (1, 3)])
def test_roi_mean_pool_equals_mean_of_roi_align_samples_with_gradients(output_size, sampling_ratio):
    # boxes inside, across the border and fully outside the map (border clamping), thin and wide
    torch.manual_seed(1)
    fm = torch.randn(2, 5, 6, 7, dtype=torch.float64, requires_grad=True)
    boxes = torch.tensor(
        [
            [[0.0, 0.0, 48.0, 56.0], [3.3, 10.1, 20.7, 30.2], [-8.0, 40.0, 12.0, 70.0]],
            [[44.0, 50.0, 60.0, 64.0], [10.0, 10.0, 10.5, 40.0], [5.0, 1.0, 30.0, 2.0]],
        ],
        dtype=torch.float64,
    )
    ref = roi_align(fm, boxes, output_size, spatial_scale=1 / 8, sampling_ratio=sampling_ratio).mean(
        dim=(-2, -1)
    )
    got = roi_mean_pool(fm, boxes, output_size, spatial_scale=1 / 8, sampling_ratio=sampling_ratio)
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)
    w = torch.randn_like(ref)
    (g_ref,) = torch.autograd.grad((ref * w).sum(), fm)
    (g_got,) = torch.autograd.grad((got * w).sum(), fm)
    torch.testing.assert_close(g_got, g_ref, rtol=1e-10, atol=1e-10)


def test_roi_align_axis_convention_x_is_dim_minus_2():
    fm = torch.zeros(1, 1, 8, 8)
    fm[0, 0, 6, 1] = 1.0  # x = 6, y = 1
    hit = roi_align(fm, torch.tensor([[[6.0, 1.0, 7.0, 2.0]]]), output_size=1, sampling_ratio=1)
    miss = roi_align(fm, torch.tensor([[[1.0, 6.0, 2.0, 7.0]]]), output_size=1, sampling_ratio=1)
    assert hit.item() == pytest.approx(1.0)
    assert miss.item() == pytest.approx(0.0)


def test_region_pooling_masks_absent_and_empty_boxes():
    torch.manual_seed(0)
    pool = RegionPooling(in_channels=4, dim=8, num_regions=3)
    fm = torch.randn(2, 4, 4, 4)
    boxes = torch.tensor([[0.0, 0.0, 32.0, 32.0], [8.0, 8.0, 8.0, 20.0], [0.0, 0.0, 16.0, 16.0]]).repeat(
        2, 1, 1
    )
    mask = torch.tensor([[True, True, True], [True, True, False]])
    tokens, valid = pool(fm, boxes, mask, image_size=64)
    assert tokens.shape == (2, 3, 8)
    assert valid.tolist() == [[True, False, True], [True, False, False]]  # empty box dropped, absent kept off
    assert torch.all(tokens[~valid] == 0)
    assert torch.all(tokens[valid].abs().sum(-1) > 0)
    # a region token only depends on its own box's features
    fm2 = fm.clone()
    fm2[:, :, 2:, 2:] += 5.0  # outside box 2 (pixels 0..16 -> cells 0..1) but inside box 0
    tokens2, _ = pool(fm2, boxes, mask, image_size=64)
    torch.testing.assert_close(tokens2[0, 2], tokens[0, 2])
    assert not torch.allclose(tokens2[0, 0], tokens[0, 0])
