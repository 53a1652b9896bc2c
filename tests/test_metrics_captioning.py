"""Caption metrics (pycocoevalcap) and clinical efficacy against hand-worked values."""

from __future__ import annotations

import math

import pytest

from gkmvlp_monai.tasks.report_generation.clinical import ClinicalEfficacy, clinical_efficacy, entity_prf
from gkmvlp_monai.tasks.report_generation.metrics import (
    CaptionMetrics,
    caption_scores,
    caption_tokens,
    meteor_status,
)


def test_tokenisation_lowercases_and_drops_punctuation():
    assert caption_tokens("No pleural effusion, or pneumothorax. XXXX T-spine!") == [
        "no",
        "pleural",
        "effusion",
        "or",
        "pneumothorax",
        "xxxx",
        "t",
        "spine",
    ]
    assert caption_tokens(None) == [] and caption_tokens("...") == []


def test_bleu_hand_worked_example():
    # reference:  "the heart is normal in size"        (6 tokens)
    # hypothesis: "The heart is normal." -> "the heart is normal" (4 tokens)
    # clipped n-gram precisions: p1 = 4/4, p2 = 3/3, p3 = 2/2, p4 = 1/1 (every hypothesis n-gram is in
    # the reference); brevity penalty BP = exp(1 - r/c) = exp(1 - 6/4) = exp(-0.5) = 0.60653.
    # BLEU-n = BP * (p1 ... pn)^(1/n) = 0.60653 for every n.
    s = caption_scores(["the heart is normal in size"], ["The heart is normal."], meteor=False)
    for n in (1, 2, 3, 4):
        assert s[f"bleu{n}"] == pytest.approx(math.exp(-0.5), abs=1e-6)
    # ROUGE-L: LCS = 4, P = 4/4, R = 4/6, F_beta with beta = 1.2:
    # (1 + 1.44) * 1 * (2/3) / (2/3 + 1.44 * 1) = 1.62667 / 2.10667 = 0.77215
    assert s["rouge_l"] == pytest.approx((2.44 * (2 / 3)) / (2 / 3 + 1.44), abs=1e-6)
    assert math.isnan(s["meteor"])  # switched off: reported as unavailable, never a made-up number


def test_bleu_partial_overlap_hand_worked():
    # ref "no acute cardiopulmonary abnormality" (4), hyp "no acute abnormality" (3)
    # p1 = 3/3; bigrams of hyp: "no acute" (in ref), "acute abnormality" (not) -> p2 = 1/2
    # BP = exp(1 - 4/3) = exp(-1/3) = 0.71653; BLEU-1 = 0.71653; BLEU-2 = 0.71653 * sqrt(1 * 0.5) = 0.50666
    s = caption_scores(["No acute cardiopulmonary abnormality."], ["no acute abnormality"], meteor=False)
    assert s["bleu1"] == pytest.approx(math.exp(-1 / 3), abs=1e-6)
    assert s["bleu2"] == pytest.approx(math.exp(-1 / 3) * math.sqrt(0.5), abs=1e-6)


def test_identical_reports_score_perfectly_and_cider_rewards_consensus():
    refs = ["the heart is normal", "small left pleural effusion", "no pneumothorax is seen"]
    s = caption_scores(refs, list(refs), meteor=False)
    assert s["bleu4"] == pytest.approx(1.0, abs=1e-6) and s["rouge_l"] == pytest.approx(1.0)
    # CIDEr-D of an exact match is 10 * (mean over n of cosine 1) = 10
    assert s["cider"] == pytest.approx(10.0, abs=1e-6)
    worse = caption_scores(
        refs, ["the heart is normal", "no pneumothorax is seen", "small left effusion"], False
    )
    assert worse["cider"] < s["cider"] and worse["bleu4"] < s["bleu4"]


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 references but 1"):
        caption_scores(["a", "b"], ["a"], meteor=False)


@pytest.mark.skipif(meteor_status() != "available", reason=meteor_status())
def test_meteor_runs_through_java():
    s = caption_scores(["the heart is normal", "no effusion"], ["the heart is normal", "large effusion"])
    assert 0.0 < s["meteor"] < 1.0


def test_entity_prf_hand_worked():
    # report 1: ref {effusion, cardiomegaly}, gen {effusion}           -> TP eff, FN card
    # report 2: ref {pneumothorax},          gen {pneumothorax, edema}  -> TP ptx, FP edema
    # report 3: ref {},                      gen {effusion}             -> FP eff
    # micro: TP 2, FP 2, FN 1 -> P = 2/4 = 0.5, R = 2/3, F1 = 2 * 0.5 * 0.6667 / 1.1667 = 0.5714
    # macro over the entities positive in some reference (effusion, cardiomegaly, pneumothorax):
    #   effusion P 1/2 R 1 F1 2/3; cardiomegaly P 0 (never generated) R 0 F1 0; pneumothorax P 1 R 1 F1 1
    #   -> P 0.5, R 2/3, F1 (2/3 + 0 + 1) / 3 = 0.5556; edema (only generated) is not in the macro mean
    refs = [{"effusion", "cardiomegaly"}, {"pneumothorax"}, set()]
    hyps = [{"effusion"}, {"pneumothorax", "edema"}, {"effusion"}]
    s = entity_prf(refs, hyps)
    assert s["ce_micro_precision"] == pytest.approx(0.5)
    assert s["ce_micro_recall"] == pytest.approx(2 / 3)
    assert s["ce_micro_f1"] == pytest.approx(4 / 7)
    assert s["ce_macro_precision"] == pytest.approx(0.5)
    assert s["ce_macro_recall"] == pytest.approx(2 / 3)
    assert s["ce_macro_f1"] == pytest.approx((2 / 3 + 1) / 3)
    assert s["ce_num_entities"] == 3


def test_clinical_efficacy_reads_reports_with_the_report_filter():
    refs = ["The heart is enlarged. Small left pleural effusion.", "No pneumothorax."]
    # negated and uncertain findings are not positive
    hyps = ["Cardiomegaly. No pleural effusion.", "Possible pneumothorax."]
    s = clinical_efficacy(refs, hyps, kinds=("abnormal",))
    # positives: ref1 {cardiomegaly, effusion}, ref2 {}; gen1 {cardiomegaly}, gen2 {} (uncertain)
    assert s["ce_micro_precision"] == pytest.approx(1.0)
    assert s["ce_micro_recall"] == pytest.approx(0.5)
    assert s["ce_num_entities"] == 2
    with pytest.raises(ValueError, match="unknown entity kinds"):
        clinical_efficacy(refs, hyps, kinds=("bogus",))


def test_ignite_metrics_publish_every_score():
    from ignite.engine import Engine

    refs = ["the heart is normal", "small left pleural effusion"]
    engine = Engine(lambda e, b: b)
    CaptionMetrics(meteor=False, prefix="val_").attach(engine, "val_bleu4")
    ClinicalEfficacy(prefix="val_").attach(engine, "val_ce_micro_f1")
    engine.run([(refs[:1], refs[:1]), None, (refs[1:], refs[1:])], max_epochs=1)
    m = engine.state.metrics
    assert m["val_bleu4"] == pytest.approx(1.0, abs=1e-6) and m["val_rouge_l"] == pytest.approx(1.0)
    assert math.isnan(m["val_meteor"])
    assert m["val_ce_micro_f1"] == pytest.approx(1.0) and m["val_ce_macro_f1"] == pytest.approx(1.0)
