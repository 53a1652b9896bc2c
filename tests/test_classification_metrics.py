"""Classification metrics and thresholds against hand-worked values; labels and loss."""

from __future__ import annotations

import json
import math

import pytest
import torch

from gkmvlp_monai.tasks.classification.engine import (
    ClassificationLabeld,
    MaskedBCEWithLogitsLoss,
    classification_loss,
)
from gkmvlp_monai.tasks.classification.metrics import (
    ClassificationMetrics,
    ThresholdStore,
    f1_from_counts,
    multiclass_scores,
    select_threshold,
    select_thresholds,
    thresholded_scores,
)

T = torch.tensor


def test_select_threshold_max_f1_and_youden_differ_on_a_worked_example():
    # candidates (descending): 0.9 F1 .5 J 1/3; 0.8 F1 .4 J -1/6; 0.7 F1 2/3 J 1/6; 0.6 F1 4/7 J -1/3;
    # 0.2 F1 .75 J 0  -> max F1 at 0.2, max Youden at 0.9
    s, y = T([0.9, 0.8, 0.7, 0.6, 0.2]), T([1, 0, 1, 0, 1])
    assert select_threshold(s, y, "f1") == pytest.approx(0.2)
    assert select_threshold(s, y, "youden") == pytest.approx(0.9)


def test_select_threshold_ties_go_to_the_higher_threshold():
    # Youden: 0.9 -> 0.5, 0.6 -> 0, 0.4 -> 0.5, 0.1 -> 0: tie between 0.9 and 0.4
    s, y = T([0.9, 0.6, 0.4, 0.1]), T([1, 0, 1, 0])
    assert select_threshold(s, y, "youden") == pytest.approx(0.9)
    assert select_threshold(s, y, "f1") == pytest.approx(0.4)  # F1 0.8 beats 2/3, 0.5, 2/3


def test_select_threshold_is_undefined_with_one_target_value_and_rejects_bad_criteria():
    assert select_threshold(T([0.1, 0.9]), T([0, 0]), "f1") is None
    assert select_threshold(T([0.1, 0.9]), T([1, 1]), "youden") is None
    with pytest.raises(ValueError, match="criterion"):
        select_threshold(T([0.1]), T([1]), "accuracy")


def test_select_thresholds_leaves_out_ignored_entries():
    probs = T([[0.9, 0.2], [0.1, 0.8], [0.5, 0.3]])
    targets = T([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])  # without the ignore, class 0 would pick 0.5 or less
    assert select_thresholds(probs, targets) == [pytest.approx(0.9), pytest.approx(0.8)]


def test_f1_definition():
    assert f1_from_counts(2, 1, 1) == pytest.approx(4 / 6)
    assert f1_from_counts(0, 0, 0) is None
    assert f1_from_counts(0, 3, 0) == 0.0


def test_thresholded_f1_and_accuracy_hand_worked():
    probs = T([[0.9, 0.2], [0.4, 0.7], [0.6, 0.1], [0.3, 0.8]])
    targets = T([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0], [0.0, 0.0]])
    out = thresholded_scores(probs, targets, [0.5, 0.75], ["a", "b"])
    # a: calls 1,0,1,0 vs 1,0,1,0 -> F1 1, acc 1; b (row 2 ignored): calls 0,0,1 vs 0,1,0 -> F1 0, acc 1/3
    assert out["F1_a"] == 1.0 and out["accuracy_a"] == 1.0
    assert out["F1_b"] == 0.0 and out["accuracy_b"] == pytest.approx(1 / 3)
    assert out["macro_F1"] == pytest.approx(0.5) and out["mean_accuracy"] == pytest.approx(2 / 3)


def test_thresholded_scores_leave_single_valued_classes_out_of_the_means():
    probs = T([[0.9, 0.9], [0.1, 0.1]])
    targets = T([[1.0, 0.0], [0.0, 0.0]])  # class b has no positive: F1 0 (one false call), not averaged
    out = thresholded_scores(probs, targets, [0.5, 0.5], ["a", "b"])
    assert out["F1_b"] == 0.0 and out["macro_F1"] == 1.0 and out["mean_accuracy"] == 1.0


def test_multiclass_scores_hand_worked():
    probs = T([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.4, 0.3], [0.35, 0.05, 0.6]])
    labels = T([0, 1, 0, 2])
    out = multiclass_scores(probs, labels, ["x", "y", "z"])
    assert out["accuracy"] == pytest.approx(0.75)  # calls 0, 1, 1, 2
    assert out["F1_x"] == pytest.approx(2 / 3) and out["F1_y"] == pytest.approx(2 / 3) and out["F1_z"] == 1.0
    assert out["macro_F1"] == pytest.approx(7 / 9)
    # class x one-vs-rest: positives 0.7, 0.3 vs negatives 0.1, 0.35 -> 3 of 4 pairs ordered
    assert out["AUC_x"] == pytest.approx(0.75) and out["AUC_y"] == 1.0 and out["AUC_z"] == 1.0
    assert out["macro_AUC"] == pytest.approx((0.75 + 1 + 1) / 3)


def test_multiclass_class_absent_from_the_labels_is_undefined():
    out = multiclass_scores(T([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0]]), T([0, 1]), ["x", "y", "z"])
    assert "AUC_z" not in out and "F1_z" not in out and out["macro_AUC"] == 1.0


def test_classification_metrics_fit_on_validation_then_apply_on_test(tmp_path):
    store = ThresholdStore(["a", "b"], "f1", path=str(tmp_path / "thr.json"))
    val = ClassificationMetrics(["a", "b"], threshold_store=store, fit_thresholds=True)
    val.update((T([[0.9, 0.3], [0.2, 0.6], [0.7, 0.1]]), T([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])))
    res = val.compute()
    # a: max F1 at 0.7 (both positives, no false call); b: no positive -> fallback 0.5, no AUC
    assert store.thresholds == [pytest.approx(0.7), 0.5] and store.fallback == ["b"]
    assert res["AUC_a"] == 1.0 and "AUC_b" not in res and res["macro_AUC"] == 1.0
    saved = json.loads((tmp_path / "thr.json").read_text())
    assert saved["thresholds"]["a"] == pytest.approx(0.7) and saved["fallback"] == ["b"]

    test = ClassificationMetrics(["a", "b"], threshold_store=store)
    test.update((T([[0.8, 0.6], [0.65, 0.4]]), T([[1.0, 1.0], [1.0, 0.0]])))
    test.update(None)  # a skipped batch
    out = test.compute()
    # a: 0.8 >= 0.7 call, 0.65 not -> tp 1 fn 1 -> F1 2/3, acc 1/2 (a has one value: not in the means)
    assert out["F1_a"] == pytest.approx(2 / 3) and out["accuracy_a"] == 0.5
    # b at 0.5: calls 1, 0 vs 1, 0 -> F1 1; only b has both values
    assert out["F1_b"] == 1.0 and out["macro_F1"] == 1.0 and out["macro_AUC"] == 1.0
    assert math.isnan(out.get("AUC_a", float("nan")))


def test_classification_metrics_refuses_unfitted_store_and_no_data():
    m = ClassificationMetrics(["a"], threshold_store=ThresholdStore(["a"]))
    with pytest.raises(RuntimeError, match="at least one batch"):
        m.compute()
    m.update((T([[0.5]]), T([[1.0]])))
    with pytest.raises(RuntimeError, match="not fitted"):
        m.compute()


def test_masked_bce_ignores_uncertain_entries():
    logits = T([[2.0, -1.0, 5.0]])
    target = T([[1.0, 0.0, -1.0]])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(T([2.0, -1.0]), T([1.0, 0.0]))
    assert MaskedBCEWithLogitsLoss()(logits, target) == pytest.approx(float(expected))
    assert float(MaskedBCEWithLogitsLoss()(logits, torch.full_like(target, -1.0))) == 0.0
    assert isinstance(classification_loss("multiclass"), torch.nn.CrossEntropyLoss)
    with pytest.raises(ValueError):
        classification_loss("ordinal")


def test_label_transform_policies_and_errors():
    item = {"image": "x.png", "label": [1, -1, 0]}
    assert ClassificationLabeld(num_classes=3)(item)["label"].tolist() == [1.0, -1.0, 0.0]
    assert ClassificationLabeld(num_classes=3, uncertain="zeros")(item)["label"].tolist() == [1.0, 0.0, 0.0]
    assert ClassificationLabeld(num_classes=3, uncertain="ones")(item)["label"].tolist() == [1.0, 1.0, 0.0]
    mc = ClassificationLabeld(num_classes=3, label_type="multiclass")({"image": "x.png", "label": 2})
    assert mc["label"].dtype == torch.long and int(mc["label"]) == 2
    with pytest.raises(ValueError, match="x.png: label has 3 values, expected 4"):
        ClassificationLabeld(num_classes=4)(item)
    with pytest.raises(ValueError, match="x.png.*not an index"):
        ClassificationLabeld(num_classes=2, label_type="multiclass")({"image": "x.png", "label": 2})
    with pytest.raises(ValueError, match="1, 0 or -1"):
        ClassificationLabeld(num_classes=3)({"image": "x.png", "label": [1, 2, 0]})
