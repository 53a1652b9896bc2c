"""The VQA head on tiny inputs: losses, ignored unknown answers, generation, eval inferer, export wrapper."""

from __future__ import annotations

import pytest
import torch

from gkmvlp_monai.tasks.vqa.data import AnswerVocab
from gkmvlp_monai.tasks.vqa.engine import VQAEvalInferer, answers_from_pred
from gkmvlp_monai.tasks.vqa.model import (
    GKMVLPVQA,
    VQAPresencePredictor,
    build_vqa,
    default_region_boxes,
    fused_tokens,
    presence_questions,
    unique_rows,
)

S, R, B, L, T = 64, 29, 3, 8, 6
DESCS = ["opacity in the lung", "fluid in the pleural space", "enlarged heart"]
VOCAB = AnswerVocab(["yes", "no", "right lung", "nodule"])


@pytest.fixture(scope="module")
def model() -> GKMVLPVQA:
    torch.manual_seed(0)
    return build_vqa(len(VOCAB), "tiny", DESCS, image_size=S)


def _batch(model: GKMVLPVQA, labels=(0, 1, 2), closed=(True, True, False)) -> dict:
    q = model.backbone.tokenize(["is there an effusion?", "is it normal?", "where is the nodule?"])
    a = model.tokenizer(["yes", "no", "right lung"], padding="max_length", max_length=T, return_tensors="pt")
    boxes = torch.tensor([4.0, 4.0, 40.0, 40.0]).repeat(B, R, 1)
    return {
        "image": torch.rand(B, 1, S, S),
        "region_boxes": boxes,
        "region_mask": torch.ones(B, R, dtype=torch.bool),
        "question_ids": q["input_ids"][:, :L],
        "question_mask": q["attention_mask"][:, :L],
        "answer_ids": a["input_ids"],
        "answer_mask": a["attention_mask"],
        "answer_label": torch.tensor(labels),
        "is_closed": torch.tensor(closed),
        "answer_text": ["yes", "no", "right lung"],
        "question": ["q1", "q2", "q3"],
    }


def test_forward_losses_and_gradients(model):
    model.train()
    out = model(_batch(model))
    assert out["answer_logits"].shape == (B, len(VOCAB))
    assert out["memory"].shape[:2] == (B, L + 1 + 4 + len(DESCS))  # question + global + 2x2 patches + GK
    assert torch.isfinite(out["loss"]) and out["loss"] > 0
    torch.testing.assert_close(out["loss"], out["loss_cls"] + out["loss_gen"])
    out["loss"].backward()
    for name in (
        "classifier.4.weight",
        "backbone.fusion.in_proj.weight",
        "backbone.decoder.token_embed.weight",
        "backbone.image_encoder.backbone.conv1.weight",
    ):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    model.zero_grad()


def test_unknown_answers_are_ignored_by_the_classifier(model):
    model.eval()
    with torch.no_grad():
        known = model(_batch(model, labels=(0, -1, -1)))
        none = model(_batch(model, labels=(-1, -1, -1)))
    logp = torch.log_softmax(known["answer_logits"][0], -1)
    expected = -(0.9 * logp[0] + 0.1 * logp.mean())  # label smoothing 0.1 over the 4 classes
    torch.testing.assert_close(known["loss_cls"], expected)
    assert none["loss_cls"] == 0


def test_fused_tokens_match_the_itm_fusion(model):
    model.eval()
    fusion = model.backbone.fusion
    text, mask, mem = (
        torch.randn(2, 5, fusion.in_proj.in_features),
        torch.tensor([[1, 1, 1, 0, 0]] * 2),
        torch.randn(2, 7, 32),
    )
    with torch.no_grad():
        torch.testing.assert_close(fused_tokens(fusion, text, mask, mem)[:, 0], fusion(text, mask, mem))


def test_unique_rows_first_occurrence_and_inverse():
    x = torch.tensor([[1.0, 2], [3, 4], [1, 2], [5, 6], [3, 4]])
    m = torch.tensor([0, 1, 0, 1, 1])  # row 3 differs from row 1 in x only, row 4 equals row 1
    first, inverse = unique_rows(x, m)
    assert first.tolist() == [0, 1, 3] and inverse.tolist() == [0, 1, 0, 2, 1]


def test_eval_shares_the_encoding_of_a_repeated_picture(model):
    """Questions about one picture (the evaluation order) encode it once; the answers are unchanged."""
    batch = _batch(model)
    batch["image"] = batch["image"][[0, 0, 1]]  # questions 0 and 1 ask about one picture
    model.eval()
    calls = []
    hook = model.backbone.image_encoder.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        with torch.no_grad():
            shared = model(batch)
            one_by_one = [
                model({k: v[i : i + 1] for k, v in batch.items() if torch.is_tensor(v)}) for i in range(B)
            ]
    finally:
        hook.remove()
    assert calls[0] == 2  # two distinct pictures in the batch of three
    for key in ("answer_logits", "memory"):
        torch.testing.assert_close(shared[key], torch.cat([o[key] for o in one_by_one]), atol=1e-5, rtol=1e-5)
    model.train()
    calls.clear()
    hook = model.backbone.image_encoder.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        model(batch)
    finally:
        hook.remove()
    assert calls == [B]  # training batches are not deduplicated by content (augmentation differs)
    calls.clear()
    hook = model.backbone.image_encoder.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        out = model({**batch, "image_index": torch.tensor([7, 7, 3])})
    finally:
        hook.remove()
    assert calls == [2]  # ...but by the data set's picture index (grouped sampler)
    out["loss"].backward()


def test_eval_inferer_generates_for_open_questions(model):
    model.eval()
    inferer = VQAEvalInferer(VOCAB, generate="open", max_answer_length=4)
    with torch.no_grad():
        out = inferer(_batch(model), model)
    assert len(out["pred_answer"]) == B and all(a in VOCAB.answers for a in out["pred_answer"])
    assert out["gen_answer"][:2] == ["", ""] and isinstance(out["gen_answer"][2], str)
    assert (
        out["hybrid_answer"][:2] == out["pred_answer"][:2] and out["hybrid_answer"][2] == out["gen_answer"][2]
    )
    pred, truth, closed = answers_from_pred("hybrid_answer")({"pred": out})
    assert truth == ["yes", "no", "right lung"] and closed.tolist() == [True, True, False]
    with pytest.raises(ValueError, match="answer classes"):
        VQAEvalInferer(["yes", "no"])(_batch(model), model)


def test_presence_predictor_shares_keys_and_traces(model):
    model.eval()
    questions = presence_questions(["No Finding", "Cardiomegaly", "Pleural Effusion"])
    assert questions == ["Is there cardiomegaly?", "Is there pleural effusion?"]
    net = VQAPresencePredictor(model, questions, default_region_boxes(S), S, question_max_length=16).eval()
    assert set(net.state_dict()) == set(model.state_dict())  # ckpt_export loads model.pt strictly
    x = torch.rand(2, 1, S, S)
    with torch.no_grad():
        p = net(x)
        q = model.backbone.tokenize(questions * 2)
        images = x.repeat_interleave(2, 0)  # (image 0, q0), (image 0, q1), (image 1, q0), (image 1, q1)
        enc = model.encode(
            images,
            default_region_boxes(S).expand(4, -1, -1),
            torch.ones(4, R, dtype=torch.bool),
            q["input_ids"][:, :16],
            q["attention_mask"][:, :16],
        )
        ref = model.classifier(enc["cls"])[:, :2].softmax(-1)[:, 0].reshape(2, 2)
        traced = torch.jit.trace(net, torch.rand(1, 1, S, S), check_trace=False)
        again = traced(x)
    assert p.shape == (2, 2) and ((p >= 0) & (p <= 1)).all()
    torch.testing.assert_close(p, ref)
    torch.testing.assert_close(again, p)
    with pytest.raises(ValueError, match="num_answers"):
        GKMVLPVQA(model.backbone, 1)
