"""VQA data path (answer normalisation, per-question flattening, fractions, vocabulary, dataset) and metrics."""

from __future__ import annotations

import json
import math

import pytest
import torch

from gkmvlp_monai.data.dataset import SKIP_KEY
from gkmvlp_monai.tasks.vqa.data import (
    UNKNOWN,
    AnswerVocab,
    VQADataset,
    VQATextd,
    flatten_qa,
    image_items,
    load_vqa_split,
    normalize_answer,
)
from gkmvlp_monai.tasks.vqa.metrics import VQAAccuracy, vqa_accuracy


def _qa(i: int) -> list[dict]:
    return [
        {"question": "Is there cardiomegaly?", "answer": "yes" if i % 2 else "no", "answer_type": "CLOSED"},
        {
            "question": "Where is the nodule?",
            "answer": f"Right lung {i}.",
            "answer_type": "OPEN",
            "question_type": "where",
        },
    ]


@pytest.fixture
def datalist(tmp_path):
    doc = {
        "name": "toy",
        "training": [{"image": f"img/tr{i}.png", "qa": _qa(i)} for i in range(10)],
        "validation": [{"image": "img/va0.png", "qa": _qa(0)}],
        "test": [{"image": f"img/te{i}.png", "qa": _qa(i + 20)} for i in range(2)],
    }
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    "raw, norm",
    [
        ("Yes", "yes"),
        ("yes.", "yes"),
        ("  Y ", "yes"),
        ("False", "no"),
        ("The Right Lung.", "right lung"),
        ("a nodule, the effusion", "nodule effusion"),
        ("right lung, left lung", "right lung left lung"),
        ("X-ray", "x ray"),
        (None, ""),
        ("yes, in the apex", "yes in apex"),
    ],
)
def test_normalize_answer(raw, norm):
    assert normalize_answer(raw) == norm


def test_flatten_keeps_image_split_and_fields(datalist):
    splits = {s: load_vqa_split(datalist, s) for s in ("training", "validation", "test")}
    assert [len(v) for v in splits.values()] == [20, 2, 4]
    images = {s: {q["image"] for q in v} for s, v in splits.items()}
    assert not images["training"] & images["test"] and not images["training"] & images["validation"]
    q = splits["training"][1]
    assert q["answer_type"] == "OPEN" and q["question_type"] == "where" and q["image"].endswith("tr0.png")
    assert splits["training"][0]["question_type"] == ""  # absent -> ""


def test_fraction_is_drawn_over_images(datalist):
    part = load_vqa_split(datalist, "training", 0.2)
    imgs = {q["image"] for q in part}
    assert imgs and len(part) == 2 * len(imgs)  # both questions of each chosen image
    assert imgs <= {q["image"] for q in load_vqa_split(datalist, "training", 0.5)}  # nested
    with pytest.raises(ValueError, match="training split"):
        load_vqa_split(datalist, "test", 0.1)


def test_flatten_question_level_items_and_errors():
    items = [{"image": "a.png", "question": "Is it?", "answer": "Yes", "answer_type": "closed"}]
    assert flatten_qa(items)[0]["answer_type"] == "CLOSED"
    with pytest.raises(ValueError, match=r"x\.json training\[0\] \(b\.png\).*neither"):
        flatten_qa([{"image": "b.png"}], "x.json training")
    with pytest.raises(ValueError, match=r"qa\[0\].*CLOSED or OPEN"):
        flatten_qa([{"image": "b.png", "qa": [{"question": "q", "answer": "a", "answer_type": "free"}]}])
    images, index = image_items(flatten_qa([{"image": "a", "qa": _qa(0)}, {"image": "b", "qa": _qa(1)}]))
    assert [i["image"] for i in images] == ["a", "b"] and index == [0, 0, 1, 1]


def test_answer_vocab(tmp_path):
    items = [{"answer": a} for a in ["No", "effusion", "Effusion.", "no", "nodule", "no"]]
    vocab = AnswerVocab.from_items(items)
    assert vocab.answers == ["yes", "no", "effusion", "nodule"]  # yes/no first, then by count
    assert vocab.index("The effusion") == 2 and vocab.index("pneumothorax") == UNKNOWN
    assert AnswerVocab.from_items(items, min_count=2).answers == ["yes", "no", "effusion"]
    assert vocab.coverage([{"answer": "yes"}, {"answer": "mass"}]) == 0.5
    again = AnswerVocab.load(vocab.save(tmp_path / "m" / "answers.json"))
    assert again.answers == vocab.answers
    with pytest.raises(FileNotFoundError, match="answers.json"):
        AnswerVocab.load(tmp_path / "answers.json")


class _FakeTokenizer:
    def __call__(self, texts, padding, truncation, max_length, return_tensors):
        ids = torch.zeros(len(texts), max_length, dtype=torch.long)
        for i, t in enumerate(texts):
            n = min(len(t.split()) + 2, max_length)
            ids[i, :n] = torch.arange(1, n + 1)
        return {"input_ids": ids, "attention_mask": (ids > 0).long()}


def test_text_transform_and_dataset(datalist):
    questions = load_vqa_split(datalist, "training")
    vocab = AnswerVocab.from_items(questions)
    text = VQATextd(_FakeTokenizer(), vocab, question_max_length=8, answer_max_length=6)
    bad = {"img/tr1.png"}

    def images_fn(items):
        return [
            {SKIP_KEY: True, "file": it["image"], "error": "x", "index": 0}
            if any(it["image"].endswith(b) for b in bad)
            else {"image": torch.zeros(1, 4, 4), "region_boxes": torch.zeros(29, 4), "report": "r"}
            for it in items
        ]

    ds = VQADataset(questions, images_fn, text)
    assert len(ds) == 20 and len(ds.images) == 10
    s = ds[1]
    assert s["answer_text"] == "right lung 0" and not bool(s["is_closed"])
    assert int(s["answer_label"]) == vocab.index("right lung 0") and s["question_ids"].shape == (8,)
    assert s["answer_ids"].shape == (6,) and "report" not in s and s["region_boxes"].shape == (29, 4)
    assert bool(ds[0]["is_closed"]) and int(ds[0]["answer_label"]) == 1  # "no"
    assert ds[2][SKIP_KEY] and ds[3][SKIP_KEY]  # both questions of the bad image are skipped


def test_vqa_accuracy_hand_worked():
    pred = ["Yes", "no", "The right lung.", "none", "nodule"]
    truth = ["yes", "yes", "right lung", "effusion", "nodule"]
    closed = [True, True, False, False, False]
    acc = vqa_accuracy(pred, truth, closed)
    assert acc["closed_acc"] == pytest.approx(1 / 2)
    assert acc["open_acc"] == pytest.approx(2 / 3)
    assert acc["overall_acc"] == pytest.approx(3 / 5)
    assert (acc["n_closed"], acc["n_open"]) == (2, 3)
    only_closed = vqa_accuracy(["no"], ["no"], [True])
    assert only_closed["closed_acc"] == 1.0 and math.isnan(only_closed["open_acc"])
    with pytest.raises(ValueError, match="differ"):
        vqa_accuracy(["a"], [], [True])


def test_vqa_accuracy_metric_over_batches():
    m = VQAAccuracy(prefix="val_")
    m.reset()
    m.update((["yes", "right lung"], ["yes", "left lung"], torch.tensor([True, False])))
    m.update(None)  # a skipped batch
    m.update((["no", "nodule"], ["yes", "nodule"], [True, False]))
    out = m.compute()
    assert out == {"val_closed_acc": 0.5, "val_open_acc": 0.5, "val_overall_acc": 0.5}
    m.reset()
    with pytest.raises(RuntimeError):
        m.compute()
