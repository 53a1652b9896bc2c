"""Adapters for IU X-ray (NLMCXR XML), VQA-RAD and SLAKE, and the prepare CLI, on tiny fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from gkmvlp_monai.data.adapters import AdapterError, prepare_dataset
from gkmvlp_monai.data.prepare import main

IU_XML = """<?xml version="1.0" encoding="utf-8"?>
<eCitation><uId id="{uid}"/><MedlineCitation><Article><Abstract>
<AbstractText Label="COMPARISON">None.</AbstractText>
<AbstractText Label="INDICATION">Chest pain</AbstractText>
<AbstractText Label="FINDINGS">{findings}</AbstractText>
<AbstractText Label="IMPRESSION">{impression}</AbstractText>
</Abstract></Article></MedlineCitation>
<MeSH><major>Cardiomegaly/mild</major></MeSH>
{images}</eCitation>"""


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (6, 6)).save(path)


def _iu(root: Path) -> None:
    xml_dir = root / "ecgen-radiology"
    xml_dir.mkdir(parents=True)
    imgs = (
        '<parentImage id="CXR1_1_IM-0001-3001"><caption>PA</caption></parentImage>'
        '<parentImage id="CXR1_1_IM-0001-4001"><caption>Lateral</caption></parentImage>'
    )
    (xml_dir / "1.xml").write_text(
        IU_XML.format(
            uid="CXR1", findings="Heart is mildly enlarged.", impression="Mild cardiomegaly.", images=imgs
        )
    )
    (xml_dir / "2.xml").write_text(
        IU_XML.format(uid="CXR2", findings="", impression="", images='<parentImage id="CXR2_IM-0652-1001"/>')
    )
    (xml_dir / "3.xml").write_text(IU_XML.format(uid="CXR3", findings="x", impression="y", images=""))
    _png(root / "images" / "CXR1_1_IM-0001-3001.png")
    _png(root / "images" / "CXR1_1_IM-0001-4001.png")
    (root / "indiana_projections.csv").write_text(
        "uid,filename,projection\n1,1_1_IM-0001-3001.dcm.png,Frontal\n1,1_1_IM-0001-4001.dcm.png,Lateral\n"
    )


def test_iu_xray_reports_views_and_counts(tmp_path: Path) -> None:
    root = tmp_path / "iu"
    _iu(root)
    path, res = prepare_dataset("iu-xray", root, tmp_path / "out", val_ratio=0.0, test_ratio=0.0)
    doc = json.loads(path.read_text())
    by_id = {it["image_id"]: it for it in doc["training"]}
    assert set(by_id) == {"CXR1_1_IM-0001-3001", "CXR1_1_IM-0001-4001"}
    item = by_id["CXR1_1_IM-0001-3001"]
    assert item["report"] == "Heart is mildly enlarged. Mild cardiomegaly." and item["subject_id"] == "CXR1"
    assert item["indication"] == "Chest pain" and item["comparison"] == "None."
    assert by_id["CXR1_1_IM-0001-4001"]["view"] == "LATERAL" and item["view"] == ""
    assert res.skipped.counts == {"image file missing": 1, "report without images": 1}
    assert res.notes.total == 1


def _vqa_rad(root: Path) -> None:
    (root / "VQA_RAD Image Folder").mkdir(parents=True)
    qs = [
        {
            "qid": 1,
            "image_name": "synpic1.jpg",
            "image_organ": "CHEST",
            "question": "Is there a mass?",
            "answer": "no",
            "answer_type": "CLOSED",
            "question_type": "PRES",
            "phrase_type": "freeform",
        },
        {
            "qid": 2,
            "image_name": "synpic1.jpg",
            "image_organ": "CHEST",
            "question": "Where?",
            "answer": 3,
            "answer_type": "OPEN",
            "question_type": "POS",
            "phrase_type": "test_freeform",
        },
        {
            "qid": 3,
            "image_name": "synpic2.jpg",
            "image_organ": "HEAD",
            "question": "Bleed?",
            "answer": "yes",
            "answer_type": "CLOSED ",
            "question_type": "PRES",
            "phrase_type": "para",
        },
    ]
    (root / "VQA_RAD Dataset Public.json").write_text(json.dumps(qs))
    for n in ("synpic1.jpg", "synpic2.jpg"):
        _png(root / "VQA_RAD Image Folder" / n)


def test_vqa_rad_official_test_and_chest_only(tmp_path: Path) -> None:
    root = tmp_path / "vqarad"
    _vqa_rad(root)
    path, _ = prepare_dataset("vqa-rad", root, tmp_path / "out", val_ratio=0.0)
    doc = json.loads(path.read_text())
    assert [it["question_id"] for it in doc["test"]] == ["2"] and doc["test"][0]["answer"] == "3"
    assert sorted(it["question_id"] for it in doc["training"]) == ["1", "3"]
    assert {it["answer_type"] for it in doc["training"]} == {"CLOSED"}
    _, res = prepare_dataset("vqa-rad", root, tmp_path / "out2", val_ratio=0.0, chest_only=True)
    assert res.skipped.counts == {"not a chest image (chest_only)": 1}


def test_slake_english_only_and_chest_flag(tmp_path: Path) -> None:
    root = tmp_path / "slake"
    base = {"answer_type": "CLOSED", "content_type": "Abnormality", "base_type": "vqa"}
    entries = {
        "train.json": [
            {
                **base,
                "qid": 1,
                "img_id": 0,
                "img_name": "xmlab0/source.jpg",
                "question": "Is the lung healthy?",
                "answer": "No",
                "q_lang": "en",
                "modality": "X-Ray",
                "location": "Lung",
            },
            {
                **base,
                "qid": 2,
                "img_id": 0,
                "img_name": "xmlab0/source.jpg",
                "question": "肺部健康吗?",
                "answer": "不",
                "q_lang": "zh",
                "modality": "X-Ray",
                "location": "Lung",
            },
            {
                **base,
                "qid": 3,
                "img_id": 1,
                "img_name": "xmlab1/source.jpg",
                "question": "Which organ?",
                "answer": "Brain",
                "answer_type": "OPEN",
                "q_lang": "en",
                "modality": "MRI",
                "location": "Brain",
            },
        ],
        "validate.json": [],
        "test.json": [
            {
                **base,
                "qid": 9,
                "img_id": 0,
                "img_name": "xmlab0/source.jpg",
                "question": "Pneumonia?",
                "answer": "Yes",
                "q_lang": "en",
                "modality": "X-Ray",
                "location": "Chest",
            }
        ],
    }
    root.mkdir()
    for name, qs in entries.items():
        (root / name).write_text(json.dumps(qs, ensure_ascii=False))
    _png(root / "imgs" / "xmlab0" / "source.jpg")
    _png(root / "imgs" / "xmlab1" / "source.jpg")
    path, res = prepare_dataset("slake", root, tmp_path / "out")
    doc = json.loads(path.read_text())
    assert [it["question_id"] for it in doc["training"]] == ["1", "3"]
    assert [it["question_id"] for it in doc["test"]] == ["9"]
    assert res.skipped.counts == {"not English (q_lang != en)": 1}
    path, res = prepare_dataset("slake", root, tmp_path / "out", chest_only=True)
    assert [it["question_id"] for it in json.loads(path.read_text())["training"]] == ["1"]
    (root / "validate.json").write_text(json.dumps([{"qid": 5}]))
    with pytest.raises(AdapterError, match="validate.json entry 0: missing key"):
        prepare_dataset("slake", root, tmp_path / "out3")


def test_prepare_cli_prints_counts_and_fails_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "iu"
    _iu(root)
    assert (
        main(
            [
                "iu-xray",
                "--root",
                str(root),
                "--out",
                str(tmp_path / "out"),
                "--seed",
                "1",
                "--val-ratio",
                "0",
                "--test-ratio",
                "0",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "training           2 items" in out and "image file missing" in out
    assert "neither FINDINGS nor IMPRESSION" in out
    assert (tmp_path / "out" / "iu_xray.json").is_file() and (
        tmp_path / "out" / "iu_xray_splits.csv"
    ).is_file()
    assert main(["nih", "--root", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err
