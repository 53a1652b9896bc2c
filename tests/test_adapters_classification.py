"""Adapters for NIH ChestX-ray14, CheXpert and COVIDx on tiny fixtures with the official layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from gkmvlp_monai.core.vocab import label_set
from gkmvlp_monai.data.adapters import AdapterError, prepare_dataset


def _png(path: Path, size: tuple[int, int] = (8, 6)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, 128).save(path)


def _all(doc: dict) -> list[dict]:
    return doc["training"] + doc["validation"] + doc["test"]


def test_nih_labels_boxes_official_lists(tmp_path: Path) -> None:
    root = tmp_path / "nih"
    root.mkdir()
    (root / "Data_Entry_2017_v2020.csv").write_text(
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
        "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n"
        "00000001_000.png,Cardiomegaly|Emphysema,0,1,57,M,PA,2682,2749,0.143,0.143\n"
        "00000002_000.png,No Finding,0,2,81,M,AP,2500,2048,0.171,0.171\n"
        "00000003_000.png,Infiltration,0,3,74,F,PA,2500,2048,0.168,0.168\n"
        "00000004_000.png,Effusion,0,4,50,F,PA,2048,2500,0.168,0.168\n"
    )
    (root / "BBox_List_2017.csv").write_text(
        "Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
        "00000003_000.png,Infiltrate,10.5,20,30,40\n"
        "00000003_000.png,Infiltrate,100,200,5,6\n"
    )
    (root / "train_val_list.txt").write_text("00000001_000.png\n00000002_000.png\n00000004_000.png\n")
    (root / "test_list.txt").write_text("00000003_000.png\n")
    for i, folder in ((1, "images_001"), (2, "images_001"), (3, "images_002")):
        _png(root / folder / "images" / f"0000000{i}_000.png")
    path, res = prepare_dataset("nih", root, tmp_path / "out", val_ratio=0.0)
    doc = json.loads(path.read_text())
    classes = label_set("nih14")
    by_id = {it["image_id"]: it for it in _all(doc)}
    assert set(by_id) == {"00000001_000", "00000002_000", "00000003_000"}
    assert res.skipped.counts == {"image file missing": 1}
    assert by_id["00000001_000"]["label"] == [float(c in ("Cardiomegaly", "Emphysema")) for c in classes]
    assert by_id["00000002_000"]["label"] == [0.0] * 14 and by_id["00000002_000"]["view"] == "AP"
    # the size of the file on disk (boxes are in its frame), not the CSV's original 2682 x 2749
    assert by_id["00000001_000"]["image_size"] == [8, 6]
    assert by_id["00000003_000"]["lesion_boxes"] == [[10.5, 20.0, 40.5, 60.0], [100.0, 200.0, 105.0, 206.0]]
    assert by_id["00000003_000"]["lesion_labels"] == ["Infiltration", "Infiltration"]
    assert [it["image_id"] for it in doc["test"]] == ["00000003_000"]
    assert (tmp_path / "out" / by_id["00000003_000"]["image"]).is_file()
    assert (tmp_path / "out" / "nih_chestxray14_splits.csv").is_file()


def test_nih_bad_label_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "nih"
    (root / "images").mkdir(parents=True)
    (root / "Data_Entry_2017.csv").write_text(
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position\n"
        "00000001_000.png,Cardiomegally,0,1,57,M,PA\n"
    )
    with pytest.raises(AdapterError, match="Data_Entry_2017.csv line 2"):
        prepare_dataset("nih", root, tmp_path / "out")


CHEXPERT_HEADER = (
    "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,"
    "Lung Opacity,Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,"
    "Pleural Effusion,Pleural Other,Fracture,Support Devices\n"
)


def test_chexpert_blanks_uncertain_views_and_official_valid(tmp_path: Path) -> None:
    root = tmp_path / "CheXpert-v1.0-small"
    rows = [
        ("train", "patient00001/study1/view1_frontal.jpg", "Frontal,AP", "1.0,,,,,,,,,0.0,,,,1.0"),
        (
            "train",
            "patient00002/study2/view1_frontal.jpg",
            "Frontal,PA",
            ",,-1.0,1.0,,-1.0,-1.0,,-1.0,,-1.0,,1.0,",
        ),
        (
            "train",
            "patient00002/study2/view2_lateral.jpg",
            "Lateral,",
            ",,-1.0,1.0,,-1.0,-1.0,,-1.0,,-1.0,,1.0,",
        ),
        ("train", "patient00003/study1/view1_frontal.jpg", "Frontal,AP", ",,,,,,,,,,,,,"),
        (
            "valid",
            "patient64541/study1/view1_frontal.jpg",
            "Frontal,AP",
            "0.0,1.0,1.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0",
        ),
    ]
    for split in ("train", "valid"):
        lines = [CHEXPERT_HEADER]
        for s, rel, view, labels in rows:
            if s == split:
                lines.append(f"CheXpert-v1.0-small/{s}/{rel},Female,68,{view},{labels}\n")
                if rel != "patient00003/study1/view1_frontal.jpg":
                    _png(root / s / rel)
        (root / f"{split}.csv").write_text("".join(lines))
    path, res = prepare_dataset("chexpert", root, tmp_path / "out", seed=0, val_ratio=0.5)
    doc = json.loads(path.read_text())
    by_id = {it["image_id"]: it for it in _all(doc)}
    assert res.skipped.counts == {"image file missing": 1}
    assert [it["subject_id"] for it in doc["test"]] == ["patient64541"]
    first = by_id["patient00001/study1/view1_frontal"]
    assert first["label"][0] == 1.0 and first["label"][9] == 0.0 and first["label"][13] == 1.0
    second = by_id["patient00002/study2/view1_frontal"]
    assert second["label"][2] == -1.0 and second["label"][1] == 0.0 and second["view"] == "PA"
    assert by_id["patient00002/study2/view2_lateral"]["view"] == "LATERAL"
    assert {it["subject_id"] for it in doc["training"]}.isdisjoint(
        {it["subject_id"] for it in doc["validation"]}
    )


def test_chexpert_bad_label_value(tmp_path: Path) -> None:
    root = tmp_path / "CheXpert-v1.0-small"
    root.mkdir()
    (root / "train.csv").write_text(
        CHEXPERT_HEADER + "CheXpert-v1.0-small/train/patient00001/study1/"
        "view1_frontal.jpg,F,1,Frontal,AP,2.0,,,,,,,,,,,,,\n"
    )
    _png(root / "train/patient00001/study1/view1_frontal.jpg")
    (root / "valid.csv").write_text(CHEXPERT_HEADER)
    with pytest.raises(AdapterError, match=r"train.csv line 2 column 'No Finding'"):
        prepare_dataset("chexpert", root, tmp_path / "out")


def test_covidx_multiclass_and_binary_rejected(tmp_path: Path) -> None:
    root = tmp_path / "covidx"
    (root / "train").mkdir(parents=True)
    (root / "train.txt").write_text(
        "1 a.png normal rsna\n2 b b.jpg COVID-19 cohen\n3 c.png pneumonia rsna\n3 c2.png pneumonia rsna\n4 gone.png normal rsna\n"
    )
    (root / "test.txt").write_text("9 t.png COVID-19 ricord\n")
    for name in ("train/a.png", "train/b b.jpg", "train/c.png", "train/c2.png", "test/t.png"):
        _png(root / name)
    path, res = prepare_dataset("covidx", root, tmp_path / "out", val_ratio=0.3)
    doc = json.loads(path.read_text())
    assert doc["label_type"] == "multiclass" and doc["label_names"] == label_set("covidx")
    by_id = {it["image_id"]: it for it in _all(doc)}
    assert by_id["train/b b.jpg"]["label"] == label_set("covidx").index("COVID-19")
    assert [it["image_id"] for it in doc["test"]] == ["test/t.png"]
    assert res.skipped.counts == {"image file missing": 1}
    (root / "test.txt").write_text("9 t.png positive ricord\n")
    with pytest.raises(AdapterError, match="binary"):
        prepare_dataset("covidx", root, tmp_path / "out2")
