"""Each objective on tiny inputs: ITC, ITM mining, LM, ECLS, grounding."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gkmvlp_monai.models.heads import ITCHead
from gkmvlp_monai.models.losses.ecls import ECLSLoss
from gkmvlp_monai.models.losses.grounding import GroundingLoss
from gkmvlp_monai.models.losses.itc import ITCLoss, report_keys
from gkmvlp_monai.models.losses.itm import ITMLoss, itm_pairs, mine_hard_negatives
from gkmvlp_monai.models.losses.lm import LMLoss


def _itc(head: ITCHead, img: torch.Tensor, txt: torch.Tensor, keys: torch.Tensor | None = None) -> dict:
    """ITC head on normalised embeddings, then the parameter-free loss: the network's order."""
    out = head(F.normalize(img, dim=-1), F.normalize(txt, dim=-1), keys)
    return {**out, "loss": ITCLoss()(out["logits_i2t"], out["logits_t2i"], out["positives"])}


def test_itc_lower_for_matched_than_shuffled():
    torch.manual_seed(0)
    img = torch.randn(8, 16)
    txt = img + 0.1 * torch.randn(8, 16)
    head = ITCHead(16)
    matched = _itc(head, img, txt)["loss"]
    shuffled = _itc(head, img, txt[torch.roll(torch.arange(8), 1)])["loss"]
    assert matched < shuffled
    assert matched < 0.1


def test_itc_identical_reports_are_soft_positives():
    torch.manual_seed(0)
    img, txt = torch.randn(4, 8), torch.randn(4, 8)
    head = ITCHead(8, temperature=0.05)
    out = _itc(head, img, txt, torch.tensor([7, 7, 2, 3]))
    assert out["same"][0, 1] and out["same"][1, 0] and not out["same"][0, 2]
    target = torch.tensor([[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    logits = F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).t() / 0.05
    want = (
        -(target * logits.log_softmax(1)).sum(1).mean() - (target * logits.t().log_softmax(1)).sum(1).mean()
    ) / 2
    torch.testing.assert_close(out["loss"], want)
    distinct = _itc(head, img, txt, torch.tensor([0, 1, 2, 3]))["loss"]
    torch.testing.assert_close(distinct, _itc(head, img, txt)["loss"])  # no keys: diagonal targets
    assert not torch.isclose(distinct, out["loss"])


def test_itc_queue_adds_negatives_and_fills():
    torch.manual_seed(0)
    head = ITCHead(8, queue_size=5).train()
    img, txt = torch.randn(3, 8), torch.randn(3, 8)
    first = _itc(head, img, txt, torch.tensor([0, 1, 2]))["loss"]
    assert int(head.queue_len) == 3 and int(head.queue_ptr) == 3
    second = _itc(head, img, txt, torch.tensor([10, 11, 12]))["loss"]  # same embeddings, 3 extra negatives
    assert second > first
    assert int(head.queue_len) == 5 and int(head.queue_ptr) == 1  # wrapped around
    head.eval()
    ptr = int(head.queue_ptr)
    img2, txt2 = torch.randn(3, 8), torch.randn(3, 8)
    fresh = _itc(head, img2, txt2, torch.tensor([40, 41, 42]))["loss"]
    assert int(head.queue_ptr) == ptr  # no enqueue in eval
    # fresh keys: the 5 queued embeddings are plain negatives
    qi, qt = head.image_queue, head.text_queue
    li = F.normalize(img2, dim=-1) @ torch.cat((F.normalize(txt2, dim=-1), qt)).t() / 0.07
    lt = F.normalize(txt2, dim=-1) @ torch.cat((F.normalize(img2, dim=-1), qi)).t() / 0.07
    want = (F.cross_entropy(li, torch.arange(3)) + F.cross_entropy(lt, torch.arange(3))) / 2
    torch.testing.assert_close(fresh, want, rtol=1e-4, atol=1e-4)
    # a queued entry of the same report is a positive, not a negative
    assert not torch.isclose(_itc(head, img2, txt2, torch.tensor([10, 41, 42]))["loss"], fresh)


def test_itc_temperature_is_learned():
    img, txt = torch.randn(4, 8), torch.randn(4, 8)
    head = ITCHead(8)
    _itc(head, img, txt)["loss"].backward()
    assert head.log_temp.grad is not None and head.log_temp.grad != 0


def test_losses_hold_no_parameters_or_state():
    """Objectives are functions: nothing learned, nothing saved in a checkpoint."""
    losses = (ITCLoss(), ITMLoss(), LMLoss(), ECLSLoss([1.0, 2.0, 3.0]), GroundingLoss())
    for loss in losses:
        assert not list(loss.parameters()), type(loss).__name__
        assert not loss.state_dict(), type(loss).__name__


def test_report_keys_equal_only_for_equal_reports():
    ids = torch.tensor([[101, 5, 6, 102, 0], [101, 5, 6, 102, 0], [101, 6, 5, 102, 0], [101, 5, 6, 102, 9]])
    mask = torch.tensor([[1, 1, 1, 1, 0]] * 3 + [[1, 1, 1, 1, 0]])
    k = report_keys(ids, mask)
    assert k[0] == k[1] and k[0] != k[2]
    assert k[3] == k[0]  # padding content ignored


def test_itm_negatives_are_hardest_non_matching():
    sim = torch.tensor(
        [
            [9.0, 8.0, 1.0, 3.0],
            [2.0, 9.0, 0.5, 7.0],
            [4.0, 6.0, 9.0, 5.0],
            [0.0, 1.0, 2.0, 9.0],
        ]
    )
    same = torch.eye(4, dtype=torch.bool)
    same[0, 1] = same[1, 0] = True  # texts 0 and 1 identical
    mined = mine_hard_negatives(sim, same)
    # image i -> hardest text j with same[i, j] False
    assert mined["neg_text"].tolist() == [3, 3, 1, 2]
    # text j -> hardest image i with same[i, j] False (column-wise)
    assert mined["neg_image"].tolist() == [2, 2, 3, 1]
    assert mined["valid_text"].all() and mined["valid_image"].all()
    for i in range(4):
        assert not same[i, mined["neg_text"][i]]
        assert not same[mined["neg_image"][i], i]


def test_itm_no_candidate_when_all_reports_identical():
    mined = mine_hard_negatives(torch.randn(3, 3), torch.ones(3, 3, dtype=torch.bool))
    assert not mined["valid_text"].any() and not mined["valid_image"].any()


def test_itm_sampling_never_picks_a_match():
    g = torch.Generator().manual_seed(0)
    sim = torch.randn(5, 5)
    same = torch.eye(5, dtype=torch.bool)
    for _ in range(20):
        m = mine_hard_negatives(sim, same, sample=True, generator=g)
        assert (m["neg_text"] != torch.arange(5)).all() and (m["neg_image"] != torch.arange(5)).all()


def test_itm_pairs_are_positives_then_both_negative_directions():
    sim = torch.tensor([[5.0, 4.0, 1.0], [0.0, 5.0, 3.0], [2.0, 1.0, 5.0]])
    pairs = itm_pairs(sim, torch.eye(3, dtype=torch.bool))
    # positives (i, i); image i with its hardest text; hardest image of text j with text j
    assert pairs["image_index"].tolist() == [0, 1, 2, 0, 1, 2, 2, 0, 1]
    assert pairs["text_index"].tolist() == [0, 1, 2, 1, 2, 0, 0, 1, 2]
    assert pairs["labels"].tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 0]
    # a row without a non-matching candidate adds no negative
    none = itm_pairs(sim, torch.ones(3, 3, dtype=torch.bool))
    assert none["labels"].tolist() == [1, 1, 1]


def test_itm_loss_is_cross_entropy_of_the_head_logits():
    logits = torch.tensor([[0.2, 1.5], [2.0, -1.0], [0.3, 0.1]])
    labels = torch.tensor([1, 0, 0])
    torch.testing.assert_close(ITMLoss()(logits, labels), F.cross_entropy(logits, labels))


def test_lm_loss_uses_shifted_tokens_and_ignores_padding():
    ids = torch.tensor([[101, 7, 8, 102, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0]])
    v = 200
    logits = torch.full((1, 4, v), -20.0)
    for t, nxt in enumerate([7, 8, 102]):  # position t predicts ids[t + 1]
        logits[0, t, nxt] = 20.0
    logits[0, 3, 55] = 20.0  # prediction after EOS is padding: ignored
    assert LMLoss(label_smoothing=0.0)(logits, ids, mask) < 1e-6
    unshifted = torch.full((1, 4, v), -20.0)
    for t, tok in enumerate([101, 7, 8, 102]):
        unshifted[0, t, tok] = 20.0
    assert LMLoss(label_smoothing=0.0)(unshifted, ids, mask) > 10
    smoothed = LMLoss(label_smoothing=0.1)(logits, ids, mask)
    assert smoothed > 0.1  # smoothing penalises over-confidence


def test_ecls_ignores_unmentioned_entities():
    loss = ECLSLoss()
    logits = torch.randn(2, 4, 3, requires_grad=True)
    state = torch.tensor([[1, -1, 0, -1], [-1, 2, -1, -1]])
    value = loss(logits, state)
    want = F.cross_entropy(torch.stack([logits[0, 0], logits[0, 2], logits[1, 1]]), torch.tensor([1, 0, 2]))
    torch.testing.assert_close(value, want)
    value.backward()
    assert torch.all(logits.grad[state == -1] == 0)
    assert torch.all(logits.grad[state >= 0].abs().sum(-1) > 0)


def test_ecls_all_unmentioned_is_zero_with_graph():
    logits = torch.randn(2, 3, 3, requires_grad=True)
    value = ECLSLoss()(logits, torch.full((2, 3), -1))
    assert value.item() == 0.0 and value.requires_grad


def test_grounding_rewards_attention_inside_grounded_boxes():
    boxes = torch.tensor([[[0.0, 0.0, 32.0, 32.0], [32.0, 32.0, 64.0, 64.0]]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    regions = torch.tensor([[[True, False], [False, True]]])
    state = torch.tensor([[1, 1]])
    inside = torch.zeros(1, 2, 4, 4)
    inside[0, 0, :2, :2] = 0.25
    inside[0, 1, 2:, 2:] = 0.25
    outside = inside.flip(1)  # each entity looks at the other's box
    loss = GroundingLoss()
    assert loss(inside, state, regions, boxes, mask, 64) < 1e-4
    assert loss(outside, state, regions, boxes, mask, 64) > 5
    # absent entities and invalid regions do not count
    assert loss(outside, torch.tensor([[0, 2]]), regions, boxes, mask, 64).item() == 0.0
    assert loss(outside, state, regions, boxes, torch.zeros(1, 2, dtype=torch.bool), 64).item() == 0.0
