"""Adapters for MIMIC-CXR-JPG, MIMIC-CXR (DICOM) and Chest ImaGenome on tiny fixtures."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gkmvlp_monai.core.vocab import label_set
from gkmvlp_monai.data.adapters import AdapterError, prepare_dataset
from gkmvlp_monai.data.dicom_writer import write_cxr_dicom

SUBJ = [
    ("10000032", "50414267", "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014", "PA", "train"),
    ("10000032", "50414267", "174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962", "LATERAL", "train"),
    ("10000764", "57375967", "096052b7-d256dc40-453a102b-fa7d01c6-1b22c6b4", "AP", "validate"),
    ("10000898", "50771383", "1a3b5e0a-2b1b1b1b-3c3c3c3c-4d4d4d4d-5e5e5e5e", "AP", "test"),
]
CHEXPERT_COLS = sorted(label_set("chexpert14"))  # the MIMIC CSV orders them alphabetically

REPORT = " FINAL REPORT\n INDICATION: ___ with cough\n\n FINDINGS: Lungs are clear.\n\n IMPRESSION: No acute process.\n"
NO_SECTIONS = " FINAL REPORT\n COMPARISON: ___\n\n Heart size normal.\n"


def _gz(path: Path, text: str) -> None:
    with gzip.open(path, "wt") as fh:
        fh.write(text)


def _mimic_jpg(root: Path, reports: Path) -> None:
    root.mkdir(parents=True)
    _gz(
        root / "mimic-cxr-2.0.0-split.csv.gz",
        "dicom_id,study_id,subject_id,split\n" + "".join(f"{d},{st},{s},{sp}\n" for s, st, d, _, sp in SUBJ),
    )
    _gz(
        root / "mimic-cxr-2.0.0-metadata.csv.gz",
        "dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns,StudyDate\n"
        + "".join(f"{d},{s},{st},CHEST,{v},300,200,21800506\n" for s, st, d, v, _ in SUBJ),
    )
    rows = ["subject_id,study_id," + ",".join(CHEXPERT_COLS) + "\n"]
    rows.append(
        "10000032,50414267,"
        + ",".join("1.0" if c == "Cardiomegaly" else ("-1.0" if c == "Edema" else "") for c in CHEXPERT_COLS)
        + "\n"
    )
    rows.append(
        "10000764,57375967," + ",".join("1.0" if c == "No Finding" else "" for c in CHEXPERT_COLS) + "\n"
    )
    _gz(root / "mimic-cxr-2.0.0-chexpert.csv.gz", "".join(rows))
    for s, st, d, _, _ in SUBJ[:3]:
        img = root / "files" / f"p{s[:2]}" / f"p{s}" / f"s{st}" / f"{d}.jpg"
        img.parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (200, 300)).save(img)
    img = root / "files" / "p10" / "p10000898" / "s50771383" / f"{SUBJ[3][2]}.jpg"
    img.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (200, 300)).save(img)
    for s, st, text in (("10000032", "50414267", REPORT), ("10000764", "57375967", NO_SECTIONS)):
        rp = reports / "files" / f"p{s[:2]}" / f"p{s}" / f"s{st}.txt"
        rp.parent.mkdir(parents=True, exist_ok=True)
        rp.write_text(text)


def _scene_graph(folder: Path, dicom_id: str, objects: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{dicom_id}_SceneGraph.json").write_text(
        json.dumps({"image_id": dicom_id, "objects": objects})
    )


def _obj(name: str, box: tuple[float, float, float, float]) -> dict:
    x1, y1, x2, y2 = box
    return {
        "object_id": name,
        "bbox_name": name,
        "x1": 1,
        "y1": 1,
        "x2": 2,
        "y2": 2,
        "original_x1": x1,
        "original_y1": y1,
        "original_x2": x2,
        "original_y2": y2,
    }


def test_mimic_jpg_reports_labels_official_split(tmp_path: Path) -> None:
    root, reports = tmp_path / "mimic-cxr-jpg", tmp_path / "mimic-cxr-reports"
    _mimic_jpg(root, reports)
    path, res = prepare_dataset("mimic-cxr-jpg", root, tmp_path / "out", reports_root=reports)
    doc = json.loads(path.read_text())
    assert doc["label_names"] == label_set("chexpert14")
    assert [it["image_id"] for it in doc["validation"]] == [SUBJ[2][2]]
    assert len(doc["training"]) == 2 and doc["test"] == []
    assert res.skipped.counts == {"report file missing": 1}
    first = doc["training"][0]
    assert first["report"] == "Lungs are clear. No acute process." and first["indication"] == "___ with cough"
    assert first["view"] == "PA" and doc["training"][1]["view"] == "LATERAL"
    assert first["image_size"] == [200, 300]
    classes = label_set("chexpert14")
    assert (
        first["label"][classes.index("Cardiomegaly")] == 1.0
        and first["label"][classes.index("Edema")] == -1.0
    )
    assert sum(first["label"]) == 0.0
    val = doc["validation"][0]
    assert val["impression"] == "Heart size normal." and val["findings"] == ""
    assert res.notes.counts == {"report has neither FINDINGS nor IMPRESSION (last paragraph used)": 1}


def test_chest_imagenome_boxes_join_and_names(tmp_path: Path) -> None:
    root, reports, ig = tmp_path / "mimic-cxr-jpg", tmp_path / "reports", tmp_path / "chest-imagenome"
    _mimic_jpg(root, reports)
    sg = ig / "silver_dataset" / "scene_graph"
    _scene_graph(
        sg,
        SUBJ[0][2],
        [
            _obj("right lung", (10, 20, 90, 250)),
            _obj("SVC", (-5, 30, 60, 400)),
            _obj("left cardiac silhouette", (1, 1, 5, 5)),
            _obj("carina", (300, 1, 350, 5)),
        ],
    )
    _scene_graph(sg, SUBJ[2][2], [_obj("left lung", (100, 20, 190, 250))])
    path, res = prepare_dataset(
        "chest-imagenome", root, tmp_path / "out", reports_root=reports, imagenome_root=ig
    )
    doc = json.loads(path.read_text())
    items = doc["training"] + doc["validation"] + doc["test"]
    assert {it["image_id"] for it in items} == {SUBJ[0][2], SUBJ[2][2]}
    boxes = {it["image_id"]: it["region_boxes"] for it in items}[SUBJ[0][2]]
    assert boxes == {"right lung": [10.0, 20.0, 90.0, 250.0], "svc": [0.0, 30.0, 60.0, 300.0]}
    assert res.skipped.counts["no Chest ImaGenome scene graph"] == 1
    assert res.notes.counts["Chest ImaGenome region outside the 29-region vocabulary (dropped)"] == 1
    assert res.notes.counts["Chest ImaGenome box empty (after clipping to the image), dropped"] == 1
    _scene_graph(sg, SUBJ[2][2], [_obj("left lungs", (100, 20, 190, 250))])
    with pytest.raises(AdapterError, match="unknown Chest ImaGenome region 'left lungs'"):
        prepare_dataset("chest-imagenome", root, tmp_path / "out2", reports_root=reports, imagenome_root=ig)


def test_mimic_dicom_record_list_and_missing_column(tmp_path: Path) -> None:
    root = tmp_path / "mimic-cxr"
    _mimic_jpg(tmp_path / "jpg", root)
    for s, st, d, _, _ in SUBJ[:2]:
        dcm = root / "files" / f"p{s[:2]}" / f"p{s}" / f"s{st}" / f"{d}.dcm"
        dcm.parent.mkdir(parents=True, exist_ok=True)
        write_cxr_dicom(dcm, np.full((12, 10), 900, dtype=np.uint16))
    _gz(
        root / "cxr-record-list.csv.gz",
        "subject_id,study_id,dicom_id,path\n"
        + "".join(f"{s},{st},{d},files/p{s[:2]}/p{s}/s{st}/{d}.dcm\n" for s, st, d, _, _ in SUBJ[:2]),
    )
    path, res = prepare_dataset("mimic-cxr", root, tmp_path / "out", jpg_root=tmp_path / "jpg")
    doc = json.loads(path.read_text())
    assert [Path(it["image"]).suffix for it in doc["training"]] == [".dcm", ".dcm"]
    assert doc["training"][0]["report"] == "Lungs are clear. No acute process."
    _gz(root / "cxr-record-list.csv.gz", "subject_id,study_id,path\n1,2,x\n")
    with pytest.raises(AdapterError, match=r"cxr-record-list.csv.gz: missing column\(s\) \['dicom_id'\]"):
        prepare_dataset("mimic-cxr", root, tmp_path / "out3")
