import pytest
import torch

from gkmvlp_monai.engine.accumulate import ScoreTargetAccumulator, TextPairAccumulator
from gkmvlp_monai.engine.metrics import MultiLabelAUC
from gkmvlp_monai.tasks.classification.metrics import ClassificationMetrics
from gkmvlp_monai.tasks.report_generation.metrics import CaptionMetrics


def test_score_target_accumulator_concatenates_skips_none_and_casts():
    m = MultiLabelAUC(names=["a", "b"])
    m.reset()
    m.update((torch.tensor([[0.1, 0.9]], dtype=torch.float64), torch.tensor([[0, 1]])))
    m.update(None)  # a batch whose samples were all skipped
    m.update((torch.tensor([[0.8, 0.2]]), torch.tensor([[1, 0]])))
    p, t = m.collected()
    assert p.dtype == torch.float32 and t.dtype == torch.float32
    assert t.tolist() == [[0.0, 1.0], [1.0, 0.0]]
    assert m.compute()["macro_AUC"] == pytest.approx(1.0)


def test_multiclass_targets_keep_integer_dtype():
    m = ClassificationMetrics(names=["x", "y"], label_type="multiclass")
    m.reset()
    m.update((torch.tensor([[0.7, 0.3], [0.2, 0.8]]), torch.tensor([0, 1])))
    _, t = m.collected()
    assert t.dtype == torch.int64
    assert m.compute()["accuracy"] == pytest.approx(1.0)


@pytest.mark.parametrize("base", [ScoreTargetAccumulator, TextPairAccumulator])
def test_compute_before_any_batch_names_the_metric(base):
    cls = type("MyMetric", (base,), {"compute": lambda self: self.collected()})
    m = cls()
    m.reset()
    with pytest.raises(RuntimeError, match="MyMetric needs at least one"):
        m.compute()


def test_text_pairs_reject_length_mismatch_and_stringify():
    m = CaptionMetrics()
    m.reset()
    with pytest.raises(ValueError, match="2 generated texts but 1 references"):
        m.update((["a", "b"], ["a"]))
    m.update(([1], ["one"]))
    assert m.collected() == (["1"], ["one"])
