"""Preparation catches bad image files up front, reads the distributed archive forms, and keeps splits
stable when a subject goes missing."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gkmvlp_monai.data.adapters import prepare_dataset
from gkmvlp_monai.data.dicom_writer import write_cxr_dicom
from gkmvlp_monai.data.image_check import ImageFileError, inspect_image, inspect_images
from gkmvlp_monai.data.prepare import main as prepare_main


def _png(path: Path, size: tuple[int, int] = (8, 6)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, 128).save(path)
    return path


def _jpg(path: Path, size: tuple[int, int] = (16, 12)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, size[::-1], dtype=np.uint8)).save(path)
    return path


def _dcm(path: Path, rows: int = 20, cols: int = 24, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(1).integers(0, 4000, (rows, cols)).astype(np.uint16)
    return write_cxr_dicom(path, pixels, **kwargs)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _cut(path: Path, drop: int) -> Path:
    """Drop the last ``drop`` bytes (a truncated download)."""
    path.write_bytes(path.read_bytes()[:-drop])
    return path


# ---------------------------------------------------------------- one file


def test_good_files_give_their_size_and_view(tmp_path: Path) -> None:
    info = inspect_image(_png(tmp_path / "a.png", (8, 6)))
    assert (info.width, info.height, info.view) == (8, 6, "")
    info = inspect_image(_jpg(tmp_path / "b.jpg", (16, 12)))
    assert (info.width, info.height) == (16, 12)
    info = inspect_image(_dcm(tmp_path / "c.dcm", 20, 24, view_position="AP"))
    assert (info.width, info.height, info.view) == (24, 20, "AP")
    info = inspect_image(_dcm(tmp_path / "d.dcm", 20, 24, transfer_syntax="rle"))
    assert (info.width, info.height) == (24, 20)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda d: _write(d / "empty.png", b""), "empty file"),
        (lambda d: _write(d / "junk.png", b"not a picture at all" * 10), "not a readable"),
        (lambda d: _cut(_png(d / "cut.png", (64, 64)), 20), "broken"),
        (lambda d: _cut(_jpg(d / "cut.jpg", (64, 64)), 100), "truncated"),
        (lambda d: _cut(_dcm(d / "cut.dcm", 40, 40), 1000), "pixel data has"),
        (lambda d: _cut(_dcm(d / "cut_rle.dcm", 40, 40, transfer_syntax="rle"), 500), "DICOM"),
        (lambda d: d / "absent.png", "not found"),
    ],
    ids=[
        "empty",
        "garbage",
        "truncated-png",
        "truncated-jpeg",
        "truncated-dicom",
        "truncated-rle",
        "missing",
    ],
)
def test_bad_files_are_named_with_their_problem(tmp_path: Path, make, reason: str) -> None:
    path = make(tmp_path)
    with pytest.raises(ImageFileError, match=reason) as err:
        inspect_image(path)
    assert str(path) in str(err.value)


def test_dicom_without_pixel_data_is_bad(tmp_path: Path) -> None:
    import pydicom

    path = _dcm(tmp_path / "x.dcm")
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    with pytest.raises(ImageFileError, match="no PixelData"):
        inspect_image(path)


def test_parallel_check_matches_the_serial_one(tmp_path: Path) -> None:
    paths = [_png(tmp_path / f"{i}.png", (8 + i % 3, 6)) for i in range(70)]
    (tmp_path / "bad.png").write_bytes(b"")
    paths.append(tmp_path / "bad.png")
    serial = inspect_images(paths, workers=1, desc="")
    parallel = inspect_images(paths, workers=2, desc="")
    assert serial == parallel and len(serial[0]) == 70 and list(serial[1]) == [str(tmp_path / "bad.png")]


# ---------------------------------------------------------------- preparation


NIH_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n"
)


def _nih(root: Path, n: int, layout: str = "flat") -> Path:
    rows = "".join(f"{i:08d}_000.png,No Finding,0,{i},50,M,PA,2500,2048,0.14,0.14\n" for i in range(1, n + 1))
    root.mkdir(parents=True, exist_ok=True)
    (root / "Data_Entry_2017_v2020.csv").write_text(NIH_HEADER + rows)
    for i in range(1, n + 1):
        folder = root / "images" if layout == "flat" else root / f"images_{1 + i % 3:03d}" / "images"
        _png(folder / f"{i:08d}_000.png")
    return root


def test_corrupt_png_is_skipped_listed_and_strict_stops(tmp_path: Path, capsys) -> None:
    root = _nih(tmp_path / "nih", 12)
    (root / "images" / "00000003_000.png").write_bytes(b"")
    _cut(root / "images" / "00000005_000.png", 30)
    out = tmp_path / "out"
    assert prepare_main(["nih", "--root", str(root), "--out", str(out), "--workers", "1"]) == 0
    text = capsys.readouterr()
    assert "bad image files: 2" in text.out and "layout: images/ (one folder)" in text.out
    assert "no official test_list.txt, so the split is per patient" in text.err
    report = json.loads((out / "prepare_report.json").read_text())
    assert [Path(b["file"]).name for b in report["bad_files"]] == ["00000003_000.png", "00000005_000.png"]
    assert "empty file" in report["bad_files"][0]["reason"]
    doc = json.loads((out / "nih_chestxray14.json").read_text())
    names = {Path(it["image"]).name for s in ("training", "validation", "test") for it in doc[s]}
    assert len(names) == 10 and "00000003_000.png" not in names
    assert doc["skipped"] == {"image file unreadable": 2}
    assert all(it["image_size"] == [8, 6] for it in doc["training"])  # the file's size, not 2500 x 2048
    strict = tmp_path / "strict"
    assert prepare_main(["nih", "--root", str(root), "--out", str(strict), "--strict", "--workers", "1"]) == 1
    assert "2 bad image file(s) with --strict" in capsys.readouterr().err
    assert not (strict / "nih_chestxray14.json").exists() and (strict / "prepare_report.json").exists()


def test_nih_archive_layout_is_found_and_named(tmp_path: Path, capsys) -> None:
    root = _nih(tmp_path / "nih", 6, layout="archives")
    (root / "test_list.txt").write_text("00000001_000.png\n")
    (root / "train_val_list.txt").write_text("".join(f"{i:08d}_000.png\n" for i in range(2, 7)))
    assert prepare_main(["nih", "--root", str(root), "--out", str(tmp_path / "out")]) == 0
    text = capsys.readouterr()
    assert "layout: images_001/images ... images_003/images (3 archive folders)" in text.out
    assert "warning" not in text.err
    doc = json.loads((tmp_path / "out" / "nih_chestxray14.json").read_text())
    assert [it["image_id"] for it in doc["test"]] == ["00000001_000"]


def _rsna(root: Path, n: int, zipped: bool = False) -> Path:
    rows = "patientId,x,y,width,height,Target\n"
    for i in range(n):
        rows += f"p{i},,,,,0\n" if i % 2 else f"p{i},1.0,2.0,3.0,4.0,1\np{i},5.0,6.0,3.0,4.0,1\n"
        _dcm(root / "stage_2_train_images" / f"p{i}.dcm", 20, 24, view_position="AP")
    if zipped:
        with zipfile.ZipFile(root / "stage_2_train_labels.csv.zip", "w") as zf:
            zf.writestr("stage_2_train_labels.csv", rows)
    else:
        (root / "stage_2_train_labels.csv").write_text(rows)
    return root


def test_truncated_dicom_is_skipped_with_its_rows_and_zip_labels_are_read(tmp_path: Path) -> None:
    root = _rsna(tmp_path / "rsna", 6, zipped=True)
    _cut(root / "stage_2_train_images" / "p2.dcm", 300)  # header intact, pixel data short
    (root / "stage_2_train_images" / "p4.dcm").unlink()
    out = tmp_path / "out"
    assert prepare_main(["rsna", "--root", str(root), "--out", str(out)]) == 0
    report = json.loads((out / "prepare_report.json").read_text())
    assert [Path(b["file"]).name for b in report["bad_files"]] == ["p2.dcm"]
    assert "pixel data has" in report["bad_files"][0]["reason"]
    # rows, not patients: p2 and p4 each had two box rows
    assert report["skipped"] == {"image file unreadable": 2, "image file missing": 2}
    doc = json.loads((out / "rsna_pneumonia.json").read_text())
    assert sum(len(doc[s]) for s in ("training", "validation", "test")) == 4
    assert prepare_main(["rsna", "--root", str(root), "--out", str(tmp_path / "s"), "--strict"]) == 1


def test_siim_image_of_the_wrong_size_is_named_by_its_file(tmp_path: Path) -> None:
    from gkmvlp_monai.data.adapters.siim import encode_siim_rle

    root = tmp_path / "siim"
    mask = np.zeros((20, 24), dtype=np.uint8)
    mask[15:20, 20:24] = 1
    (root).mkdir()
    (root / "train-rle.csv").write_text(f"ImageId, EncodedPixels\n1.2.3, {encode_siim_rle(mask)}\n1.2.4,-1\n")
    _dcm(root / "dicom-images-train" / "s" / "r" / "1.2.3.dcm", 10, 12)  # smaller than its mask
    _dcm(root / "dicom-images-train" / "s" / "r" / "1.2.4.dcm", 20, 24)
    path, res = prepare_dataset("siim", root, tmp_path / "out", val_ratio=0.0, test_ratio=0.0)
    report = json.loads((tmp_path / "out" / "prepare_report.json").read_text())
    assert [Path(b["file"]).name for b in report["bad_files"]] == ["1.2.3.dcm"]
    assert "train-rle.csv line 2 does not fit the 12 x 10 image" in report["bad_files"][0]["reason"]
    assert [it["image_id"] for it in json.loads(path.read_text())["training"]] == ["1.2.4"]


def test_chexpert_views_follow_its_own_codes(tmp_path: Path) -> None:
    from gkmvlp_monai.core.vocab import label_set

    root = tmp_path / "CheXpert-v1.0-small"
    classes = label_set("chexpert14")
    header = "Path,Sex,Age,Frontal/Lateral,AP/PA," + ",".join(classes) + "\n"
    rows = {"train": [], "valid": []}
    views = [("Frontal", "AP"), ("Frontal", "PA"), ("Lateral", "LL"), ("Lateral", "RL"), ("Lateral", "")]
    for i, (fl, code) in enumerate(views):
        rel = f"CheXpert-v1.0-small/train/patient{i:05d}/study1/view1.jpg"
        _jpg(root / "train" / f"patient{i:05d}" / "study1" / "view1.jpg")
        rows["train"].append(f"{rel},Male,60,{fl},{code}," + ",".join("" for _ in classes))
    _jpg(root / "valid" / "patient90000" / "study1" / "view1.jpg")
    rows["valid"].append(
        "CheXpert-v1.0-small/valid/patient90000/study1/view1.jpg,Male,60,Frontal,PA,"
        + ",".join("0" for _ in classes)
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # a zipped train.csv is read as well
        zf.writestr("train.csv", header + "\n".join(rows["train"]) + "\n")
    (root / "train.csv.zip").write_bytes(buf.getvalue())
    (root / "valid.csv").write_text(header + "\n".join(rows["valid"]) + "\n")
    path, _ = prepare_dataset("chexpert", root, tmp_path / "out", val_ratio=0.0)
    doc = json.loads(path.read_text())
    got = {it["subject_id"]: it["view"] for it in doc["training"]}
    assert got == {
        "patient00000": "AP",
        "patient00001": "PA",
        "patient00002": "LL",
        "patient00003": "LATERAL",
        "patient00004": "LATERAL",
    }


# ---------------------------------------------------------------- stable splits per adapter


def _splits(path: Path) -> dict[str, str]:
    doc = json.loads(path.read_text())
    return {it["image_id"]: s for s in ("training", "validation", "test") for it in doc[s]}


def _members(path: Path, key: str = "training_10pct") -> set[str]:
    return {it["image_id"] for it in json.loads(path.read_text())[key]}


@pytest.mark.parametrize("dataset", ["nih", "rsna"])
def test_removing_one_subject_moves_no_other_through_an_adapter(tmp_path: Path, dataset: str) -> None:
    if dataset == "nih":
        root = _nih(tmp_path / "nih", 60)
        gone = root / "images" / "00000007_000.png"
    else:
        root = _rsna(tmp_path / "rsna", 60)
        gone = root / "stage_2_train_images" / "p7.dcm"
    full, _ = prepare_dataset(dataset, root, tmp_path / "full", fractions=(0.1,), workers=1)
    gone.unlink()
    rest, _ = prepare_dataset(dataset, root, tmp_path / "rest", fractions=(0.1,), workers=1)
    before, after = _splits(full), _splits(rest)
    assert len(after) == len(before) - 1
    assert after == {k: v for k, v in before.items() if k in after}
    assert _members(rest) == _members(full) - {gone.stem}


def test_files_the_adapter_checked_are_not_checked_again(tmp_path: Path, monkeypatch) -> None:
    from gkmvlp_monai.data import image_check

    calls: list[str] = []
    inner = image_check._inspect_one
    monkeypatch.setattr(image_check, "_inspect_one", lambda p: calls.append(p) or inner(p))
    root = _rsna(tmp_path / "rsna", 4)
    _cut(root / "stage_2_train_images" / "p1.dcm", 300)
    monkeypatch.chdir(tmp_path)  # a relative root, as typed on the command line
    prepare_dataset("rsna", Path("rsna"), tmp_path / "out", workers=1)
    assert len(calls) == 4  # each DICOM once, by the adapter
    report = json.loads((tmp_path / "out" / "prepare_report.json").read_text())
    assert [b["file"] for b in report["bad_files"]] == [str(root / "stage_2_train_images" / "p1.dcm")]


def test_removing_one_chexpert_patient_moves_no_other(tmp_path: Path) -> None:
    from gkmvlp_monai.core.vocab import label_set

    root = tmp_path / "CheXpert-v1.0-small"
    classes = label_set("chexpert14")
    header = "Path,Sex,Age,Frontal/Lateral,AP/PA," + ",".join(classes) + "\n"
    rows = []
    for i in range(40):
        for view in ("view1_frontal", "view2_lateral"):
            rel = f"CheXpert-v1.0-small/train/patient{i:05d}/study1/{view}.jpg"
            _jpg(root / "train" / f"patient{i:05d}" / "study1" / f"{view}.jpg", (8, 8))
            fl, code = ("Frontal", "PA") if "frontal" in view else ("Lateral", "")
            rows.append(f"{rel},Female,50,{fl},{code}," + ",".join("" for _ in classes))
    (root / "train.csv").write_text(header + "\n".join(rows) + "\n")
    _jpg(root / "valid" / "patient90000" / "study1" / "view1_frontal.jpg", (8, 8))
    (root / "valid.csv").write_text(
        header
        + "CheXpert-v1.0-small/valid/patient90000/study1/view1_frontal.jpg,Male,60,Frontal,PA,"
        + ",".join("0" for _ in classes)
        + "\n"
    )
    full, _ = prepare_dataset("chexpert", root, tmp_path / "full", fractions=(0.1,), workers=1)
    (root / "train" / "patient00007" / "study1" / "view1_frontal.jpg").unlink()
    rest, _ = prepare_dataset("chexpert", root, tmp_path / "rest", fractions=(0.1,), workers=1)
    before, after = _splits(full), _splits(rest)
    assert set(before) - set(after) == {"patient00007/study1/view1_frontal"}
    assert after == {k: v for k, v in before.items() if k in after}
    assert _members(rest) == _members(full) - {"patient00007/study1/view1_frontal"}
