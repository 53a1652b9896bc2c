"""The gkmvlp_vqa bundle: model-zoo checks and an end-to-end run on tiny settings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from bundle_helpers import REPO, SCHEMA, bundle_cmd, overrides

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
            "['configs/base.json','configs/train.json']",
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

    from gkmvlp_monai.tasks.vqa.data import AnswerVocab

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
        for configs, kind in (
            (["configs/base.json", "configs/train.json"], "train"),
            ("configs/inference.json", "infer"),
        ):
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


def test_val_max_items_limits_training_validation_not_evaluation(vqa_datalist):
    """``val_max_items`` trims the validation during training; ``evaluate.json`` scores the whole split."""
    from monai.bundle import ConfigParser

    for files, split, n in (
        (["base.json", "train.json"], "validation", 3),
        (["base.json", "train.json", "evaluate.json"], "test", 4),  # 2 pictures x 2 questions, untrimmed
    ):
        parser = ConfigParser()
        parser.read_config([str(BUNDLE / "configs" / f) for f in files])
        parser.update({"datalist_file": vqa_datalist, "val_max_items": 3})
        items = parser.get_parsed_content("validate#items")
        assert parser.get_parsed_content("validate#split") == split
        assert len(items) == n
    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / "base.json"), str(BUNDLE / "configs" / "train.json")])
    parser.update({"datalist_file": vqa_datalist})
    assert len(parser.get_parsed_content("validate#items")) == 4  # default null: the whole split
