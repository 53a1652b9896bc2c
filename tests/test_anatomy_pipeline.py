"""Pipeline wiring: cxr_transforms fills in region boxes for items without them when given an extractor."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gkmvlp_monai.data.synth.phantom import PhantomPose, chest_phantom
from gkmvlp_monai.transforms.atlas import Atlas
from gkmvlp_monai.transforms.pipelines import cxr_transforms
from gkmvlp_monai.transforms.regions import ExtractAnatomicalRegionsd


@pytest.fixture(scope="module")
def atlas() -> Atlas:
    imgs, boxes = zip(*[chest_phantom(128, 128, PhantomPose(1.0 + 0.02 * i, 1.0), seed=i) for i in range(3)])
    return Atlas.from_images(list(imgs), list(boxes), size=128)


def test_item_without_boxes_gets_them(atlas: Atlas, tmp_path) -> None:
    img, _ = chest_phantom(128, 128, PhantomPose(1.03, 0.98), seed=5)  # [W, H]
    path = tmp_path / "chest.png"
    Image.fromarray((np.clip(img.T, 0, 1) * 255).astype(np.uint8)).save(path)
    plain = cxr_transforms(64)({"image": str(path)})
    assert not plain["region_mask"].any()  # default behaviour unchanged: no boxes, all regions absent
    wired = cxr_transforms(64, region_extractor=ExtractAnatomicalRegionsd(atlas=atlas))({"image": str(path)})
    assert wired["region_mask"].sum() >= 25 and wired["region_source"] == "atlas"
    assert wired["region_boxes"].shape == (29, 4) and float(wired["region_boxes"].max()) <= 64
    truth = {"right lung": [10.0, 20.0, 60.0, 100.0]}
    kept = cxr_transforms(64, region_extractor=ExtractAnatomicalRegionsd(atlas=atlas))(
        {"image": str(path), "region_boxes": truth}
    )
    assert kept["region_source"] == "annotation" and kept["region_mask"].sum() == 1


_FIRST_FOUR = [f"train#deterministic_transforms#transforms#{i}" for i in range(4)]
BUNDLE_PIPELINES = {
    ("gkmvlp_pretrain", "train.json"): "image_transforms",
    ("gkmvlp_pretrain", "inference.json"): "preprocessing#transforms#0",
    ("gkmvlp_classification", "train.json"): _FIRST_FOUR,
    ("gkmvlp_report_generation", "train.json"): "image_transforms",
    ("gkmvlp_report_generation", "inference.json"): "preprocessing#transforms#0",
    ("gkmvlp_localization", "train.json"): "image_and_map",
    ("gkmvlp_vqa", "train.json"): "image_transforms",
}


@pytest.mark.parametrize(("bundle", "config"), sorted(BUNDLE_PIPELINES))
def test_bundles_fill_in_regions_when_switched_on(bundle: str, config: str, atlas: Atlas, tmp_path) -> None:
    """Every GK-MVLP bundle's pipeline takes region boxes from cxr_anatomy when its `anatomy` config points
    at an atlas (or a model); by default (both None) items without boxes keep every region absent, their
    region source recorded as the default layout."""
    from monai.bundle import ConfigParser
    from monai.transforms import Compose

    from gkmvlp_monai.core.paths import REPO_ROOT

    img, _ = chest_phantom(128, 128, PhantomPose(1.03, 0.98), seed=5)
    path = tmp_path / "chest.png"
    Image.fromarray((np.clip(img.T, 0, 1) * 255).astype(np.uint8)).save(path)
    atlas_file = tmp_path / "atlas.npz"
    atlas.save(atlas_file)

    def pipeline(anatomy_atlas):
        parser = ConfigParser()
        configs = REPO_ROOT / "bundles" / bundle / "configs"
        files = (
            [configs / config] if config == "inference.json" else [configs / "base.json", configs / config]
        )
        parser.read_config([str(f) for f in files])
        parser["output_dir"] = str(tmp_path / "out")
        parser["image_size"] = 64
        parser["anatomy"]["atlas"] = anatomy_atlas
        ids = BUNDLE_PIPELINES[(bundle, config)]
        if isinstance(ids, list):
            return [parser.get_parsed_content(i) for i in ids]
        steps = parser.get_parsed_content(ids)
        steps = steps[0] if isinstance(steps, tuple) else steps
        return steps.transforms if isinstance(steps, Compose) else steps

    item = {"image": str(path)}
    plain = Compose(pipeline(None))(dict(item))
    assert not plain["region_mask"].any() and plain["region_source"] == "default"
    assert plain["image"].meta["region_source"] == "default"
    filled = Compose(pipeline(str(atlas_file)))(dict(item))
    assert filled["region_mask"].sum() >= 25 and filled["region_source"] == "atlas"
    assert (tmp_path / "out" / "region_cache").is_dir()  # predicted boxes cached: each picture once
