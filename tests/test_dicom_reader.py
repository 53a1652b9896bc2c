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


@pytest.mark.parametrize("part", ["EXTREMITY", "HAND"])
def test_non_chest_body_part_is_refused_naming_file_and_value(tmp_path, part):
    path = write_cxr_dicom(tmp_path / "limb.dcm", _picture(12), modality="CR", body_part=part)
    with pytest.raises(CXRImageError, match=rf"limb\.dcm: BodyPartExamined is '{part}', not the chest"):
        LoadCXRImage()(path)


def test_allow_non_chest_loads_flagged(tmp_path):
    path = write_cxr_dicom(tmp_path / "hand.dcm", _picture(12), modality="CR", body_part="HAND")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # flagged in the metadata, not with a Python warning
        img = LoadCXRImage(allow_non_chest=True)(path)
    assert img.shape == (1, 56, 72)
    assert img.meta["in_scope"] is False and img.meta["body_part"] == "HAND"
    assert "BodyPartExamined is 'HAND', not the chest" in img.meta["scope_reason"]
    # check_body_part=False skips the check altogether (the part is still recorded)
    unchecked = LoadCXRImage(check_body_part=False)(path)
    assert unchecked.meta["in_scope"] is True and unchecked.meta["body_part"] == "HAND"


@pytest.mark.parametrize("part", ["CHEST", "THORAX", "Chest", "LUNG", "CHESTABDOMEN", "CHEST_TO_PELVIS"])
def test_chest_synonyms_are_in_scope(tmp_path, part):
    img = LoadCXRImage()(write_cxr_dicom(tmp_path / "c.dcm", _picture(12), body_part=part))
    assert img.meta["in_scope"] is True and img.meta["scope_reason"] == ""
    assert img.meta["body_part"] == part and img.meta["body_part_source"] == "BodyPartExamined"


def _region(code: str, meaning: str) -> pydicom.Sequence:
    item = pydicom.Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code, "SCT", meaning
    return pydicom.Sequence([item])


def test_anatomic_region_sequence_and_description_fallbacks(tmp_path):
    pic = _picture(12)
    hand = write_cxr_dicom(
        tmp_path / "ars_hand.dcm",
        pic,
        body_part="",
        extra={"AnatomicRegionSequence": _region("85562004", "Hand")},
    )
    with pytest.raises(
        CXRImageError, match=r"ars_hand\.dcm: AnatomicRegionSequence is 'Hand \(SCT 85562004\)'"
    ):
        LoadCXRImage()(hand)
    thorax = write_cxr_dicom(
        tmp_path / "ars_thorax.dcm",
        pic,
        body_part="",
        extra={"AnatomicRegionSequence": _region("51185008", "Thoracic structure")},
    )
    meta = LoadCXRImage()(thorax).meta
    assert meta["in_scope"] is True and meta["body_part_source"] == "AnatomicRegionSequence"
    # no body part anywhere but a description naming another part
    wrist = write_cxr_dicom(tmp_path / "sd.dcm", pic, body_part="", extra={"SeriesDescription": "WRIST PA"})
    with pytest.raises(CXRImageError, match=r"sd\.dcm: SeriesDescription is 'WRIST PA', not the chest"):
        LoadCXRImage()(wrist)
    chest = write_cxr_dicom(tmp_path / "sc.dcm", pic, body_part="", extra={"StudyDescription": "XR CHEST PA"})
    assert LoadCXRImage()(chest).meta["body_part_source"] == "StudyDescription"
    # a thoracic spine film is not a chest radiograph, whatever its name holds
    with pytest.raises(CXRImageError, match=r"ts\.dcm"):
        LoadCXRImage()(write_cxr_dicom(tmp_path / "ts.dcm", pic, body_part="TSPINE"))


def test_unknown_body_part_is_accepted(tmp_path):
    path = write_cxr_dicom(
        tmp_path / "u.dcm", _picture(12), body_part="", extra={"SeriesDescription": "Routine"}
    )
    meta = LoadCXRImage()(path).meta
    assert meta["in_scope"] is True and meta["body_part"] == "" and meta["body_part_source"] == ""


def test_view_position_and_its_fallbacks(tmp_path):
    pic = _picture(12)
    assert (
        LoadCXRImage()(write_cxr_dicom(tmp_path / "ap.dcm", pic, view_position="AP")).meta["view_position"]
        == "AP"
    )
    # no ViewPosition: PatientOrientation with an anterior/posterior row direction is a lateral
    lat = LoadCXRImage()(
        write_cxr_dicom(tmp_path / "po.dcm", pic, view_position="", extra={"PatientOrientation": ["A", "F"]})
    )
    assert (lat.meta["view_position"], lat.meta["view_source"]) == ("LATERAL", "PatientOrientation")
    desc = write_cxr_dicom(
        tmp_path / "sd.dcm",
        pic,
        view_position="",
        extra={"SeriesDescription": "CHEST PA", "PatientOrientation": None},
    )
    assert LoadCXRImage()(desc).meta["view_position"] == "PA"
    both = write_cxr_dicom(
        tmp_path / "b.dcm",
        pic,
        view_position="",
        extra={"SeriesDescription": "CHEST PA AND LAT", "PatientOrientation": None},
    )
    assert LoadCXRImage()(both).meta["view_position"] == ""
    # a file without any view hint takes the datalist item's view
    bare = write_cxr_dicom(tmp_path / "bare.dcm", pic, view_position="", extra={"PatientOrientation": None})
    item = LoadCXRImaged("image")({"image": str(bare), "view": "PA"})
    assert (item["image"].meta["view_position"], item["image"].meta["view_source"]) == ("PA", "datalist")


@pytest.mark.parametrize("view", ["LL", "RL", "LATERAL"])
def test_lateral_policies(tmp_path, view):
    path = write_cxr_dicom(tmp_path / "lat.dcm", _picture(12), view_position=view)
    assert LoadCXRImage()(path).meta["in_scope"] is True  # training pipelines accept laterals
    flagged = LoadCXRImage(lateral="flag")(path).meta
    assert flagged["in_scope"] is False
    assert flagged["scope_reason"] == "lateral view; model trained on frontal views"
    with pytest.raises(CXRImageError, match=rf"lat\.dcm: lateral view '{view}'"):
        LoadCXRImage(lateral="refuse")(path)
    # both reasons are kept
    hand = write_cxr_dicom(tmp_path / "h.dcm", _picture(12), view_position=view, body_part="HAND")
    meta = LoadCXRImage(allow_non_chest=True, lateral="flag")(hand).meta
    assert "HAND" in meta["scope_reason"] and "lateral view" in meta["scope_reason"]
    with pytest.raises(ValueError, match="lateral"):
        LoadCXRImage(lateral="maybe")
