"""Tests of the chest X-ray DICOM writer (headers, photometric handling, every transfer syntax)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from gkmvlp_monai.data.dicom_writer import (
    LOSSY_TRANSFER_SYNTAXES,
    SOP_CLASS_BY_MODALITY,
    TRANSFER_SYNTAXES,
    write_cxr_dicom,
)


def _picture(bits: int, rows: int = 96, cols: int = 80) -> np.ndarray:
    yy, xx = np.mgrid[:rows, :cols]
    smooth = (np.sin(xx / 9.0) + np.cos(yy / 7.0) + 2) / 4
    return np.round(smooth * (2**bits - 1)).astype(np.uint8 if bits == 8 else np.uint16)


@pytest.mark.parametrize("syntax", sorted(TRANSFER_SYNTAXES))
@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_round_trip_every_syntax(tmp_path, syntax, photometric):
    bits = 8 if syntax == "jpeg-baseline" else 12
    pic = _picture(bits)
    path = write_cxr_dicom(
        tmp_path / "x.dcm", pic, transfer_syntax=syntax, bits_stored=bits, photometric=photometric
    )
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == TRANSFER_SYNTAXES[syntax]
    assert ds.PhotometricInterpretation == photometric
    stored = ds.pixel_array.astype(np.int64)
    assert stored.shape == pic.shape
    shown = (2**bits - 1) - stored if photometric == "MONOCHROME1" else stored
    err = np.abs(shown - pic.astype(np.int64)).max()
    tol = 0.01 * (2**bits - 1) if syntax in LOSSY_TRANSFER_SYNTAXES else 0
    assert err <= tol, f"{syntax}: max error {err}"
    if syntax in LOSSY_TRANSFER_SYNTAXES:
        assert ds.LossyImageCompression == "01"


@pytest.mark.parametrize("modality", ["DX", "CR"])
def test_headers(tmp_path, modality):
    path = write_cxr_dicom(
        tmp_path / "h.dcm",
        _picture(16),
        bits_stored=16,
        modality=modality,
        view_position="AP",
        pixel_spacing=(0.2, 0.25),
        window=(30000, 20000),
        rescale=(2.0, -10.0),
        patient_id="P7",
    )
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == SOP_CLASS_BY_MODALITY[modality] == ds.file_meta.MediaStorageSOPClassUID
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
    assert ds.Modality == modality and ds.BodyPartExamined == "CHEST" and ds.ViewPosition == "AP"
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (16, 16, 15)
    assert [float(v) for v in ds.ImagerPixelSpacing] == [0.2, 0.25]
    assert (float(ds.WindowCenter), float(ds.WindowWidth)) == (30000, 20000)
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (2.0, -10.0)
    assert ds.PatientID == "P7"
    if modality == "DX":
        assert ds.PresentationIntentType == "FOR PRESENTATION"


def test_voi_lut_multiframe_and_extra(tmp_path):
    lut = np.linspace(0, 65535, 4096).astype(np.uint16)
    path = write_cxr_dicom(
        tmp_path / "v.dcm", _picture(12), voi_lut=lut, number_of_frames=3, extra={"PixelSpacing": None}
    )
    ds = pydicom.dcmread(path)
    assert list(ds.VOILUTSequence[0].LUTDescriptor) == [4096, 0, 16]
    assert ds.NumberOfFrames == 3 and ds.pixel_array.shape == (3, 96, 80)
    assert "PixelSpacing" not in ds


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="bits_stored=8"):
        write_cxr_dicom(tmp_path / "a.dcm", _picture(8), transfer_syntax="jpeg-baseline", bits_stored=12)
    with pytest.raises(ValueError, match="does not fit"):
        write_cxr_dicom(tmp_path / "a.dcm", _picture(16), bits_stored=12)
    with pytest.raises(ValueError, match="transfer_syntax"):
        write_cxr_dicom(tmp_path / "a.dcm", _picture(12), transfer_syntax="jpeg-xl")
    with pytest.raises(ValueError, match="uint8 or uint16"):
        write_cxr_dicom(tmp_path / "a.dcm", _picture(12).astype(np.float32))
