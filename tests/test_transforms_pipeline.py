"""PNG/NIfTI readers, spatial/intensity transforms, boxes through the full train pipeline, pipeline factories."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, RandAffined
from PIL import Image

from gkmvlp_monai.core.vocab import region_names
from gkmvlp_monai.transforms import (
    ClipIntensityd,
    CXRImageError,
    LoadCXRImage,
    MapBoxesToImaged,
    PrepareBoxesd,
    RandResizedCropd,
    ResizeLongestPad,
    cxr_intensity_augmentations,
    cxr_transforms,
)


def _ramp(rows: int, cols: int) -> np.ndarray:
    yy, xx = np.mgrid[:rows, :cols]
    return (xx + 2 * yy) / (cols - 1 + 2 * (rows - 1))


def test_png_8_16_bit_rgb_and_orientation(tmp_path):
    pic = _ramp(30, 50)
    Image.fromarray(np.round(pic * 255).astype(np.uint8)).save(tmp_path / "g8.png")
    Image.fromarray(np.round(pic * 65535).astype(np.uint16)).save(tmp_path / "g16.png")
    rgb = np.repeat(np.round(pic * 255).astype(np.uint8)[..., None], 3, axis=2)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.jpg", quality=98)
    for name, tol in (
        ("g8.png", 0.5 / 255),
        ("g16.png", 0.5 / 65535),
        ("rgb.png", 1 / 255),
        ("rgb.jpg", 0.03),
    ):
        img = LoadCXRImage()(tmp_path / name)
        assert img.shape == (1, 50, 30), name  # [C, W, H]: x (columns) first
        assert str(img.dtype) == "torch.float32" and img.affine.shape == (3, 3)
        np.testing.assert_allclose(img[0].numpy(), pic.T, atol=tol + 1e-6, err_msg=name)
    assert LoadCXRImage()(tmp_path / "g16.png").meta["bits_stored"] == 16


def test_nifti(tmp_path):
    data = np.round(_ramp(20, 40) * 65535).astype(np.uint16).T  # stored [W, H]
    nib.save(nib.Nifti1Image(data[..., None], np.diag([0.5, 0.25, 1, 1])), tmp_path / "x.nii.gz")
    img = LoadCXRImage()(tmp_path / "x.nii.gz")
    assert img.shape == (1, 40, 20)
    np.testing.assert_allclose(img[0].numpy(), data / 65535, atol=1e-6)
    np.testing.assert_allclose(np.diag(img.affine.numpy()), [0.5, 0.25, 1])
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.uint8), np.eye(4)), tmp_path / "vol.nii")
    with pytest.raises(CXRImageError, match=r"vol\.nii.*2-D"):
        LoadCXRImage()(tmp_path / "vol.nii")


def test_bad_image_files(tmp_path):
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(CXRImageError, match=r"trunc\.png"):
        LoadCXRImage()(tmp_path / "trunc.png")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(CXRImageError, match=r"text\.png.*not a readable"):
        LoadCXRImage()(tmp_path / "text.png")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CXRImageError, match=r"notes\.txt.*unsupported file type"):
        LoadCXRImage()(tmp_path / "notes.txt")
    with pytest.raises(CXRImageError, match=r"gone\.png.*not found"):
        LoadCXRImage()(tmp_path / "gone.png")


@pytest.mark.parametrize("size", [224, 512])
@pytest.mark.parametrize("shape", [(300, 200), (200, 300), (256, 256)])
def test_resize_longest_pad(size, shape):
    img = MetaTensor(torch.ones(1, *shape))
    out = ResizeLongestPad(size)(img)
    assert out.shape == (1, size, size)
    content = (out[0] > 0.5).numpy()
    w, h = content.any(1).sum(), content.any(0).sum()
    long_, short = max(shape), min(shape)
    assert max(w, h) == size
    assert abs(min(w, h) - round(short * size / long_)) <= 1  # aspect kept
    with pytest.raises(ValueError, match=r"\[C, W, H\]"):
        ResizeLongestPad(size)(torch.ones(4, 4))


def test_rand_resized_crop_shapes_and_determinism():
    img = MetaTensor(torch.rand(1, 120, 100))
    t = RandResizedCropd("image", 64, scale=(0.3, 0.6))
    t.set_random_state(1)
    a = t({"image": img})["image"]
    t.set_random_state(1)
    b = t({"image": img})["image"]
    assert a.shape == (1, 64, 64) and torch.equal(a, b)
    with pytest.raises(ValueError, match="scale"):
        RandResizedCropd("image", 64, scale=(0.0, 1.2))


def test_intensity_augmentations_stay_in_unit_range():
    img = MetaTensor(torch.rand(1, 64, 64))
    t = Compose(cxr_intensity_augmentations("image", prob=1.0))
    t.set_random_state(0)
    out = t({"image": img})["image"]
    assert out.shape == img.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    assert not torch.allclose(out, img)
    clipped = ClipIntensityd("image")({"image": MetaTensor(torch.tensor([[[-1.0, 0.5, 2.0]]]))})["image"]
    assert clipped.tolist() == [[[0.0, 0.5, 1.0]]]


def test_prepare_boxes_names_the_item_of_a_bad_lesion_box():
    with pytest.raises(ValueError, match=r"a\.png.*lesion box 0"):
        PrepareBoxesd()({"image": "a.png", "lesion_boxes": [[1, 2, 3]]})


def _box_image(tmp_path, rows=360, cols=300):
    pic = np.zeros((rows, cols), np.uint8)
    pic[:] = 40  # body-ish background, not black padding
    box = (70, 90, 180, 200)  # x1, y1, x2, y2 in picture pixels
    pic[box[1] : box[3], box[0] : box[2]] = 255
    Image.fromarray(pic).save(tmp_path / "box.png")
    return str(tmp_path / "box.png"), box


@pytest.mark.parametrize("seed", range(6))
def test_box_follows_full_train_pipeline(tmp_path, seed):
    path, box = _box_image(tmp_path)
    names = region_names()
    item = {"image": path, "region_boxes": {names[5]: list(box)}, "lesion_boxes": [list(box), [0, 0, 5, 5]]}
    t = cxr_transforms(
        128, train=True, load_size=160, affine_prob=1.0, intensity_prob=0.0, crop_scale=(0.5, 0.9)
    )
    t.set_random_state(seed)
    out = t(item)
    img = out["image"]
    assert img.shape == (1, 128, 128) and out["region_boxes"].shape == (29, 4)
    assert out["region_mask"].dtype == torch.bool and out["region_mask"].sum() <= 1
    drawn = np.argwhere(img[0].numpy() > 0.75)
    if not out["region_mask"][5]:  # the box left the image: then nothing bright may remain
        assert len(drawn) == 0
        return
    x1, y1, x2, y2 = out["region_boxes"][5].tolist()
    assert len(drawn) > 0
    lo, hi = drawn.min(0), drawn.max(0) + 1
    # the transformed box covers every drawn pixel (1 px of interpolation slack) ...
    assert x1 <= lo[0] + 1 and y1 <= lo[1] + 1 and x2 >= hi[0] - 1 and y2 >= hi[1] - 1, (
        out["region_boxes"][5],
        lo,
        hi,
    )
    # ... and is not absurdly larger (rotation up to 10 degrees enlarges the enclosing box a bit)
    box_area = (x2 - x1) * (y2 - y1)
    drawn_area = (hi[0] - lo[0]) * (hi[1] - lo[1])
    assert box_area <= 1.5 * drawn_area + 4 * 128
    np.testing.assert_allclose(out["lesion_boxes"][0].numpy(), out["region_boxes"][5].numpy())
    assert out["lesion_mask"].shape == (2,)


def test_eval_pipeline_boxes_exact_and_absent_regions(tmp_path):
    path, box = _box_image(tmp_path, rows=400, cols=200)
    out = cxr_transforms(224)({"image": path, "region_boxes": {region_names()[0]: list(box)}})
    scale = 224 / 400
    pad_x = (224 - round(200 * scale)) // 2
    expected = [box[0] * scale + pad_x, box[1] * scale, box[2] * scale + pad_x, box[3] * scale]
    np.testing.assert_allclose(out["region_boxes"][0].numpy(), expected, atol=1e-3)
    assert out["region_mask"].tolist() == [True] + [False] * 28
    assert out["lesion_boxes"].shape == (0, 4)
    assert float(out["image"].min()) >= 0 and float(out["image"].max()) <= 1


def test_pipeline_structure():
    t = cxr_transforms(224, train=True)
    first_random = t.get_index_of_first(lambda x: hasattr(x, "R"))
    assert first_random == 3  # load, boxes, resize come first (cacheable)
    assert not any(type(x).__name__.lower().startswith(("randflip", "flip")) for x in t.transforms)
    assert isinstance(t.transforms[4], RandAffined) and isinstance(t.transforms[-1], MapBoxesToImaged)
    no_boxes = cxr_transforms(512, with_boxes=False)
    assert not any(isinstance(x, PrepareBoxesd | MapBoxesToImaged) for x in no_boxes.transforms)
    with pytest.raises(TypeError, match="train=True"):
        cxr_transforms(224, affine_prob=1.0)
