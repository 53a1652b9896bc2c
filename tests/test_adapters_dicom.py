"""Adapters for RSNA Pneumonia (DICOM + boxes) and SIIM-ACR (DICOM + RLE masks) on tiny fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from gkmvlp_monai.data.adapters import AdapterError, prepare_dataset
from gkmvlp_monai.data.adapters.siim import decode_siim_rle, encode_siim_rle


def write_dicom(path: Path, rows: int, cols: int, view: str = "PA") -> None:
    """A tiny valid 8-bit MONOCHROME2 DICOM file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.ViewPosition = "CR", view
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.zeros((rows, cols), dtype=np.uint8).tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_rsna_boxes_multiple_rows_and_views(tmp_path: Path) -> None:
    root = tmp_path / "rsna"
    root.mkdir()
    (root / "stage_2_train_labels.csv").write_text(
        "patientId,x,y,width,height,Target\n"
        "p-neg,,,,,0\n"
        "p-pos,264.0,152.0,213.0,379.0,1\n"
        "p-pos,562.0,152.0,256.0,453.0,1\n"
        "p-missing,,,,,0\n"
    )
    write_dicom(root / "stage_2_train_images" / "p-neg.dcm", 16, 12, "PA")
    write_dicom(root / "stage_2_train_images" / "p-pos.dcm", 20, 24, "AP")
    path, res = prepare_dataset("rsna", root, tmp_path / "out", val_ratio=0.0, test_ratio=0.0)
    doc = json.loads(path.read_text())
    by_id = {it["image_id"]: it for it in doc["training"]}
    assert set(by_id) == {"p-neg", "p-pos"}
    assert res.skipped.counts == {"image file missing": 1}
    pos = by_id["p-pos"]
    assert pos["lesion_boxes"] == [[264.0, 152.0, 477.0, 531.0], [562.0, 152.0, 818.0, 605.0]]
    assert pos["lesion_labels"] == ["Lung Opacity", "Lung Opacity"] and pos["label"] == [1.0]
    assert pos["view"] == "AP" and pos["image_size"] == [24, 20]
    assert by_id["p-neg"]["label"] == [0.0] and by_id["p-neg"]["lesion_boxes"] == []


def test_rsna_conflicting_targets(tmp_path: Path) -> None:
    root = tmp_path / "rsna"
    (root / "stage_2_train_images").mkdir(parents=True)
    (root / "stage_2_train_labels.csv").write_text(
        "patientId,x,y,width,height,Target\np,,,,,0\np,1,2,3,4,1\n"
    )
    with pytest.raises(AdapterError, match="line 3.*both Target"):
        prepare_dataset("rsna", root, tmp_path / "out")


def test_siim_rle_is_column_major_with_relative_offsets() -> None:
    # 4 rows x 3 columns; pixels (row 1, col 0), (row 2, col 0) and (row 0, col 2)
    mask = decode_siim_rle("1 2 5 1", width=3, height=4)
    expected = np.zeros((4, 3), dtype=np.uint8)
    expected[1, 0] = expected[2, 0] = expected[0, 2] = 1
    np.testing.assert_array_equal(mask, expected)
    rng = np.random.default_rng(0)
    m = (rng.random((7, 5)) > 0.6).astype(np.uint8)
    np.testing.assert_array_equal(decode_siim_rle(encode_siim_rle(m), 5, 7), m)
    assert decode_siim_rle("-1", 3, 4).sum() == 0
    with pytest.raises(ValueError, match="exceeds"):
        decode_siim_rle("10 5", 3, 4)


def test_siim_masks_union_and_negative(tmp_path: Path) -> None:
    root = tmp_path / "siim"
    root.mkdir()
    a = np.zeros((6, 5), dtype=np.uint8)
    a[1:3, 1:3] = 1
    b = np.zeros((6, 5), dtype=np.uint8)
    b[4, 3:5] = 1
    (root / "train-rle.csv").write_text(
        f"ImageId, EncodedPixels\n1.2.3, {encode_siim_rle(a)}\n1.2.3, {encode_siim_rle(b)}\n1.2.4,-1\n1.2.5,-1\n"
    )
    write_dicom(root / "dicom-images-train" / "s1" / "r1" / "1.2.3.dcm", 6, 5)
    write_dicom(root / "dicom-images-train" / "s2" / "r2" / "1.2.4.dcm", 6, 5)
    path, res = prepare_dataset("siim", root, tmp_path / "out", val_ratio=0.0, test_ratio=0.0)
    doc = json.loads(path.read_text())
    by_id = {it["image_id"]: it for it in doc["training"]}
    assert res.skipped.counts == {"image file missing": 1}
    assert by_id["1.2.3"]["label"] == [1.0] and by_id["1.2.4"]["label"] == [0.0]
    mask = np.asarray(Image.open(tmp_path / "out" / by_id["1.2.3"]["mask"]))
    np.testing.assert_array_equal(mask, ((a | b) * 255).astype(np.uint8))
    assert np.asarray(Image.open(tmp_path / "out" / by_id["1.2.4"]["mask"])).max() == 0
    (root / "train-rle.csv").write_text("ImageId, EncodedPixels\n1.2.3, 1 2 3\n")
    with pytest.raises(AdapterError, match="train-rle.csv line 2"):
        prepare_dataset("siim", root, tmp_path / "out2")
