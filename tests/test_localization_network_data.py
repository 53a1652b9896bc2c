"""Finding segmenter and zero-shot heat maps on tiny inputs; the target data path stays aligned."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from PIL import Image

from gkmvlp_monai.core import vocab
from gkmvlp_monai.tasks.localization.engine import (
    FindingMasksd,
    finding_entity_indices,
    localization_items,
    localization_transforms,
)
from gkmvlp_monai.tasks.localization.model import (
    FindingSegmenter,
    ZeroShotHeatmaps,
    build_finding_segmenter,
    normalise_maps,
)


def test_segmenter_shape_and_gradients():
    torch.manual_seed(0)
    net = build_finding_segmenter(3, size="tiny", image_size=64)
    x = torch.rand(2, 1, 64, 64)
    y = net(x)
    assert y.shape == (2, 3, 64, 64)
    y.mean().backward()
    enc = [p.grad for p in net.image_encoder.parameters()]
    dec = [p.grad for p in net.stages.parameters()] + [p.grad for p in net.head.parameters()]
    assert all(g is not None for g in enc + dec)
    assert any(float(g.abs().sum()) > 0 for g in enc) and float(dec[-1].abs().sum()) > 0


def test_segmenter_frozen_encoder_and_bad_size():
    net = build_finding_segmenter(1, size="tiny", image_size=64, freeze_encoder=True)
    assert not any(p.requires_grad for p in net.image_encoder.parameters())
    with pytest.raises(ValueError, match="power-of-two"):
        FindingSegmenter(net.image_encoder, 1, image_size=80)


def test_zero_shot_heatmaps_tiny():
    from gkmvlp_monai.models.gkmvlp import build_gkmvlp

    model = build_gkmvlp("tiny", [e.description for e in vocab.entities()], image_size=64).eval()
    idx = finding_entity_indices(["cardiomegaly", "Lung Opacity"])
    assert idx == [vocab.entity_index("cardiomegaly"), vocab.entity_index("opacity")]
    zs = ZeroShotHeatmaps(model, idx)
    boxes = torch.tensor([[8.0, 8.0, 40.0, 40.0]]).repeat(29, 1)[None]
    with torch.no_grad():
        maps = zs(
            {
                "image": torch.rand(1, 1, 64, 64),
                "region_boxes": boxes,
                "region_mask": torch.ones(1, 29, dtype=torch.bool),
            }
        )
    assert maps.shape == (1, 2, 64, 64)
    assert float(maps.min()) == pytest.approx(0.0, abs=1e-6) and float(maps.max()) == pytest.approx(
        1.0, abs=1e-6
    )
    assert torch.equal(normalise_maps(torch.ones(1, 3, 3)), torch.zeros(1, 3, 3))
    with pytest.raises(KeyError, match="neither an entity"):
        finding_entity_indices(["not a finding"])


def _write_case(tmp_path, width=80, height=60):
    """A non-square picture with one mask finding (a 10x6 block) and one box-only finding."""
    img = np.zeros((height, width), np.uint8)
    img[20:26, 30:40] = 255  # rows 20..25, columns 30..39
    Image.fromarray(img).save(tmp_path / "img.png")
    mask = np.zeros((height, width), np.uint8)
    mask[20:26, 30:40] = 255
    Image.fromarray(mask).save(tmp_path / "m0.png")
    item = {
        "image": "img.png",
        "lesion_boxes": [[30.0, 20.0, 40.0, 26.0], [50.0, 40.0, 70.0, 50.0]],
        "lesion_labels": ["nodule", "effusion"],
        "masks": ["m0.png", ""],
        "mask": "m0.png",
    }
    import json

    (tmp_path / "datalist.json").write_text(json.dumps({"training": [item], "validation": [], "test": []}))
    return tmp_path / "datalist.json"


def test_targets_stay_aligned_with_image(tmp_path):
    datalist = _write_case(tmp_path)
    items = localization_items(datalist, "training")
    assert items[0]["masks"][0] == str(tmp_path / "m0.png")
    det, tail = localization_transforms(40, ["effusion", "nodule"], train=False)
    out = tail(det(items[0]))
    assert out["image"].shape == (1, 40, 40) and out["label"].shape == (2, 40, 40)
    # resize 80x60 -> 40x30 (scale 0.5), pad y by 5: the nodule block -> x 15..19, y 15..17
    nodule = out["label"][1] > 0
    assert torch.equal(nodule, out["image"][0] > 0.5)
    xs, ys = np.nonzero(nodule.numpy())
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (15, 19, 15, 17)
    # box-only effusion [50, 40, 70, 50] -> [25, 25, 35, 30]
    xs, ys = np.nonzero(out["label"][0].numpy())
    assert (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) == (25, 35, 25, 30)


def test_targets_follow_random_affine(tmp_path):
    datalist = _write_case(tmp_path)
    item = localization_items(datalist, "training")[0]
    det, tail = localization_transforms(
        40, ["nodule"], train=True, affine_prob=1.0, rotate_degrees=20, intensity_prob=0.0
    )
    for seed in range(3):
        tail.set_random_state(seed)
        out = tail(det(dict(item)))
        img, lab = out["image"][0] > 0.5, out["label"][0] > 0
        inter = float((img & lab).sum())
        assert inter / float((img | lab).sum()) > 0.8


def test_finding_masks_errors(tmp_path):
    img = MetaTensor(torch.zeros(1, 8, 6), affine=torch.eye(3))
    with pytest.raises(FileNotFoundError, match="missing.png"):
        FindingMasksd(["nodule"])(
            {
                "image": img,
                "lesion_boxes": [[0, 0, 1, 1]],
                "lesion_labels": ["nodule"],
                "masks": [str(tmp_path / "missing.png")],
            }
        )
    with pytest.raises(ValueError, match="lesion_labels"):
        FindingMasksd(["nodule"])({"image": img, "lesion_boxes": [[0, 0, 1, 1]], "lesion_labels": []})
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(ValueError, match="small.png"):
        FindingMasksd(["pneumothorax"])({"image": img, "mask": str(tmp_path / "small.png")})
