"""CXRDicomReader / LoadCXRImage on DICOM fixtures written by our writer: codecs, LUTs, photometric, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest
from monai.transforms import LoadImage

from gkmvlp_monai.data.dicom_writer import (
    LOSSY_TRANSFER_SYNTAXES,
    TRANSFER_SYNTAXES,
    voi_lut_item,
    write_cxr_dicom,
)
from gkmvlp_monai.transforms.io import CXRDicomReader, CXRImageError, LoadCXRImage, LoadCXRImaged


def _picture(bits: int, rows: int = 72, cols: int = 56) -> np.ndarray:
    yy, xx = np.mgrid[:rows, :cols]
    smooth = (np.sin(xx / 7.0) + np.cos(yy / 5.0) + 2) / 4
    smooth[0, 0], smooth[-1, -1] = 0.0, 1.0  # full range, so min-max scaling is exact
    return np.round(smooth * (2**bits - 1)).astype(np.uint8 if bits == 8 else np.uint16)


def _as_wh(pic: np.ndarray, bits: int) -> np.ndarray:
    return pic.T.astype(np.float64) / (2**bits - 1)


@pytest.mark.parametrize("syntax", sorted(TRANSFER_SYNTAXES))
def test_every_transfer_syntax_decodes(tmp_path, syntax):
    bits = 8 if syntax == "jpeg-baseline" else 12
    pic = _picture(bits)
    path = write_cxr_dicom(tmp_path / f"{syntax}.dcm", pic, transfer_syntax=syntax, bits_stored=bits)
    img = LoadCXRImage()(path)
    assert img.shape == (1, pic.shape[1], pic.shape[0])  # [C, W, H]
    assert img.dtype.is_floating_point and str(img.dtype) == "torch.float32"
    tol = 0.01 if syntax in LOSSY_TRANSFER_SYNTAXES else 1e-6
    np.testing.assert_allclose(img[0].numpy(), _as_wh(pic, bits), atol=tol)
    assert img.meta["transfer_syntax"] == TRANSFER_SYNTAXES[syntax]


@pytest.mark.parametrize("bits", [8, 10, 12, 16])
@pytest.mark.parametrize("syntax", ["explicit", "jpeg-ls"])
def test_monochrome1_displays_like_monochrome2(tmp_path, bits, syntax):
    pic = _picture(bits)
    a = LoadCXRImage()(write_cxr_dicom(tmp_path / "m2.dcm", pic, bits_stored=bits, transfer_syntax=syntax))
    b = LoadCXRImage()(
        write_cxr_dicom(
            tmp_path / "m1.dcm", pic, bits_stored=bits, photometric="MONOCHROME1", transfer_syntax=syntax
        )
    )
    # the stored values really differ (inverted), the displayed pictures do not
    assert not np.array_equal(pydicom.dcmread(tmp_path / "m1.dcm").pixel_array, pic)
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    assert b.meta["photometric"] == "MONOCHROME1" and b.meta["bits_stored"] == bits


def test_window_rescale_and_voi_lut(tmp_path):
    pic = _picture(16)
    # window [1000, 3000] in modality units: values below are black, above white
    path = write_cxr_dicom(
        tmp_path / "w.dcm", pic, bits_stored=16, window=(2000.5, 2001), rescale=(0.5, -100.0)
    )
    img = LoadCXRImage()(path)[0].numpy()
    modality = pic.T.astype(np.float64) * 0.5 - 100.0
    expected = np.clip((modality - (2000.5 - 0.5)) / 2000 + 0.5, 0, 1)
    np.testing.assert_allclose(img, expected, atol=1e-3)
    assert img.min() == 0.0 and img.max() == 1.0

    # a VOI LUT takes precedence: invert through the LUT, output 16-bit
    lut = (65535 - np.arange(4096) * 16).astype(np.uint16)
    pic12 = _picture(12)
    path = write_cxr_dicom(tmp_path / "l.dcm", pic12, voi_lut=voi_lut_item(lut), window=(100, 10))
    img = LoadCXRImage()(path)
    np.testing.assert_allclose(img[0].numpy(), (65535 - pic12.T * 16.0) / 65535, atol=1e-6)
    assert img.meta["voi"] == "voi-lut"


def test_rescale_without_window_is_min_max(tmp_path):
    pic = _picture(12)
    img = LoadCXRImage()(write_cxr_dicom(tmp_path / "r.dcm", pic, rescale=(2.0, -1024.0)))
    np.testing.assert_allclose(img[0].numpy(), _as_wh(pic, 12), atol=1e-6)


def test_geometry_and_metadata(tmp_path):
    pic = _picture(12, rows=40, cols=64)
    path = write_cxr_dicom(
        tmp_path / "g.dcm", pic, pixel_spacing=(0.2, 0.5), view_position="AP", modality="CR"
    )
    img = LoadCXRImaged("image")({"image": str(path)})["image"]
    assert img.shape == (1, 64, 40)
    assert img.affine.shape == (3, 3)
    np.testing.assert_allclose(np.diag(img.affine.numpy()), [0.5, 0.2, 1.0])  # x spacing = column spacing
    assert (
        img.meta["view_position"] == "AP"
        and img.meta["modality"] == "CR"
        and img.meta["body_part"] == "CHEST"
    )
    # registered the MONAI way: plain LoadImage works with the reader
    arr = LoadImage(reader=CXRDicomReader(), image_only=True)(str(path))
    assert tuple(arr.shape) == (64, 40)


def test_dicom_without_suffix_is_found_by_preamble(tmp_path):
    pic = _picture(12)
    path = write_cxr_dicom(tmp_path / "IM0001", pic)
    assert LoadCXRImage()(path).shape == (1, 56, 72)


@pytest.mark.parametrize("modality", ["CT", "MR", "US"])
def test_other_modalities_are_refused(tmp_path, modality):
    path = write_cxr_dicom(tmp_path / "ct.dcm", _picture(12), modality=modality)
    with pytest.raises(CXRImageError, match=rf"ct\.dcm.*modality '{modality}'"):
        LoadCXRImage()(path)


def test_multiframe_missing_pixels_truncated_and_garbage(tmp_path):
    with pytest.raises(CXRImageError, match=r"mf\.dcm.*multi-frame"):
        LoadCXRImage()(write_cxr_dicom(tmp_path / "mf.dcm", _picture(12), number_of_frames=2))
    with pytest.raises(CXRImageError, match=r"np\.dcm.*no pixel data"):
        LoadCXRImage()(write_cxr_dicom(tmp_path / "np.dcm", _picture(12), extra={"PixelData": None}))
    for syntax in ("explicit", "jpeg2000-lossless"):
        full = write_cxr_dicom(tmp_path / f"t_{syntax}.dcm", _picture(12), transfer_syntax=syntax)
        data = full.read_bytes()
        full.write_bytes(data[: len(data) * 2 // 3])
        with pytest.raises(CXRImageError, match=rf"t_{syntax}\.dcm"):
            LoadCXRImage()(full)
        full.write_bytes(data[:200])  # cut inside the header
        with pytest.raises(CXRImageError, match=rf"t_{syntax}\.dcm"):
            LoadCXRImage()(full)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"this is not a DICOM file" * 10)
    with pytest.raises(CXRImageError, match=r"junk\.dcm"):
        LoadCXRImage()(junk)
    with pytest.raises(CXRImageError, match=r"absent\.dcm.*not found"):
        LoadCXRImage()(tmp_path / "absent.dcm")


def test_non_chest_body_part_warns_but_loads(tmp_path):
    path = write_cxr_dicom(tmp_path / "hand.dcm", _picture(12), body_part="HAND")
    with pytest.warns(UserWarning, match=r"hand\.dcm.*HAND"):
        img = LoadCXRImage()(path)
    assert img.shape == (1, 56, 72)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LoadCXRImage(check_body_part=False)(path)
