"""The region-source rule: annotation -> anatomy model -> atlas -> default layout, decided by
ExtractAnatomicalRegionsd and recorded per image; the default layout given to the networks from that record."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor, list_data_collate
from PIL import Image

from gkmvlp_monai.core.boxes import default_layout, fill_default_regions, fixed_region_inputs
from gkmvlp_monai.core.vocab import default_region_boxes, region_names
from gkmvlp_monai.data.synth.phantom import PhantomPose, chest_phantom
from gkmvlp_monai.models.anatomy import RegionBoxNet
from gkmvlp_monai.tasks.pretrain.predictions import PretrainInferer
from gkmvlp_monai.transforms.atlas import Atlas
from gkmvlp_monai.transforms.pipelines import cxr_transforms
from gkmvlp_monai.transforms.regions import (
    REGION_SOURCES,
    ExtractAnatomicalRegionsd,
    LowConfidenceRegionsWarning,
    recorded_region_sources,
    region_extractor,
)

S, R = 64, len(region_names())


@pytest.fixture(scope="module")
def atlas() -> Atlas:
    imgs, boxes = zip(*[chest_phantom(128, 128, PhantomPose(1.0 + 0.02 * i, 1.0), seed=i) for i in range(3)])
    return Atlas.from_images(list(imgs), list(boxes), size=128)


def _sample(img: np.ndarray, name: str, **extra: object) -> dict:
    return {"image": MetaTensor(torch.as_tensor(img)[None], meta={"filename_or_obj": name}), **extra}


def _model(confident: bool) -> RegionBoxNet:
    torch.manual_seed(0)
    model = RegionBoxNet("resnet_tiny", img_size=64, hidden=16)
    with torch.no_grad():
        model.conf_head[-1].bias.fill_(6.0 if confident else -6.0)
    return model


def test_each_source_is_recorded_in_the_data_and_the_image_meta(atlas: Atlas) -> None:
    img, _ = chest_phantom(128, 128, seed=4)
    noise = np.random.default_rng(1).random((120, 120)).astype(np.float32)
    cases = {
        "annotation": (
            ExtractAnatomicalRegionsd(model=_model(True), atlas=atlas),
            _sample(img, "a.png", region_boxes={"right lung": [1.0, 2.0, 30.0, 60.0]}),
        ),
        "model": (ExtractAnatomicalRegionsd(model=_model(True), atlas=atlas), _sample(img, "m.png")),
        "atlas": (ExtractAnatomicalRegionsd(model=_model(False), atlas=atlas), _sample(img, "t.png")),
        "default": (ExtractAnatomicalRegionsd(), _sample(img, "d.png")),
    }
    assert tuple(cases) == REGION_SOURCES
    for source, (transform, sample) in cases.items():
        out = transform(sample)
        assert out["region_source"] == source and out["image"].meta["region_source"] == source, source
        known = out.get("region_boxes") or {}
        assert (len(known) == 29) == (source in ("model", "atlas")), source
    # model and atlas both unsure, boxes dropped: no source left but the default layout
    with pytest.warns(LowConfidenceRegionsWarning):
        dropped = ExtractAnatomicalRegionsd(model=_model(False), atlas=atlas)(_sample(noise, "n.png"))
    assert dropped["region_source"] == "default" and dropped["region_boxes"] == {}
    assert 0.0 < dropped["region_confidence"] < 0.5


def test_bundles_default_extractor_records_annotation_or_default(tmp_path) -> None:
    """region_extractor() with the bundles' default anatomy config (no model, no atlas) is the transform."""
    img, _ = chest_phantom(96, 80)
    path = tmp_path / "c.png"
    Image.fromarray((img.T * 255).astype(np.uint8)).save(path)
    extractor = region_extractor(cache_dir=tmp_path / "cache")
    assert isinstance(extractor, ExtractAnatomicalRegionsd)
    pipeline = cxr_transforms(S, region_extractor=extractor)
    items = [
        pipeline({"image": str(path)}),
        pipeline({"image": str(path), "region_boxes": {"right lung": [5, 5, 40, 70]}}),
    ]
    assert [i["region_source"] for i in items] == ["default", "annotation"]
    assert not items[0]["region_mask"].any() and items[1]["region_mask"].sum() == 1  # boxes as before
    assert not (tmp_path / "cache").exists()  # nothing computed, nothing cached
    batch = list_data_collate(items)
    assert recorded_region_sources(batch) == ["default", "annotation"]
    del batch["region_source"]  # SelectItemsd in a bundle's preprocessing: the image meta still has it
    assert recorded_region_sources(batch) == ["default", "annotation"]
    assert recorded_region_sources({"image": torch.zeros(2, 1, S, S)}) is None
    with pytest.raises(ValueError, match="not among"):
        recorded_region_sources({"region_source": ["default", "truth"]})


def test_default_layout_fills_only_images_without_boxes() -> None:
    image = torch.zeros(2, 1, S, S)
    boxes = torch.zeros(2, R, 4)
    boxes[0] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    mask = torch.zeros(2, R, dtype=torch.bool)
    mask[0, :3] = True
    b, m, used = fill_default_regions(image, boxes, mask)
    assert torch.equal(b[0], boxes[0]) and torch.equal(m[0], mask[0]) and used.tolist() == [False, True]
    assert m[1].all() and (b[1, :, 2] > b[1, :, 0]).all()
    assert torch.allclose(b[1], torch.tensor(default_region_boxes(S)))
    b2, m2, used2 = fill_default_regions(image, None, None)
    assert b2.shape == (2, R, 4) and m2.all() and used2.all()
    # a recorded "default" source wins over boxes (which the transform never gives such an image)
    b3, m3, used3 = fill_default_regions(image, boxes, mask, [True, False])
    assert used3.tolist() == [True, True] and torch.equal(b3[0], b2[0]) and m3.all()


class _Scorer(torch.nn.Module):
    """Records the region inputs the inferer hands to ``entity_scores``."""

    def entity_scores(self, image, boxes, mask):
        self.seen = (boxes, mask)
        b = image.shape[0]
        return torch.full((b, 3, 3), 1 / 3), torch.zeros(b, 3, 2, 2)

    def encode_image(self, image):
        return torch.zeros(image.shape[0], 4)


def test_pretrain_predictions_report_default_regions_from_the_recorded_source() -> None:
    boxes = torch.tensor([[4.0, 4.0, 40.0, 40.0]]).repeat(2, R, 1)
    image = MetaTensor(torch.rand(2, 1, S, S), meta={"region_source": ["annotation", "default"]})
    batch = {"image": image, "region_boxes": boxes, "region_mask": torch.zeros(2, R, dtype=torch.bool)}
    batch["region_mask"][0] = True
    net = _Scorer()
    out = PretrainInferer()(batch, net)
    assert out["default_regions"].tolist() == [False, True]
    seen_boxes, seen_mask = net.seen
    assert torch.equal(seen_boxes[0], boxes[0]) and seen_mask.all()
    assert torch.allclose(seen_boxes[1], torch.tensor(default_region_boxes(S)))
    # no recorded source (a batch built without the transform): images with no known box
    plain = PretrainInferer()({**batch, "image": torch.rand(2, 1, S, S)}, net)
    assert plain["default_regions"].tolist() == [False, True]


def test_export_wrappers_scale_the_fixed_layout() -> None:
    layout = default_layout(S)
    assert layout.dtype == torch.float32 and torch.allclose(layout, torch.tensor(default_region_boxes(S)))
    image = torch.zeros(3, 1, 2 * S, 2 * S)
    boxes, mask = fixed_region_inputs(image, layout, S)
    assert boxes.shape == (3, R, 4) and mask.shape == (3, R) and mask.all()
    assert torch.allclose(boxes[2], 2 * layout)
    some = torch.zeros(R, dtype=torch.bool)
    some[:4] = True
    assert torch.equal(fixed_region_inputs(image, layout, S, some)[1], some.expand(3, -1))
