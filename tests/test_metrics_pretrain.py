import math

import pytest
import torch
from gkmvlp_monai.metrics import (
    MultiLabelAUC,
    RetrievalRecall,
    masked_multilabel_auc,
    recall_at_k,
    retrieval_scores,
    text_match_matrix,
)


def test_recall_at_k_hand_worked():
    # query 0: correct item ranked 1st; query 1: ranked 2nd; query 2: ranked 3rd
    sim = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.5, 0.1], [0.7, 0.6, 0.2]])
    rel = torch.eye(3, dtype=torch.bool)
    r = recall_at_k(sim, rel, ks=(1, 2, 3))
    assert r == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3), 3: pytest.approx(1.0)}


def test_identical_reports_count_as_correct():
    texts = ["Lungs are clear.", "lungs are  CLEAR.", "Right effusion."]
    m = text_match_matrix(texts)
    assert m[0, 1] and m[1, 0] and not m[0, 2]
    img = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    txt = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    s = retrieval_scores(img, txt, texts, ks=(1,))
    assert s["i2t_R1"] == 1.0 and s["t2i_R1"] == 1.0
    # without text matching, the tie between items 0 and 1 makes one of them miss at R@1
    s_strict = retrieval_scores(img, txt, None, ks=(1,))
    assert s_strict["i2t_R1"] < 1.0


def test_retrieval_metric_accumulates_batches():
    torch.manual_seed(0)
    emb = torch.randn(12, 8)
    metric = RetrievalRecall(ks=(1, 5))
    metric.reset()
    metric.update((emb[:5], emb[:5] + 0.01, [f"r{i}" for i in range(5)]))
    metric.update((emb[5:], emb[5:] + 0.01, [f"r{i}" for i in range(5, 12)]))
    out = metric.compute()
    assert out["i2t_R1"] == 1.0 and out["t2i_R5"] == 1.0
    shuffled = RetrievalRecall(ks=(1,))
    shuffled.reset()
    shuffled.update((emb, emb.flip(0), [f"r{i}" for i in range(12)]))
    assert shuffled.compute()["i2t_R1"] < 0.5


def test_masked_auc_hand_worked():
    probs = torch.tensor([[0.9, 0.2], [0.8, 0.6], [0.3, 0.7], [0.1, 0.1]])
    targets = torch.tensor([[1.0, -1.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    per = masked_multilabel_auc(probs, targets)
    # class 0: positives 0.9, 0.3; negatives 0.8, 0.1 -> pairs won: (0.9>0.8, 0.9>0.1, 0.3<0.8, 0.3>0.1) = 3/4
    assert per[0] == pytest.approx(0.75)
    # class 1: the -1 entry is ignored; positives 0.6, 0.7 vs negative 0.1 -> 1.0
    assert per[1] == pytest.approx(1.0)


def test_auc_metric_top_k_and_undefined_classes():
    names = ["a", "b", "c"]
    probs = torch.tensor([[0.9, 0.1, 0.5], [0.1, 0.9, 0.5], [0.8, 0.2, 0.5], [0.2, 0.3, 0.5]])
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    m = MultiLabelAUC(names, prefix="zs_", top_k=1)
    m.reset()
    m.update((probs, targets))
    out = m.compute()
    assert out["zs_AUC_a"] == 1.0 and "zs_AUC_c" not in out  # c has no positive: undefined, not faked
    assert out["zs_macro_AUC"] == 1.0  # top-1 by positives is "a"
    assert not math.isnan(out["zs_macro_AUC"])


def test_auc_metric_top_k_among_candidates_only():
    names = ["normal", "a", "b"]
    probs = torch.tensor([[0.9, 0.9, 0.1], [0.8, 0.1, 0.9], [0.7, 0.8, 0.2], [0.1, 0.2, 0.3]])
    targets = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    m = MultiLabelAUC(names, top_k=1, candidates=["a", "b"])
    m.reset()
    m.update((probs, targets))
    out = m.compute()
    assert m.chosen == ["a"]  # "normal" has the most positives but is not a candidate
    assert out["macro_AUC"] == out["AUC_a"]
    with pytest.raises(ValueError, match="not among"):
        MultiLabelAUC(names, candidates=["zzz"])
