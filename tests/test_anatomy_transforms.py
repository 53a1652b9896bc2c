"""ExtractAnatomicalRegionsd: fills boxes in original pixels, records source/confidence, caches, warns."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from gkmvlp_monai.core.boxes import box_iou_paired, boxes_from_dict
from gkmvlp_monai.data.synth.phantom import PhantomPose, chest_phantom
from gkmvlp_monai.models.anatomy import RegionBoxNet
from gkmvlp_monai.transforms.atlas import Atlas
from gkmvlp_monai.transforms.regions import ExtractAnatomicalRegionsd, LowConfidenceRegionsWarning


@pytest.fixture(scope="module")
def atlas() -> Atlas:
    imgs, boxes = zip(*[chest_phantom(128, 128, PhantomPose(1.0 + 0.02 * i, 1.0), seed=i) for i in range(3)])
    return Atlas.from_images(list(imgs), list(boxes), size=128)


def _sample(img: np.ndarray, name: str) -> dict:
    return {"image": MetaTensor(torch.as_tensor(img)[None], meta={"filename_or_obj": name}), "report": "x"}


def test_fills_boxes_in_original_pixels_and_caches(atlas: Atlas, tmp_path) -> None:
    img, truth = chest_phantom(200, 160, PhantomPose(1.05, 0.95, 0.03, -0.02), seed=2)
    t = ExtractAnatomicalRegionsd(atlas=atlas, cache_dir=tmp_path / "cache")
    out = t(_sample(img, "/data/a.png"))
    assert out["region_source"] == "atlas" and 0.5 <= out["region_confidence"] <= 1.0
    boxes, mask = boxes_from_dict(out["region_boxes"])
    assert mask.all()
    assert box_iou_paired(torch.tensor(boxes), torch.tensor(truth)).mean() > 0.85
    assert t.computed == 1
    files = list((tmp_path / "cache").glob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["source"] == "/data/a.png"
    again = t(_sample(img, "/data/a_copy.png"))  # same content, other path: cache hit
    assert t.computed == 1 and again["region_boxes"] == out["region_boxes"]
    fresh = ExtractAnatomicalRegionsd(atlas=atlas, cache_dir=tmp_path / "cache")  # disk cache, new instance
    assert fresh(_sample(img, "/data/a.png"))["region_boxes"] == out["region_boxes"] and fresh.computed == 0


def test_existing_boxes_are_kept(atlas: Atlas) -> None:
    img, _ = chest_phantom(96, 96)
    d = _sample(img, "b.png")
    d["region_boxes"] = {"right lung": [1.0, 2.0, 30.0, 60.0]}
    t = ExtractAnatomicalRegionsd(atlas=atlas)
    out = t(d)
    assert (
        out["region_boxes"] == {"right lung": [1.0, 2.0, 30.0, 60.0]} and out["region_source"] == "annotation"
    )
    assert t.computed == 0


@pytest.mark.parametrize("policy", ["drop", "keep"])
def test_non_chest_image_warns_and_is_flagged(atlas: Atlas, policy: str) -> None:
    noise = np.random.default_rng(1).random((120, 120)).astype(np.float32)
    t = ExtractAnatomicalRegionsd(atlas=atlas, low_confidence=policy)
    with pytest.warns(LowConfidenceRegionsWarning, match="noise.png"):
        out = t(_sample(noise, "/data/noise.png"))
    assert out["region_confidence"] < 0.5
    if policy == "drop":
        assert out["region_boxes"] == {} and out["region_source"] == "default"
    else:
        assert len(out["region_boxes"]) == 29 and out["region_source"] == "atlas"


def test_low_confidence_model_falls_back_to_atlas(atlas: Atlas) -> None:
    torch.manual_seed(0)
    model = RegionBoxNet("resnet_tiny", img_size=64, hidden=16)
    with torch.no_grad():
        model.conf_head[-1].bias.fill_(-6.0)  # an untrained model that knows it is unsure
    img, _ = chest_phantom(128, 128, seed=4)
    t = ExtractAnatomicalRegionsd(model=model, atlas=atlas)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LowConfidenceRegionsWarning)
        out = t(_sample(img, "c.png"))
    assert out["region_source"] == "atlas" and out["region_confidence"] >= 0.5
    with torch.no_grad():
        model.conf_head[-1].bias.fill_(6.0)
    confident = ExtractAnatomicalRegionsd(model=model, atlas=atlas)
    assert confident(_sample(img, "c.png"))["region_source"] == "model"


def test_without_model_or_atlas_the_source_is_annotation_or_default() -> None:
    t = ExtractAnatomicalRegionsd()
    img, _ = chest_phantom(96, 96)
    out = t(_sample(img, "d.png"))
    assert out["region_source"] == "default" and out["region_confidence"] == 0.0
    assert "region_boxes" not in out and t.computed == 0  # nothing computed, the item left as it was
    boxed = t({**_sample(img, "e.png"), "region_boxes": {"right lung": [1.0, 2.0, 30.0, 60.0]}})
    assert boxed["region_source"] == "annotation" and boxed["region_confidence"] == 1.0
    with pytest.raises(ValueError, match="model, an atlas"):
        t.extract(img[None])


def test_dataset_cache_fingerprint_sees_the_region_method_not_the_results(atlas: Atlas) -> None:
    """The disk cache of a pipeline holding the extractor must change with the atlas / model weights (the
    attribute walk saw neither) and must not change with the boxes computed so far (a shared extractor)."""
    from gkmvlp_monai.data.dataset import transform_fingerprint

    other = Atlas(atlas.image[::-1].copy(), atlas.boxes.copy(), atlas.mask.copy())
    t1 = ExtractAnatomicalRegionsd(atlas=atlas)
    before = transform_fingerprint([t1])
    t1(_sample(chest_phantom(96, 96, seed=5)[0], "c.png"))  # fills its in-memory results
    assert transform_fingerprint([t1]) == before
    assert transform_fingerprint([ExtractAnatomicalRegionsd(atlas=atlas)]) == before
    assert transform_fingerprint([ExtractAnatomicalRegionsd(atlas=other)]) != before
    assert transform_fingerprint([ExtractAnatomicalRegionsd(atlas=atlas, min_confidence=0.9)]) != before
    torch.manual_seed(0)
    m1 = RegionBoxNet("resnet_tiny", img_size=64, hidden=16)
    m2 = RegionBoxNet("resnet_tiny", img_size=64, hidden=16)  # same layout, other weights
    fp1 = transform_fingerprint([ExtractAnatomicalRegionsd(model=m1, atlas=atlas)])
    assert fp1 != transform_fingerprint([ExtractAnatomicalRegionsd(model=m2, atlas=atlas)])
    assert fp1 != before
