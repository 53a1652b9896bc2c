"""The GK-MVLP network end to end on tiny sizes: shapes, gradients, ablation switches, decoding, export."""

from __future__ import annotations

import pytest
import torch

from gkmvlp_monai.models.decoder import ReportDecoder, apply_repetition_penalty
from gkmvlp_monai.models.gk import GKModule
from gkmvlp_monai.models.gkmvlp import GKMVLPEntityPredictor, build_gkmvlp

DESCS = [
    "pleural effusion: fluid collecting in the pleural space, blunting the costophrenic angle",
    "cardiomegaly: enlarged cardiac silhouette",
    "pneumothorax: air in the pleural space with a visible pleural line",
]
S = 64
R = 29


def _batch(model, b: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(b, R, 2, generator=g) * (S / 2)
    wh = 8 + torch.rand(b, R, 2, generator=g) * (S / 2 - 8)
    boxes = torch.cat((xy, xy + wh), -1)
    mask = torch.ones(b, R, dtype=torch.bool)
    mask[0, 5] = False
    regions = torch.zeros(b, len(DESCS), R, dtype=torch.bool)
    regions[:, 0, 3] = True
    regions[1, 1, 7] = True
    state = torch.tensor([[1, 0, -1], [1, 1, 2], [0, -1, -1], [1, 2, 0]])[:b]
    tok = model.tokenize(
        ["small left effusion", "big heart and effusion", "normal chest", "normal chest"][:b]
    )
    return dict(
        image=torch.rand(b, 1, S, S, generator=g),
        region_boxes=boxes,
        region_mask=mask,
        entity_state=state,
        entity_regions=regions,
        **tok,
    )


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_gkmvlp("tiny", DESCS, image_size=S)


def test_forward_outputs_and_losses(model):
    model.train()
    out = model(_batch(model))
    for name in ("itc", "itm", "lm", "ecls", "grounding"):
        assert torch.isfinite(out[f"loss_{name}"]), name
    want = sum(model.weights[n] * out[f"loss_{n}"] for n in ("itc", "itm", "lm", "ecls", "grounding"))
    torch.testing.assert_close(out["loss"], want)
    assert out["ecls_probs"].shape == (4, 3, 3)
    assert out["patch_attn"].shape == (4, 3, 2, 2)
    assert out["image_embed"].shape == out["text_embed"].shape == (4, 32)
    assert out["sim_i2t"].shape == (4, 4)


GROUPS = {
    "itc": ["image_encoder", "text_encoder", "image_proj", "text_proj", "itc_head"],
    "itm": ["image_encoder", "text_encoder", "fusion", "itm_head", "gk", "region_pool", "knowledge"],
    "lm": ["image_encoder", "decoder", "gk", "region_pool", "knowledge"],
    "ecls": ["image_encoder", "gk", "region_pool", "knowledge", "ecls_head"],
    "grounding": ["image_encoder", "gk"],
}


@pytest.mark.parametrize("objective", sorted(GROUPS))
def test_each_objective_reaches_its_parameter_groups(model, objective):
    model.train()
    model.zero_grad(set_to_none=True)
    out = model(_batch(model))
    out[f"loss_{objective}"].backward()
    for group in GROUPS[objective]:
        grads = [
            p.grad for n, p in model.named_parameters() if n.startswith(group + ".") and p.grad is not None
        ]
        assert grads and any(g.abs().sum() > 0 for g in grads), f"{objective} does not reach {group}"
    if objective == "itc":
        assert all(p.grad is None for p in model.decoder.parameters())


def test_total_loss_reaches_every_parameter(model):
    model.train()
    model.zero_grad(set_to_none=True)
    model(_batch(model))["loss"].backward()
    missing = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and p.grad is None and not n.startswith("text_encoder.model.pooler")
    ]
    assert not missing


def test_weight_zero_switches_objectives_off():
    torch.manual_seed(0)
    m = build_gkmvlp(
        "tiny", DESCS, image_size=S, weight_itc=0.0, weight_itm=0.0, weight_lm=0.0, weight_grounding=0.0
    )
    assert m.fusion is None and m.decoder is None and m.itm_head is None
    calls = []
    m.text_encoder.register_forward_hook(lambda *a: calls.append(1))
    out = m(_batch(m))
    assert set(k for k in out if k.startswith("loss_")) == {"loss_ecls"}
    assert not calls  # the text encoder never ran for reports
    torch.testing.assert_close(out["loss"], out["loss_ecls"])
    with pytest.raises(RuntimeError, match="weight_lm=0"):
        m.generate(torch.rand(1, 1, S, S), torch.zeros(1, R, 4), torch.zeros(1, R, dtype=torch.bool))
    # ITM without ITC still mines from projected similarities
    m2 = build_gkmvlp("tiny", DESCS, image_size=S, weight_itc=0.0, weight_lm=0.0)
    out2 = m2(_batch(m2))
    assert "loss_itc" not in out2 and torch.isfinite(out2["loss_itm"])


def test_missing_inputs_skip_objectives(model):
    batch = _batch(model)
    image_only = {k: batch[k] for k in ("image", "region_boxes", "region_mask", "entity_state")}
    out = model(image_only)
    assert set(k for k in out if k.startswith("loss_")) == {"loss_ecls"}


def test_inference_methods(model):
    model.eval()
    batch = _batch(model, 2)
    with torch.no_grad():
        probs, attn = model.entity_scores(batch["image"], batch["region_boxes"], batch["region_mask"])
        img = model.encode_image(batch["image"])
        txt = model.encode_text(batch["input_ids"], batch["attention_mask"])
        itm = model.itm_score(
            batch["image"],
            batch["region_boxes"],
            batch["region_mask"],
            batch["input_ids"],
            batch["attention_mask"],
        )
    assert probs.shape == (2, 3, 3) and attn.shape == (2, 3, 2, 2)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 3))
    torch.testing.assert_close(attn.sum((-2, -1)), torch.ones(2, 3))
    torch.testing.assert_close(img.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(txt.norm(dim=-1), torch.ones(2))
    assert itm.shape == (2,) and ((itm >= 0) & (itm <= 1)).all()
    texts = model.generate(
        batch["image"], batch["region_boxes"], batch["region_mask"], max_length=6, num_beams=2
    )
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def test_gk_report_prompts_restrict_region_attention():
    torch.manual_seed(0)
    gk = GKModule(dim=16, visual_channels=8, num_entities=3, num_layers=1, num_heads=2).eval()
    tokens = torch.randn(2, 5, 16)
    valid = torch.ones(2, 5, dtype=torch.bool)
    valid[:, 4] = False
    grounded = torch.zeros(2, 3, 5, dtype=torch.bool)
    grounded[:, 0, 1] = True  # entity 0 grounded to region 1; entities 1, 2 not grounded
    grounded[:, 1, 4] = True  # grounded only to an absent region -> falls back to all valid regions
    out = gk(torch.randn(3, 16), tokens, valid, torch.randn(2, 8, 2, 2), torch.randn(2, 8), grounded)
    ra = out["region_attn"]
    assert torch.all(ra[:, 0, [0, 2, 3, 4]] == 0) and torch.all(ra[:, 0, 1] > 0)
    assert torch.all(ra[:, 1:, :4] > 0) and torch.all(ra[:, :, 4] == 0)
    free = gk(torch.randn(3, 16), tokens, valid, torch.randn(2, 8, 2, 2), torch.randn(2, 8))
    assert torch.all(free["region_attn"][..., :4] > 0) and torch.all(free["region_attn"][..., 4] == 0)


def _decoder(eos_bias: float) -> ReportDecoder:
    torch.manual_seed(3)
    dec = ReportDecoder(
        vocab_size=50,
        dim=16,
        memory_dim=8,
        num_layers=1,
        num_heads=2,
        max_length=16,
        bos_id=1,
        eos_id=2,
        pad_id=0,
    )
    with torch.no_grad():
        dec.out_bias[2] = eos_bias
    return dec.eval()


@pytest.mark.parametrize(("eos_bias", "penalty"), [(0.0, 1.0), (0.0, 1.8), (2.5, 1.0), (2.5, 1.3)])
def test_beam_search_with_one_beam_equals_greedy(eos_bias, penalty):
    dec = _decoder(eos_bias)
    memory = torch.randn(5, 4, 8, generator=torch.Generator().manual_seed(1))
    greedy = dec.generate(memory, max_length=10, num_beams=1, repetition_penalty=penalty)
    beam = dec._beam(memory, 10, 1, penalty, 1, 1.0)
    width = max(greedy.shape[1], beam.shape[1])
    pad = lambda t: torch.nn.functional.pad(t, (0, width - t.shape[1]))  # noqa: E731
    assert torch.equal(pad(greedy), pad(beam))
    if eos_bias > 0:
        assert (greedy == 2).any()  # some sequences really ended


def test_beam_search_finds_higher_likelihood_than_greedy():
    dec = _decoder(1.5)
    memory = torch.randn(6, 4, 8, generator=torch.Generator().manual_seed(2))

    def logprob(ids: torch.Tensor) -> torch.Tensor:
        seq = torch.cat((torch.ones(ids.shape[0], 1, dtype=torch.long), ids), 1)
        with torch.no_grad():
            lp = dec(seq[:, :-1], memory).log_softmax(-1).gather(2, seq[:, 1:, None]).squeeze(2)
        keep = torch.ones_like(ids, dtype=torch.bool)
        keep[:, 1:] = ids[:, :-1] != 2  # up to and including EOS
        keep &= ids != 0
        return (lp * keep).sum(1)

    greedy = dec.generate(memory, max_length=6, num_beams=1)
    beam = dec.generate(memory, max_length=6, num_beams=4, length_penalty=0.0)
    assert torch.all(logprob(beam) >= logprob(greedy) - 1e-5)


def test_decoder_is_causal():
    dec = _decoder(0.0)
    ids = torch.randint(3, 50, (2, 6))
    mem = torch.randn(2, 4, 8)
    a = dec(ids, mem)
    ids2 = ids.clone()
    ids2[:, 4:] = 7
    b = dec(ids2, mem)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_repetition_penalty():
    logits = torch.tensor([[2.0, -1.0, 3.0, 0.5]])
    out = apply_repetition_penalty(logits, torch.tensor([[0, 1]]), 2.0)
    assert out.tolist() == [[1.0, -2.0, 3.0, 0.5]]


def test_entity_predictor_wrapper_traces(model):
    model.eval()
    boxes = torch.tensor([[0.0, 0.0, 32.0, 32.0]]).repeat(R, 1)
    boxes[1] = torch.tensor([10.0, 20.0, 60.0, 64.0])
    pred_net = GKMVLPEntityPredictor(model, boxes, image_size=S).eval()
    x = torch.rand(2, 1, S, S)
    with torch.no_grad():
        pred = pred_net(x)
        probs, _ = model.entity_scores(x, boxes.expand(2, -1, -1), torch.ones(2, R, dtype=torch.bool))
        traced = torch.jit.trace(pred_net, torch.rand(1, 1, S, S), check_trace=False)
        again = traced(x)
    assert pred.shape == (2, len(DESCS)) and ((pred >= 0) & (pred <= 1)).all()
    torch.testing.assert_close(pred, probs[..., 1])
    torch.testing.assert_close(again, pred)


def test_vit_option_and_sizes():
    torch.manual_seed(0)
    m = build_gkmvlp("tiny", DESCS, image_arch="vit_tiny", image_size=S, weight_itm=0.0, weight_lm=0.0)
    out = m(_batch(m, 2))
    assert out["patch_attn"].shape == (2, 3, 4, 4)
    with pytest.raises(ValueError, match="unknown size"):
        build_gkmvlp("huge", DESCS)
    with pytest.raises(ValueError, match="entity_descriptions"):
        build_gkmvlp("tiny", [])
