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
    subject_unit,
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
    subjects = [f"s{i}" for i in range(4000)]
    ratios = {"training": 0.8, "validation": 0.1, "test": 0.1}
    a = split_subjects(subjects, ratios, seed=3)
    b = split_subjects(reversed(subjects), ratios, seed=3)
    c = split_subjects(subjects, ratios, seed=4)
    assert a == b and a != c
    counts = {s: list(a.values()).count(s) for s in ratios}
    for split, r in ratios.items():  # binomial: within 4 standard deviations of the expected count
        assert abs(counts[split] - r * 4000) < 4 * (4000 * r * (1 - r)) ** 0.5, counts
    with pytest.raises(ValueError, match="sum to 1"):
        split_subjects(subjects, {"training": 0.8, "test": 0.1})


def test_removing_one_subject_moves_no_other() -> None:
    """The split of a subject depends on that subject alone: dropping any one changes nobody else's."""
    subjects = [f"p{i:03d}" for i in range(300)]
    ratios = {"training": 0.7, "validation": 0.1, "test": 0.2}
    full = split_subjects(subjects, ratios, seed=0)
    assert set(full.values()) == set(ratios)
    for gone in subjects:
        rest = split_subjects([s for s in subjects if s != gone], ratios, seed=0)
        assert rest == {s: v for s, v in full.items() if s != gone}, gone
    assert subject_unit("p001", 0) == subject_unit("p001", 0) != subject_unit("p001", 1)


def test_assign_splits_removing_one_subject_moves_no_other() -> None:
    items = _items(120, per_subject=3)
    full = {it["image_id"]: s for s, its in assign_splits(items, None, seed=2).items() for it in its}
    gone = items[0]["subject_id"]
    gone_ids = {it["image_id"] for it in items if it["subject_id"] == gone}
    rest = assign_splits([it for it in items if it["subject_id"] != gone], None, seed=2)
    kept = {it["image_id"]: s for s, its in rest.items() for it in its}
    assert kept == {k: v for k, v in full.items() if k not in gone_ids}


def test_training_fractions_nested_and_deterministic() -> None:
    subjects = [f"s{i // 2}" for i in range(2000)]  # two items per subject
    f = training_fractions(subjects, (0.01, 0.1, 1.0), seed=5)
    assert len(f[1.0]) == 2000 and 10 <= len(f[0.01]) <= 40 and 150 <= len(f[0.1]) <= 250
    assert set(f[0.01]) <= set(f[0.1]) <= set(f[1.0])
    chosen = {subjects[i] for i in f[0.1]}
    assert all((subjects[i] in chosen) == (i in f[0.1]) for i in range(2000))  # a subject's items together
    assert f == training_fractions(subjects, (0.01, 0.1, 1.0), seed=5)
    assert f[0.1] != training_fractions(subjects, (0.1,), seed=6)[0.1]
    assert len(training_fractions([f"s{i}" for i in range(20)], (0.01,))[0.01]) == 1  # never empty
    with pytest.raises(ValueError):
        training_fractions(subjects, (0.0,))


def test_training_fraction_keeps_its_members_when_others_go_missing() -> None:
    subjects = [f"s{i}" for i in range(500)]
    ten = {subjects[i] for i in training_fractions(subjects, (0.1,), seed=0)[0.1]}
    for gone in ("s0", "s250", sorted(ten)[0]):
        rest = [s for s in subjects if s != gone]
        assert {rest[i] for i in training_fractions(rest, (0.1,), seed=0)[0.1]} == ten - {gone}


def test_load_datalist_draws_a_missing_fraction_like_write_datalist(tmp_path: Path) -> None:
    splits = assign_splits(_items(200), None, seed=1)
    path = write_datalist(
        tmp_path, "toy", splits, ["A", "B"], "multilabel", "toy set", fractions=(0.1,), seed=1
    )
    written = [it["image"] for it in load_datalist(path, fraction=0.1)]
    doc = json.loads(path.read_text())
    del doc["training_10pct"]
    path.write_text(json.dumps(doc))
    assert [it["image"] for it in load_datalist(path, fraction=0.1)] == written
    with pytest.raises(ValueError, match="training split"):
        load_datalist(path, "test", fraction=0.1)


def test_write_and_load_datalist(tmp_path: Path) -> None:
    splits = assign_splits(_items(200), None, seed=1)
    path = write_datalist(tmp_path, "toy", splits, ["A", "B"], "multilabel", "toy set", seed=1)
    doc = json.loads(path.read_text())
    assert doc["label_names"] == ["A", "B"] and doc["label_type"] == "multilabel"
    train_ids = [it["image_id"] for it in doc["training"]]
    one, ten = ([it["image_id"] for it in doc[k]] for k in ("training_1pct", "training_10pct"))
    subjects = [it["subject_id"] for it in doc["training"]]
    drawn = training_fractions(subjects, (0.01, 0.1), seed=1)
    assert ten == [train_ids[i] for i in drawn[0.1]] and one == [train_ids[i] for i in drawn[0.01]]
    assert ten and set(one) <= set(ten) <= set(train_ids)
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
