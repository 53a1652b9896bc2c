"""RegionBoxNet: shapes, loss decreases on an overfit batch, predict_boxes coordinates, augmentation."""

from __future__ import annotations

import numpy as np
import torch

from gkmvlp_monai.anatomy.model import RegionBoxLoss, RegionBoxNet, load_region_model
from gkmvlp_monai.anatomy.phantom import PhantomPose, chest_phantom
from gkmvlp_monai.anatomy.train import augment_batch, prepare_sample, train_region_model


def _phantoms(n: int, size: int = 64) -> list:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        pose = PhantomPose(*rng.uniform(0.9, 1.1, 2), *rng.uniform(-0.06, 0.06, 2))
        img, boxes = chest_phantom(size, size, pose, seed=i)
        out.append((img, boxes, np.ones(29, dtype=bool), f"phantom{i}"))
    return out


def test_forward_shapes_and_valid_boxes() -> None:
    torch.manual_seed(0)
    model = RegionBoxNet("resnet_tiny", img_size=64, hidden=16)
    out = model(torch.rand(3, 1, 64, 64))
    assert out["boxes"].shape == (3, 29, 4) and out["confidence_logits"].shape == (3, 29)
    b = out["boxes"]
    assert (
        (b >= 0).all()
        and (b <= 1).all()
        and (b[..., 2] >= b[..., 0]).all()
        and (b[..., 3] >= b[..., 1]).all()
    )


def test_loss_decreases_on_tiny_overfit_batch() -> None:
    torch.manual_seed(0)
    model = RegionBoxNet("resnet_tiny", img_size=64, hidden=16)
    samples = _phantoms(4)
    x = torch.stack([prepare_sample(img, b, m, 64)[0] for img, b, m, _ in samples])
    y = torch.stack([prepare_sample(img, b, m, 64)[1] for img, b, m, _ in samples])
    known = torch.ones(4, 29, dtype=torch.bool)
    with torch.no_grad():
        before = RegionBoxLoss()(model(x), y, known)["iou"]
    history = train_region_model(model, samples, epochs=30, batch_size=4, lr=3e-3, augment=False, log=None)
    assert history[-1] < 0.65 * history[0], history
    model.train()  # batch statistics, as during the 30 steps (running means are still warming up)
    with torch.no_grad():
        after = RegionBoxLoss()(model(x), y, known)["iou"]
    assert after > before + 0.2, (before, after)


def test_loss_masks_unknown_regions_and_negatives() -> None:
    pred = {
        "boxes": torch.tensor([[[0.1, 0.1, 0.5, 0.5], [0.0, 0.0, 0.1, 0.1]]]),
        "confidence_logits": torch.zeros(1, 2),
    }
    truth = torch.tensor([[[0.1, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.9]]])
    only_first = RegionBoxLoss()(pred, truth, torch.tensor([[True, False]]))
    assert only_first["l1"] == 0 and only_first["giou"] < 1e-6 and only_first["iou"] > 0.999
    both = RegionBoxLoss()(pred, truth, torch.tensor([[True, True]]))
    assert both["l1"] > 0
    neg = RegionBoxLoss()(pred, truth, torch.tensor([[True, True]]), negative=torch.tensor([True]))
    assert neg["l1"] == 0 and torch.isclose(neg["conf"], torch.log(torch.tensor(2.0)))


def test_predict_boxes_returns_original_pixels(tmp_path) -> None:
    torch.manual_seed(0)
    model = RegionBoxNet("resnet_tiny", img_size=64, hidden=16)
    img = np.random.default_rng(0).random((1, 120, 80)).astype(np.float32)  # W=120, H=80
    boxes, conf = model.predict_boxes(img)
    assert boxes.shape == (29, 4) and conf.shape == (29,) and ((conf > 0) & (conf < 1)).all()
    # letterbox: H=80 -> 43 rows padded by ~10 on each side; predictions in [0, 1] map to [-~19, ~99] in y
    assert boxes[:, 0].min() >= -1e-3 and boxes[:, 2].max() <= 120 + 1e-3
    assert boxes[:, 1].min() >= -20 and boxes[:, 3].max() <= 100
    path = tmp_path / "m.pt"
    torch.save({"config": model.config(), "state_dict": model.state_dict()}, path)
    again = load_region_model(path).predict_boxes(img)
    np.testing.assert_allclose(again[0], boxes, atol=1e-4)


def test_augment_moves_boxes_with_the_picture() -> None:
    img = torch.zeros(1, 1, 64, 64)
    img[0, 0, 10:20, 30:50] = 1.0  # x in [10, 20), y in [30, 50)
    box = torch.tensor([[[10, 30, 20, 50]]], dtype=torch.float32) / 64
    gen = torch.Generator().manual_seed(3)
    out, nb, neg = augment_batch(img, box, gen, negative_prob=0.0)
    assert not neg.any()
    on = out[0, 0] > 0.3
    xs, ys = torch.nonzero(on, as_tuple=True)
    centre = torch.tensor([xs.float().mean() + 0.5, ys.float().mean() + 0.5]) / 64
    expected = torch.tensor([(nb[0, 0, 0] + nb[0, 0, 2]) / 2, (nb[0, 0, 1] + nb[0, 0, 3]) / 2])
    assert torch.allclose(centre, expected, atol=1.5 / 64), (centre, expected)
