"""Region training glue: augmentation keeps boxes on the picture, negatives, IoU metric (hand-worked)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gkmvlp_monai.core.vocab import region_names
from gkmvlp_monai.tasks.anatomy.engine import RandNonChestd, prepare_region_batch, region_train_transforms
from gkmvlp_monai.tasks.anatomy.metrics import RegionIoU


def test_region_iou_hand_worked() -> None:
    names = ["a", "b", "c"]
    pred = torch.tensor([[[0, 0, 2, 2], [0, 0, 1, 1], [0, 0, 1, 1]]], dtype=torch.float32)
    truth = torch.tensor([[[1, 1, 3, 3], [0, 0, 1, 1], [5, 5, 6, 6]]], dtype=torch.float32)
    mask = torch.tensor([[True, True, False]])
    m = RegionIoU(per_region=True, prefix="x_", names=names)
    m.update((pred, truth, mask))
    truth2 = truth.clone()
    truth2[0, 0] = torch.tensor([0.0, 0, 2, 2])
    m.update((pred, truth2, mask))
    # a: IoU 1/7 (overlap 1, union 4 + 4 - 1) then IoU 1 ([0,0,2,2] vs itself); b: 1; c: never known
    out = m.compute()
    assert out["x_iou_a"] == pytest.approx((1 / 7 + 1) / 2)
    assert out["x_iou_b"] == pytest.approx(1.0) and "x_iou_c" not in out
    assert out["x_mean_iou"] == pytest.approx((1 / 7 + 1 + 1 + 1) / 4)
    single = RegionIoU(names=names)
    single.update((torch.cat([pred, torch.zeros(1, 3, 1)], -1), truth, mask))  # network output [B, R, 5]
    assert single.compute() == pytest.approx((1 / 7 + 1) / 2)
    empty = RegionIoU(names=names)
    empty.update(None)
    with pytest.raises(RuntimeError, match="no known region"):
        empty.compute()


def test_train_augmentation_moves_boxes_with_the_picture(tmp_path) -> None:
    w, h = 96, 80
    pic = np.zeros((h, w), dtype=np.uint8)  # rows = y
    x1, y1, x2, y2 = 20, 30, 50, 60
    pic[y1:y2, x1:x2] = 255
    path = tmp_path / "p.png"
    Image.fromarray(pic).save(path)
    det, rnd = region_train_transforms(64, negative_prob=0.0, crop_prob=1.0, intensity_prob=0.0)
    base = det({"image": str(path), "region_boxes": {"right lung": [x1, y1, x2, y2]}})
    idx = region_names().index("right lung")
    for seed in range(4):
        rnd.set_random_state(seed=seed)
        out = rnd(dict(base))
        assert set(out) == {"image", "region_boxes", "region_mask", "negative"} and not out["negative"]
        img = out["image"][0]
        on = torch.nonzero(img > 0.5 * img.max(), as_tuple=True)
        box = out["region_boxes"][idx]
        assert out["region_mask"][idx] and out["region_mask"].sum() == 1
        lo = torch.tensor([on[0].min(), on[1].min()], dtype=torch.float32)
        hi = torch.tensor([on[0].max() + 1, on[1].max() + 1], dtype=torch.float32)
        assert torch.allclose(lo, box[:2], atol=1.5) and torch.allclose(hi, box[2:], atol=1.5), (
            seed,
            lo,
            hi,
            box,
        )


def test_non_chest_negatives_keep_meta_and_flag() -> None:
    from monai.data import MetaTensor

    img = MetaTensor(torch.rand(1, 32, 32), meta={"filename_or_obj": "x.png"})
    t = RandNonChestd("image", prob=1.0)
    kinds = set()
    for seed in range(12):
        t.set_random_state(seed=seed)
        out = t({"image": img})
        assert out["negative"] and out["image"].meta["filename_or_obj"] == "x.png"
        assert not torch.equal(out["image"].as_tensor(), img.as_tensor())
        kinds.add(t._kind)
    assert len(kinds) >= 3
    never = RandNonChestd("image", prob=0.0)({"image": img})
    assert not never["negative"] and torch.equal(never["image"], img)


def test_prepare_batch_normalises_and_checks() -> None:
    batch = {
        "image": torch.zeros(2, 1, 64, 32),
        "region_boxes": torch.tensor([[[32.0, 16, 64, 32]] * 29] * 2),
        "region_mask": torch.ones(2, 29, dtype=torch.bool),
    }
    x, t = prepare_region_batch(batch)
    assert torch.allclose(t["boxes"][0, 0], torch.tensor([0.5, 0.5, 1.0, 1.0]))
    assert t["negative"].tolist() == [False, False]
    with pytest.raises(KeyError, match="region_mask"):
        prepare_region_batch({"image": batch["image"], "region_boxes": batch["region_boxes"]})
