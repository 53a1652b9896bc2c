"""RegionBoxNet: output layout, loss masking, training through MONAI's engine on phantoms, predict_boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ignite.engine import Events
from monai.data import DataLoader

from gkmvlp_monai.data.synth.phantom import PhantomPose, chest_phantom
from gkmvlp_monai.engine.trainer import CXRTrainer
from gkmvlp_monai.models.anatomy import RegionBoxLoss, RegionBoxNet, load_region_model, split_output
from gkmvlp_monai.tasks.anatomy.engine import prepare_region_batch


def _phantom_samples(n: int, size: int = 64) -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        pose = PhantomPose(*rng.uniform(0.9, 1.1, 2), *rng.uniform(-0.06, 0.06, 2))
        img, boxes = chest_phantom(size, size, pose, seed=i)
        out.append(
            {
                "image": torch.as_tensor(img, dtype=torch.float32)[None],
                "region_boxes": torch.as_tensor(boxes, dtype=torch.float32),
                "region_mask": torch.ones(29, dtype=torch.bool),
            }
        )
    return out


def test_forward_layout_and_valid_boxes() -> None:
    torch.manual_seed(0)
    model = RegionBoxNet("resnet_tiny", img_size=64, hidden=16)
    out = model(torch.rand(3, 1, 64, 64))
    assert out.shape == (3, 29, 5)
    b, logits = split_output(out)
    assert logits.shape == (3, 29)
    assert (
        (b >= 0).all()
        and (b <= 1).all()
        and (b[..., 2] >= b[..., 0]).all()
        and (b[..., 3] >= b[..., 1]).all()
    )


def test_loss_masks_unknown_regions_and_negatives() -> None:
    pred = torch.tensor([[[0.1, 0.1, 0.5, 0.5, 0.0], [0.0, 0.0, 0.1, 0.1, 0.0]]])
    truth = torch.tensor([[[0.1, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.9]]])
    loss = RegionBoxLoss()
    only_first = loss.terms(pred, truth, torch.tensor([[True, False]]))
    assert only_first["l1"] == 0 and only_first["giou"] < 1e-6 and only_first["iou"] > 0.999
    # confidence target of the exact box is IoU 1: BCE(logit 0, 1) = log 2
    assert torch.isclose(only_first["conf"], torch.log(torch.tensor(2.0)))
    both = loss.terms(pred, truth, torch.tensor([[True, True]]))
    assert torch.isclose(both["l1"], torch.tensor((0.6 + 0.6 + 0.8 + 0.8) / 2))
    neg = loss.terms(pred, truth, torch.tensor([[True, True]]), negative=torch.tensor([True]))
    assert neg["l1"] == 0 and torch.isclose(neg["conf"], torch.log(torch.tensor(2.0)))
    # engine form: loss(pred, target dict) is the weighted total
    target = {"boxes": truth, "mask": torch.tensor([[True, True]]), "negative": torch.tensor([False])}
    assert torch.isclose(loss(pred, target), both["loss"])


@pytest.mark.slow
def test_engine_training_fits_phantoms() -> None:
    torch.manual_seed(0)
    model = RegionBoxNet("resnet_tiny", img_size=64, hidden=16)
    samples = _phantom_samples(4)
    loader = DataLoader(samples, batch_size=4, shuffle=False)
    batch = next(iter(loader))
    x, target = prepare_region_batch(batch)
    assert target["boxes"].shape == (4, 29, 4) and not target["negative"].any()
    loss = RegionBoxLoss()
    with torch.no_grad():
        before = loss.terms(model(x), target["boxes"], target["mask"])["iou"]
    trainer = CXRTrainer(
        device=torch.device("cpu"),
        max_epochs=30,
        train_data_loader=loader,
        network=model,
        optimizer=torch.optim.AdamW(model.parameters(), lr=3e-3),
        loss_function=loss,
        prepare_batch=prepare_region_batch,
        decollate=False,
    )
    losses = []
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: losses.append(float(e.state.output["loss"]))
    )
    trainer.run()
    assert losses[-1] < 0.65 * losses[0], losses
    model.train()  # batch statistics, as during the 30 steps
    with torch.no_grad():
        after = loss.terms(model(x), target["boxes"], target["mask"])["iou"]
    assert after > before + 0.2, (before, after)


def test_predict_boxes_returns_original_pixels(tmp_path) -> None:
    torch.manual_seed(0)
    model = RegionBoxNet("resnet_tiny", img_size=64, hidden=16)
    img = np.random.default_rng(0).random((1, 120, 80)).astype(np.float32)  # W=120, H=80
    boxes, conf = model.predict_boxes(img)
    assert boxes.shape == (29, 4) and conf.shape == (29,) and ((conf > 0) & (conf < 1)).all()
    assert boxes[:, 0].min() >= -1e-3 and boxes[:, 2].max() <= 120 + 1e-3
    assert boxes[:, 1].min() >= -20 and boxes[:, 3].max() <= 100
    path = tmp_path / "m.pt"
    torch.save({"config": model.config(), "state_dict": model.state_dict()}, path)
    np.testing.assert_allclose(load_region_model(path).predict_boxes(img)[0], boxes, atol=1e-4)
    plain = tmp_path / "model.pt"  # the bundle's plain state dict needs the constructor arguments
    torch.save(model.state_dict(), plain)
    np.testing.assert_allclose(
        load_region_model(plain, arch="resnet_tiny", img_size=64, hidden=16).predict_boxes(img)[0],
        boxes,
        atol=1e-4,
    )
