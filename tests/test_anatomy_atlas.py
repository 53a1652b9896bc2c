"""Atlas registration: recovers known affines, warps boxes, flags non-chest input, saves/loads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gkmvlp_monai.core.boxes import box_iou_paired
from gkmvlp_monai.data.synth.phantom import PhantomPose, chest_phantom
from gkmvlp_monai.transforms.atlas import Atlas, _fit_axis_maps, register_atlas


@pytest.fixture(scope="module")
def atlas() -> Atlas:
    rng = np.random.default_rng(3)
    imgs, boxes = [], []
    for i in range(4):
        pose = PhantomPose(*rng.uniform(0.95, 1.05, 2), *rng.uniform(-0.03, 0.03, 2))
        img, b = chest_phantom(128, 128, pose, seed=i)
        imgs.append(img)
        boxes.append(b)
    return Atlas.from_images(imgs, boxes, size=128)


def test_atlas_is_the_aligned_mean_with_median_boxes(atlas: Atlas) -> None:
    ref_img, ref_boxes = chest_phantom(128, 128, noise=0.0)
    assert atlas.image.shape == (128, 128) and atlas.mask.all()
    # the atlas boxes are the unposed phantom's up to one per-axis scale and shift (the mean pose)
    assert box_iou_paired(torch.tensor(atlas.boxes), torch.tensor(ref_boxes)).mean() > 0.75
    sx, tx, sy, ty = _fit_axis_maps(ref_boxes, atlas.boxes, atlas.mask)
    assert 0.9 < sx < 1.1 and 0.9 < sy < 1.1
    mapped = ref_boxes * np.array([sx, sy, sx, sy]) + np.array([tx, ty, tx, ty])
    assert box_iou_paired(torch.tensor(atlas.boxes), torch.tensor(mapped, dtype=torch.float32)).min() > 0.9
    assert np.corrcoef(atlas.image.ravel(), ref_img.ravel())[0, 1] > 0.9


@pytest.mark.parametrize(
    "pose, size",
    [
        (PhantomPose(1.12, 1.12, 0.06, -0.04), (192, 192)),  # zoom + shift, larger picture
        (PhantomPose(0.9, 1.05, -0.05, 0.04, rotation=4.0), (240, 200)),  # anisotropic, rotated, non-square
    ],
)
def test_registration_recovers_known_affine(atlas: Atlas, pose: PhantomPose, size: tuple[int, int]) -> None:
    img, truth = chest_phantom(*size, pose=pose, seed=7)
    boxes, conf, tf = register_atlas(img[None], atlas)
    assert boxes.shape == (29, 4) and conf.shape == (29,)
    iou = box_iou_paired(torch.tensor(boxes), torch.tensor(truth))
    assert iou.mean() > 0.85, iou
    assert conf.mean() > 0.6 and not tf.issues
    # the recovered affine maps the atlas frame's centre close to where the pose puts it
    m, t = pose.affine(*size)
    atlas_to_canon = max(size) / atlas.size
    centre = np.array([atlas.size / 2, atlas.size / 2])
    expected = m @ (np.array(size) / 2.0) + t
    got = tf.apply(centre[None])[0]
    assert np.abs(got - expected).max() < 0.05 * max(size), (got, expected, atlas_to_canon)


def test_boxes_follow_the_transform_exactly(atlas: Atlas) -> None:
    img, _ = chest_phantom(160, 160, PhantomPose(1.05, 1.0, 0.02, 0.0), seed=1)
    boxes, _, tf = register_atlas(img, atlas)
    corners = tf.apply(atlas.boxes[:, :2])
    np.testing.assert_allclose(boxes[:, :2], np.minimum(corners, tf.apply(atlas.boxes[:, 2:])), atol=1e-3)


@pytest.mark.parametrize("kind", ["noise", "blank", "gradient"])
def test_non_chest_input_gets_low_confidence(atlas: Atlas, kind: str) -> None:
    rng = np.random.default_rng(0)
    img = {
        "noise": rng.random((150, 150)),
        "blank": np.full((150, 150), 0.4),
        "gradient": np.tile(np.linspace(0, 1, 150), (150, 1)),
    }[kind].astype(np.float32)
    boxes, conf, tf = register_atlas(img, atlas)
    assert np.isfinite(boxes).all()
    assert conf.mean() < 0.2, (conf.mean(), tf.issues)
    assert tf.issues


def test_atlas_save_load_round_trip(atlas: Atlas, tmp_path) -> None:
    path = atlas.save(tmp_path / "atlas.npz")
    back = Atlas.load(path)
    np.testing.assert_array_equal(back.image, atlas.image)
    np.testing.assert_array_equal(back.boxes, atlas.boxes)
    assert back.meta["n_images"] == 4
