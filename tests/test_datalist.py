"""Tests of the shared datalist machinery: validation, splits, fractions, files, loader."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from monai.data import load_decathlon_datalist

from gkmvlp_monai.data.datalist import (
    DatalistError,
    assign_splits,
    load_datalist,
    split_subjects,
    training_fractions,
    validate_item,
    write_datalist,
)


def _items(n: int, per_subject: int = 2) -> list[dict]:
    return [
        {
            "image": f"img/{i}.png",
            "image_id": f"i{i}",
            "subject_id": f"s{i // per_subject}",
            "label": [0.0, 1.0],
        }
        for i in range(n)
    ]


def test_validate_item_rejects_contract_violations() -> None:
    validate_item({"image": "a.png", "label": [1.0, -1.0]}, ["A", "B"], "multilabel")
    validate_item({"image": "a.png", "label": 1}, ["A", "B"], "multiclass")
    bad = [
        ({"label": [1.0, 0.0]}, "'image'"),
        ({"image": "a.png", "label": [1.0]}, "2 values"),
        ({"image": "a.png", "label": [2.0, 0.0]}, "1, 0 or -1"),
        ({"image": "a.png", "view": "FRONTAL"}, "view"),
        ({"image": "a.png", "region_boxes": {"left lung": [5, 0, 1, 1]}}, "left lung"),
        ({"image": "a.png", "region_boxes": {"lung": [0, 0, 1, 1]}}, "regions.json"),
        ({"image": "a.png", "lesion_boxes": [[0, 0, 1, 1]], "lesion_labels": []}, "lesion_labels"),
        ({"image": "a.png", "answer_type": "yes"}, "answer_type"),
    ]
    for item, msg in bad:
        with pytest.raises(DatalistError, match=msg):
            validate_item(item, ["A", "B"], "multilabel", where="x")
    with pytest.raises(DatalistError, match="multiclass"):
        validate_item({"image": "a.png", "label": 2}, ["A", "B"], "multiclass")


def test_split_subjects_deterministic_and_ratio() -> None:
    subjects = [f"s{i}" for i in range(1000)]
    a = split_subjects(subjects, {"training": 0.8, "validation": 0.1, "test": 0.1}, seed=3)
    b = split_subjects(reversed(subjects), {"training": 0.8, "validation": 0.1, "test": 0.1}, seed=3)
    c = split_subjects(subjects, {"training": 0.8, "validation": 0.1, "test": 0.1}, seed=4)
    assert a == b and a != c
    counts = {s: list(a.values()).count(s) for s in ("training", "validation", "test")}
    assert counts == {"training": 800, "validation": 100, "test": 100}
    with pytest.raises(ValueError, match="sum to 1"):
        split_subjects(subjects, {"training": 0.8, "test": 0.1})


def test_assign_splits_keeps_patients_together_and_official_splits() -> None:
    items = _items(40, per_subject=4)
    out = assign_splits(items, None, val_ratio=0.2, test_ratio=0.2, seed=0)
    where = {it["subject_id"]: s for s, its in out.items() for it in its}
    for s, its in out.items():
        assert all(where[it["subject_id"]] == s for it in its)
    assert sum(len(v) for v in out.values()) == 40
    official = {"i0": "test", "i1": "validation", **{f"i{i}": "train" for i in range(2, 40)}}
    out = assign_splits(items, official, val_ratio=0.25, seed=0)
    assert [it["image_id"] for it in out["test"]] == ["i0"]
    assert "i1" in [it["image_id"] for it in out["validation"]]
    assert len(out["validation"]) > 1  # the 'train' pool gave some subjects to validation


def test_training_fractions_nested_and_deterministic() -> None:
    f = training_fractions(1000, (0.01, 0.1, 1.0), seed=5)
    assert len(f[0.01]) == 10 and len(f[0.1]) == 100 and len(f[1.0]) == 1000
    assert set(f[0.01]) <= set(f[0.1]) <= set(f[1.0])
    assert f == training_fractions(1000, (0.01, 0.1, 1.0), seed=5)
    assert f[0.1] != training_fractions(1000, (0.1,), seed=6)[0.1]
    assert len(training_fractions(20, (0.01,))[0.01]) == 1  # at least one item
    with pytest.raises(ValueError):
        training_fractions(10, (0.0,))


def test_write_and_load_datalist(tmp_path: Path) -> None:
    splits = assign_splits(_items(200), None, seed=1)
    path = write_datalist(tmp_path, "toy", splits, ["A", "B"], "multilabel", "toy set", seed=1)
    doc = json.loads(path.read_text())
    assert doc["label_names"] == ["A", "B"] and doc["label_type"] == "multilabel"
    train_ids = [it["image_id"] for it in doc["training"]]
    one, ten = ([it["image_id"] for it in doc[k]] for k in ("training_1pct", "training_10pct"))
    assert len(ten) == round(0.1 * len(train_ids)) and set(one) <= set(ten) <= set(train_ids)
    rows = list(csv.DictReader(open(tmp_path / "toy_splits.csv")))
    assert len(rows) == 200
    assert {r["id"] for r in rows if r["training_10pct"] == "1"} == set(ten)
    loaded = load_datalist(path, "training")
    monai_loaded = load_decathlon_datalist(str(path), data_list_key="training", base_dir=str(tmp_path))
    assert [it["image"] for it in loaded] == [it["image"] for it in monai_loaded]
    assert Path(loaded[0]["image"]).is_absolute()
    assert [it["image_id"] for it in load_datalist(path, fraction=0.01)] == one
    with pytest.raises(KeyError, match="no split"):
        load_datalist(path, "training_50pct")
    with pytest.raises(DatalistError, match="unknown split"):
        write_datalist(tmp_path, "bad", {"train": []})
