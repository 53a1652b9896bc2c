"""Report generation engine: data path, generation controls, writer and the traceable export wrapper."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from gkmvlp_monai.models.decoder import ReportDecoder
from gkmvlp_monai.tasks.report_generation.engine import (
    ReportGenerationInferer,
    evaluation_items,
    generated_and_references,
    training_items,
)
from gkmvlp_monai.tasks.report_generation.model import GKMVLPReportGenerator
from gkmvlp_monai.tasks.report_generation.predictions import GeneratedReportsWriter

S, R = 64, 29


@pytest.fixture(scope="module")
def lm_model():
    from gkmvlp_monai.core.vocab import entities
    from gkmvlp_monai.models.gkmvlp import build_gkmvlp

    torch.manual_seed(0)
    net = build_gkmvlp(
        size="tiny",
        image_size=S,
        entity_descriptions=[e.description for e in entities()],
        weight_itc=0.0,
        weight_itm=0.0,
        weight_ecls=0.0,
        weight_grounding=0.0,
    )
    return net.eval()


def _datalist(tmp_path: Path, n_train: int = 20, extra: dict | None = None) -> Path:
    items = [{"image": f"img/{i}.png", "report": f"report {i}", "subject_id": f"s{i}"} for i in range(30)]
    doc = {"name": "t", "training": items[:n_train], "validation": items[n_train:25], "test": items[25:]}
    doc.update(extra or {})
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps(doc))
    return path


def test_training_fraction_subset_is_nested_seeded_and_named(tmp_path):
    path = _datalist(tmp_path)
    full = training_items(str(path))
    tenth = training_items(str(path), 0.1, seed=0)
    half = training_items(str(path), 0.5, seed=0)
    assert len(full) == 20 and 0 < len(tenth) < len(half) < 20
    assert {i["image_id"] for i in tenth} <= {i["image_id"] for i in half}  # nested
    assert [i["image_id"] for i in tenth] == [i["image_id"] for i in training_items(str(path), 0.1, seed=0)]
    assert tenth[0]["image_path"] == tenth[0]["image"] and Path(tenth[0]["image"]).is_absolute()
    # a fraction key written by the adapter wins over the computed subset
    path = _datalist(tmp_path, extra={"training_10pct": [{"image": "img/x.png", "report": "r"}]})
    assert [i["image_id"] for i in training_items(str(path), 0.1)] == ["x"]
    with pytest.raises(ValueError, match="fraction"):
        training_items(str(path), -0.5)
    assert len(evaluation_items(str(path), "test", max_items=2)) == 2


def _batch(n: int = 2) -> dict:
    torch.manual_seed(1)
    boxes = torch.tensor([[4.0, 4.0, 40.0, 40.0]]).repeat(n, R, 1)
    return {
        "image": torch.rand(n, 1, S, S),
        "region_boxes": boxes,
        "region_mask": torch.ones(n, R, dtype=torch.bool),
        "report": ["the heart is normal", "small effusion"][:n],
        "image_id": ["a", "b"][:n],
    }


def test_inferer_returns_texts_ids_and_loss(lm_model):
    batch = _batch()
    batch.update(lm_model.tokenize(batch["report"]))
    out = ReportGenerationInferer(max_length=6, compute_loss=True)(batch, lm_model)
    assert len(out["generated"]) == 2 and all(isinstance(t, str) for t in out["generated"])
    assert out["generated_ids"].shape[0] == 2 and out["generated_ids"].shape[1] <= 6
    assert out["report"] == batch["report"] and out["image_id"] == ["a", "b"]
    assert out["loss_lm"].ndim == 0 and torch.isfinite(out["loss_lm"])
    assert generated_and_references({"pred": out}) == (out["generated"], out["report"])
    assert generated_and_references({"pred": None}) is None
    # beam search with one beam is greedy decoding
    one = ReportGenerationInferer(max_length=6, num_beams=1)(batch, lm_model)["generated_ids"]
    assert torch.equal(one, out["generated_ids"])


def test_inferer_rejects_bad_settings():
    with pytest.raises(ValueError, match="num_beams"):
        ReportGenerationInferer(num_beams=0)
    with pytest.raises(ValueError, match="repetition_penalty"):
        ReportGenerationInferer(repetition_penalty=0.0)


def _loop_decoder() -> ReportDecoder:
    """A decoder that, unpenalised, wants to repeat token 7 and to end (EOS=102) at once."""
    torch.manual_seed(0)
    dec = ReportDecoder(vocab_size=200, dim=16, memory_dim=16, num_layers=1, num_heads=2, max_length=16)
    with torch.no_grad():
        dec.out_bias.zero_()
        dec.out_bias[7] = 6.0
        dec.out_bias[8] = 5.0
        dec.out_bias[102] = 7.0
    return dec.eval()


def test_min_length_blocks_eos_and_max_length_caps():
    dec = _loop_decoder()
    memory = torch.zeros(1, 3, 16)
    ids = dec.generate(memory, max_length=10, min_length=1)
    assert ids[0, 0].item() == 7  # EOS blocked at the first step: the next best token
    free = dec.generate(memory, max_length=10, min_length=0)
    assert free[0, 0].item() == 102  # EOS first when nothing blocks it
    held = dec.generate(memory, max_length=10, min_length=4)
    assert held[0, :4].tolist() == [7, 7, 7, 7] and held[0, 4].item() == 102  # EOS as soon as allowed
    assert dec.generate(memory, max_length=3, min_length=10).shape[1] == 3  # max_length wins
    assert dec.generate(memory, max_length=100).shape[1] <= 15  # position table minus BOS


def test_repetition_penalty_breaks_loops():
    dec = _loop_decoder()
    memory = torch.zeros(1, 3, 16)
    plain = dec.generate(memory, max_length=8, min_length=8)[0].tolist()
    assert plain.count(7) >= 6  # the loop
    penalised = dec.generate(memory, max_length=8, min_length=8, repetition_penalty=3.0)[0].tolist()
    assert penalised.count(7) < plain.count(7) and len(set(penalised)) > len(set(plain))


def test_length_penalty_changes_the_beam_ranking():
    torch.manual_seed(3)
    dec = ReportDecoder(
        vocab_size=200, dim=16, memory_dim=16, num_layers=1, num_heads=2, max_length=16
    ).eval()
    with torch.no_grad():
        dec.out_bias[102] = 2.5
    memory = torch.randn(2, 3, 16)
    short = dec.generate(memory, max_length=10, num_beams=4, length_penalty=-2.0)
    long = dec.generate(memory, max_length=10, num_beams=4, length_penalty=3.0)

    def length(ids):
        return [(row != dec.pad_id).sum().item() for row in ids]

    assert sum(length(long)) >= sum(length(short))
    assert not torch.equal(short, long) or length(short) == length(long)


def test_writer_writes_json_and_csv(tmp_path):
    from ignite.engine import Engine

    pred = {"generated": ["g1", "g2"], "report": ["r1", "r2"], "image_id": ["a", "b"]}
    engine = Engine(lambda e, b: {"pred": pred})
    GeneratedReportsWriter(str(tmp_path / "out")).attach(engine)
    engine.run([{"image_path": ["/x/a.dcm", "/x/b.dcm"]}], max_epochs=1)
    rows = json.loads((tmp_path / "out" / "generated_reports.json").read_text())
    assert rows == [
        {"image_id": "a", "image": "/x/a.dcm", "generated": "g1", "reference": "r1"},
        {"image_id": "b", "image": "/x/b.dcm", "generated": "g2", "reference": "r2"},
    ]
    with (tmp_path / "out" / "generated_reports.csv").open() as f:
        assert list(csv.DictReader(f))[1]["generated"] == "g2"


def test_export_wrapper_traces_to_greedy_ids_and_keeps_checkpoint_keys(lm_model):
    gen = GKMVLPReportGenerator(lm_model, image_size=S, max_length=6).eval()
    assert set(gen.state_dict()) == set(lm_model.state_dict())
    x = torch.rand(2, 1, S, S)
    with torch.no_grad():
        ids = gen(x)
        traced = torch.jit.trace(gen, torch.rand(1, 1, S, S), check_trace=False)
        assert torch.equal(traced(x), ids)  # traced on another input and batch size
    assert ids.shape == (2, 6) and ids.dtype == torch.int64
    ref = lm_model.generate_ids(x, gen.region_boxes.expand(2, -1, -1), torch.ones(2, R, dtype=torch.bool), 6)
    assert torch.equal(ref, ids[:, : ref.shape[1]])
    with pytest.raises(ValueError, match="max_length"):
        GKMVLPReportGenerator(lm_model, image_size=S, max_length=lm_model.decoder.max_length)
