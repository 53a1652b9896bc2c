"""Training-step efficiency: the optimised GK-MVLP forward equals the plain computation, and the
``bench/train_step.py`` benchmark runs end to end on tiny settings."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gkmvlp_monai.models.gkmvlp import build_gkmvlp, trim_padding
from gkmvlp_monai.models.losses.itc import report_keys
from gkmvlp_monai.models.losses.itm import itm_pairs

DESCS = [
    "pleural effusion: fluid collecting in the pleural space",
    "cardiomegaly: enlarged cardiac silhouette",
    "pneumothorax: air in the pleural space",
]
S, R = 64, 29
ROOT = Path(__file__).resolve().parents[1]


def _batch(model, b: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(b, R, 2, generator=g) * (S / 2)
    boxes = torch.cat((xy, xy + 8 + torch.rand(b, R, 2, generator=g) * 20), -1)
    regions = torch.zeros(b, len(DESCS), R, dtype=torch.bool)
    regions[:, 0, 3] = True
    tok = model.tokenize(["small left effusion", "big heart and a small effusion", "normal", "normal"][:b])
    return dict(
        image=torch.rand(b, 1, S, S, generator=g),
        region_boxes=boxes,
        region_mask=torch.ones(b, R, dtype=torch.bool),
        entity_state=torch.tensor([[1, 0, -1], [1, 1, 2], [0, -1, -1], [1, 2, 0]])[:b],
        entity_regions=regions,
        **tok,
    )


def test_trim_padding_hand_example():
    ids = torch.tensor([[101, 7, 102, 0, 0, 0], [101, 102, 0, 0, 0, 0]])
    mask = (ids != 0).long()
    t_ids, t_mask = trim_padding(ids, mask)
    assert t_ids.tolist() == [[101, 7, 102], [101, 102, 0]]
    assert t_mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    full = torch.ones(2, 4, dtype=torch.long)
    assert trim_padding(full, full)[0] is full  # nothing to trim: same tensor
    assert trim_padding(ids, torch.zeros_like(ids))[0].shape == (2, 1)  # all padding keeps one column
    torch.testing.assert_close(report_keys(t_ids, t_mask), report_keys(ids, mask))


def test_optimised_forward_equals_plain_computation():
    """Trimmed text, logits only at real targets: every loss equals the untrimmed, all-position one."""
    torch.manual_seed(0)
    model = build_gkmvlp("tiny", DESCS, image_size=S).eval()  # eval: no dropout, hardest negatives
    batch = _batch(model)
    assert batch["input_ids"].shape[1] == model.max_text_length
    assert not batch["attention_mask"][:, -1].any()  # there is padding to trim
    with torch.no_grad():
        out = model(batch)
        ids, mask = batch["input_ids"], batch["attention_mask"]
        vis = model.visual_features(batch["image"], batch["region_boxes"], batch["region_mask"])
        tokens, pooled = model.text_encoder(ids, mask)
        img = F.normalize(model.image_proj(vis["global"]), dim=-1)
        itc = model.itc_head(img, F.normalize(model.text_proj(pooled), dim=-1), report_keys(ids, mask))
        itc_loss = model.itc_loss(itc["logits_i2t"], itc["logits_t2i"], itc["positives"])
        pairs = itm_pairs(itc["sim_i2t"], itc["same"])
        t, i = pairs["text_index"], pairs["image_index"]
        itm_logits = model.itm_head(model.fusion(tokens[t], mask[t], vis["memory"][i]))
        itm_loss = model.itm_loss(itm_logits, pairs["labels"])
        lm = model.lm_loss(model.decoder(ids[:, :-1], vis["memory"], mask[:, :-1]), ids, mask)
    torch.testing.assert_close(out["loss_itc"], itc_loss, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["loss_itm"], itm_loss, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["loss_lm"], lm, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["sim_i2t"], itc["sim_i2t"], atol=1e-5, rtol=1e-5)


def test_encoders_only_training_skips_gk_but_evaluation_keeps_it():
    torch.manual_seed(0)
    model = build_gkmvlp(
        "tiny", DESCS, image_size=S, weight_itm=0.0, weight_lm=0.0, weight_ecls=0.0, weight_grounding=0.0
    )
    calls = []
    model.gk.register_forward_hook(lambda *a: calls.append(1))
    batch = _batch(model)
    out = model.train()(batch)
    assert not calls and "ecls_probs" not in out
    assert set(k for k in out if k.startswith("loss_")) == {"loss_itc"}
    out_eval = model.eval()(batch)
    assert calls and out_eval["ecls_probs"].shape == (4, 3, 3)


def _load_bench():
    spec = importlib.util.spec_from_file_location("train_step_bench", ROOT / "bench" / "train_step.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow  # two tiny networks, a real data pipeline and a profiled step: ~30 s idle, minutes shared
def test_bench_runs_and_prints_every_row(tmp_path, capsys, iu_synth_tiny):
    bench = _load_bench()
    out_json = tmp_path / "r.json"
    args = ["--device", "cpu", "--batch-size", "2", "--image-size", "64", "--size", "tiny"]
    args += ["--warmup", "1", "--steps", "1", "--num-workers", "0", "--json", str(out_json)]
    args += ["--datalist", iu_synth_tiny]  # built in the session's tmp folder, not a fixed path
    res = bench.main(args)
    text = capsys.readouterr().out
    full = res["configs"]["full"]
    for stage in (*bench.STAGES, bench.FWD_OTHER, "backward other", *bench.OUTSIDE):
        assert stage in [r["stage"] for r in full["rows"]], stage
        assert stage in text, stage
    enc_stages = {r["stage"] for r in res["configs"]["encoders"]["rows"] if r["forward_s"] > 0}
    assert {"image encoder", "text encoder"} <= enc_stages
    assert not enc_stages & {"GK module", "ITM fusion + head", "LM decoder + loss"}
    assert full["gflop_per_step"] > res["configs"]["encoders"]["gflop_per_step"] > 0
    assert 0 < full["fraction_of_matmul"] < 1.5
    assert full["cpu_peak_rss_mib"] > 0
    for key in ("full_vs_encoders_flops_ratio", "outside_fraction"):
        assert key in res["targets"] and key in json.loads(out_json.read_text())["targets"]
    assert "targets:" in text
