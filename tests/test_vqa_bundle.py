"""The gkmvlp_vqa bundle: model-zoo checks and an end-to-end run on tiny settings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_helpers import REPO, SCHEMA, bundle_cmd, overrides
from PIL import Image

BUNDLE = REPO / "bundles" / "gkmvlp_vqa"
TINY = dict(
    model_size="tiny",
    image_size=64,
    num_workers=0,
    cache="memory",
    batch_size=4,
    val_batch_size=8,
    mlflow=False,
)


@pytest.fixture(scope="module")
def vqa_datalist(tmp_path_factory) -> str:
    """iu-synth-style datalist: random 48x40 PNGs with region boxes and image-level qa lists (6 / 2 / 2)."""
    from gkmvlp_monai.knowledge.vocab import region_names

    tmp = tmp_path_factory.mktemp("vqa_data")
    rng = np.random.default_rng(0)
    boxes = {r: [4.0, 4.0, 30.0, 30.0] for r in region_names()[:5]}
    doc = {"name": "tiny-vqa", "label_names": [], "label_type": "multilabel"}
    for split, n in (("training", 6), ("validation", 2), ("test", 2)):
        items = []
        for i in range(n):
            f = tmp / f"{split}_{i}.png"
            Image.fromarray(rng.integers(0, 255, (40, 48), dtype=np.uint8)).save(f)
            qa = [
                {
                    "question": "Is there cardiomegaly?",
                    "answer": "yes" if i % 2 else "no",
                    "answer_type": "CLOSED",
                },
                {
                    "question": "Where is the nodule?",
                    "answer": ["right lung", "left lung"][i % 2],
                    "answer_type": "OPEN",
                },
            ]
            items.append({"image": f.name, "region_boxes": boxes, "qa": qa})
        doc[split] = items
    path = tmp / "datalist.json"
    path.write_text(json.dumps(doc))
    return str(path)


def _args(tmp: Path, datalist: str, **kw: object) -> list[str]:
    return overrides(
        **{
            **TINY,
            "datalist_file": datalist,
            "ckpt_dir": str(tmp / "models"),
            "output_dir": str(tmp / "eval"),
            "max_epochs": 2,
            "ckpt_interval": 2,
            **kw,
        }
    )


@pytest.mark.slow
def test_metadata_is_valid_against_the_schema_on_disk():
    bundle_cmd(
        "gkmvlp_vqa", ["verify_metadata", "--meta_file", "configs/metadata.json", "--filepath", str(SCHEMA)]
    )
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    assert meta["version"] in meta["changelog"]
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == 13


@pytest.mark.slow
def test_verify_net_in_out(vqa_datalist):
    bundle_cmd(
        "gkmvlp_vqa",
        [
            "verify_net_in_out",
            "export_net",
            "--meta_file",
            "configs/metadata.json",
            "--config_file",
            "configs/train.json",
            "--device",
            "cpu",
            "--_meta_#network_data_format#inputs#image#spatial_shape",
            "[64, 64]",
            *overrides(model_size="tiny", image_size=64, datalist_file=vqa_datalist),
        ],
    )


@pytest.mark.slow
def test_config_properties(tmp_path, vqa_datalist):
    from monai.bundle import ConfigWorkflow

    from gkmvlp_monai.data.vqa import AnswerVocab

    (tmp_path / "models").mkdir()
    AnswerVocab(["right lung", "left lung"]).save(tmp_path / "models" / "answers.json")
    settings = {
        **TINY,
        "datalist_file": vqa_datalist,
        "ckpt_dir": str(tmp_path / "models"),
        "output_dir": str(tmp_path / "eval"),
        "pretrained_ckpt": None,
    }
    cwd = os.getcwd()
    os.chdir(BUNDLE)
    try:
        for configs, kind in (("configs/train.json", "train"), ("configs/inference.json", "infer")):
            keep = (
                settings
                if kind == "train"
                else {
                    k: settings[k]
                    for k in ("model_size", "image_size", "datalist_file", "output_dir", "ckpt_dir")
                }
            )
            wf = ConfigWorkflow(
                config_file=configs,
                meta_file="configs/metadata.json",
                logging_file="configs/logging.conf",
                workflow_type=kind,
                **keep,
            )
            wf.initialize()
            assert wf.check_properties() == [], configs
    finally:
        os.chdir(cwd)


@pytest.mark.slow
def test_train_resume_evaluate_infer_export(tmp_path, vqa_datalist):
    from gkmvlp_monai.knowledge import vocab
    from gkmvlp_monai.networks import build_gkmvlp

    pre = build_gkmvlp("tiny", [e.description for e in vocab.entities()], image_size=64)
    ckpt = tmp_path / "pretrained.pt"
    torch.save(pre.state_dict(), ckpt)
    args = _args(tmp_path, vqa_datalist, pretrained_ckpt=str(ckpt))
    out = bundle_cmd("gkmvlp_vqa", ["run", "--config_file", "configs/train.json", *args, "--max_epochs", "1"])
    assert "loaded" in out and "overall_acc" in out
    out = bundle_cmd("gkmvlp_vqa", ["run", "--config_file", "configs/train.json", *args, "--resume", "True"])
    assert "epoch 1 until 2 epochs" in out
    models = tmp_path / "models"
    for name in ("model.pt", "best_checkpoint.pt", "checkpoint_final.pt", "answers.json"):
        assert (models / name).is_file(), name
    answers = json.loads((models / "answers.json").read_text())["answers"]
    assert answers == ["yes", "no", "left lung", "right lung"]  # equal counts: alphabetical

    bundle_cmd(
        "gkmvlp_vqa", ["run", "--config_file", "['configs/train.json','configs/evaluate.json']", *args]
    )
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["answer_coverage"] == 1.0
    for key in ("closed_acc", "open_acc", "overall_acc", "hybrid_open_acc", "hybrid_overall_acc"):
        assert 0.0 <= metrics["metrics"][key] <= 1.0, key
    preds = json.loads((tmp_path / "eval" / "predictions.json").read_text())
    assert len(preds) == 4 and {p["answer_type"] for p in preds} == {"CLOSED", "OPEN"}

    infer = overrides(
        model_size="tiny",
        image_size=64,
        num_workers=0,
        datalist_file=vqa_datalist,
        ckpt_dir=str(models),
        output_dir=str(tmp_path / "infer"),
    )
    bundle_cmd("gkmvlp_vqa", ["run", "--config_file", "configs/inference.json", *infer])
    assert len(json.loads((tmp_path / "infer" / "predictions.json").read_text())) == 4

    ts = tmp_path / "model.ts"
    bundle_cmd(
        "gkmvlp_vqa",
        [
            "ckpt_export",
            "export_net",
            "--filepath",
            str(ts),
            "--ckpt_file",
            str(models / "model.pt"),
            "--meta_file",
            "configs/metadata.json",
            "--config_file",
            "configs/train.json",
            "--use_trace",
            "True",
            "--input_shape",
            "[1, 1, 64, 64]",
            "--converter_kwargs",
            "{'check_trace': False}",
            *overrides(model_size="tiny", image_size=64, datalist_file=vqa_datalist, ckpt_dir=str(models)),
        ],
    )
    net = torch.jit.load(str(ts))
    p = net(torch.rand(2, 1, 64, 64))
    assert p.shape == (2, 13) and ((p >= 0) & (p <= 1)).all()


def test_val_max_items_limits_training_validation_not_evaluation(vqa_datalist):
    """``val_max_items`` trims the validation during training; ``evaluate.json`` scores the whole split."""
    from monai.bundle import ConfigParser

    for files, split, n in (
        (["train.json"], "validation", 3),
        (["train.json", "evaluate.json"], "test", 4),  # 2 pictures x 2 questions, untrimmed
    ):
        parser = ConfigParser()
        parser.read_config([str(BUNDLE / "configs" / f) for f in files])
        parser.update({"datalist_file": vqa_datalist, "val_max_items": 3})
        items = parser.get_parsed_content("validate#items")
        assert parser.get_parsed_content("validate#split") == split
        assert len(items) == n
    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "train.json"))
    parser.update({"datalist_file": vqa_datalist})
    assert len(parser.get_parsed_content("validate#items")) == 4  # default null: the whole split
