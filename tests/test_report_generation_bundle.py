"""The gkmvlp_report_generation bundle, checked the model-zoo way and run as a user runs it (tiny settings)."""

from __future__ import annotations

import json
import os

import pytest
from bundle_helpers import REPO, SCHEMA, bundle_cmd, overrides

NAME = "gkmvlp_report_generation"
BUNDLE = REPO / "bundles" / NAME
TINY = dict(model_size="tiny", image_size=64, num_workers=0, num_threads=1)
# the tiny decoder has 32 positions: at most 31 generated tokens, the export's fixed output width
EXPORT = ["--export_max_length", "31", "--_meta_#network_data_format#outputs#pred#num_channels", "31"]


def test_metadata_is_valid_against_the_schema_on_disk():
    bundle_cmd(NAME, ["verify_metadata", "--meta_file", "configs/metadata.json", "--filepath", str(SCHEMA)])


def test_metadata_matches_the_inference_config():
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    infer = json.loads((BUNDLE / "configs" / "inference.json").read_text())
    assert meta["version"] in meta["changelog"]
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == infer["export_max_length"]
    for name in ("train.json", "evaluate.json", "inference.json", "multi_gpu_train.json", "logging.conf"):
        assert (BUNDLE / "configs" / name).is_file(), name
    assert (BUNDLE / "docs" / "README.md").is_file()


def test_config_properties(tmp_path):
    from monai.bundle import ConfigWorkflow

    # a datalist is read when the datasets are built; images are only opened when a sample is drawn
    items = [{"image": f"img{i}.png", "report": "No acute disease."} for i in range(4)]
    datalist = tmp_path / "datalist.json"
    datalist.write_text(json.dumps({"training": items, "validation": items, "test": items}))
    cwd = os.getcwd()
    os.chdir(BUNDLE)
    try:
        for config, kind in (
            (["configs/base.json", "configs/train.json"], "train"),
            ("configs/inference.json", "infer"),
        ):
            wf = ConfigWorkflow(
                config_file=config,
                meta_file="configs/metadata.json",
                logging_file="configs/logging.conf",
                workflow_type=kind,
                output_dir=str(tmp_path / kind),
                model_size="tiny",
                image_size=64,
                datalist_file=str(datalist),
                pretrained_ckpt=None,
                cache="none",
                export_max_length=31,
            )
            wf.initialize()
            assert wf.check_properties() in (None, []), (config, wf.check_properties())
    finally:
        os.chdir(cwd)


def test_epoch_length_cuts_the_epoch_and_the_schedule(tmp_path):
    """``epoch_length`` (the studies' step budget) sets the trainer's epoch and the LR schedule's length."""
    from monai.bundle import ConfigWorkflow

    items = [{"image": f"img{i}.png", "report": "No acute disease."} for i in range(40)]
    datalist = tmp_path / "datalist.json"
    datalist.write_text(json.dumps({"training": items, "validation": items[:4], "test": items[:4]}))
    common = dict(
        config_file=[str(BUNDLE / "configs" / "base.json"), str(BUNDLE / "configs" / "train.json")],
        meta_file=str(BUNDLE / "configs" / "metadata.json"),
        logging_file=str(BUNDLE / "configs" / "logging.conf"),
        workflow_type="train",
        bundle_root=str(BUNDLE),
        output_dir=str(tmp_path / "out"),
        model_size="tiny",
        image_size=64,
        datalist_file=str(datalist),
        pretrained_ckpt=None,
        cache="none",
        batch_size=4,
        max_epochs=2,
        mlflow=False,
    )
    for epoch_length, per_epoch in ((None, 10), (3, 3)):
        wf = ConfigWorkflow(**common, epoch_length=epoch_length)
        wf.initialize()
        assert wf.trainer.state.epoch_length == per_epoch
        assert wf.parser.get_parsed_content("lr_scheduler").t_total == 2 * per_epoch


def test_study_step_budget_gives_every_fraction_the_same_updates(tmp_path, monkeypatch):
    """``steps``: whole epochs over 10 % of 400 items (two of 5 batches), one epoch cut at 10 over 100 %."""
    from gkmvlp_monai.tasks.report_generation import study

    items = [{"image": f"img{i}.png", "report": "No acute disease."} for i in range(400)]
    datalist = tmp_path / "datalist.json"
    # the 10 % subset is given (an adapter-written key), so the budget arithmetic is fixed: 40 items
    doc = {"training": items, "training_10pct": items[:40], "validation": items[:4], "test": items[:4]}
    datalist.write_text(json.dumps(doc))
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"")
    seen, batches = [], []

    def fake_run_one(init, fraction, pretrained_ckpt, datalist_file, run_dir, settings):
        seen.append(
            (init, fraction, settings["max_epochs"], settings.get("epoch_length"), settings["val_interval"])
        )
        batches.append(settings["batch_size"])
        return {"init": init, "fraction": fraction, "train_items": 0, "updates": 0, "metrics": {}}

    monkeypatch.setattr(study, "run_one", fake_run_one)
    res = study.run_study(str(ckpt), str(tmp_path), str(tmp_path / "out"), steps=10, batch_size=8)
    assert res["settings"]["steps"] == 10 and res["settings"]["max_epochs"] is None
    assert seen == [
        ("pretrained", 0.1, 2, None, 2),
        ("scratch", 0.1, 2, None, 2),
        ("pretrained", 1.0, 1, 10, 1),
        ("scratch", 1.0, 1, 10, 1),
    ]
    assert batches == [8, 8, 8, 8]
    # a fraction smaller than one batch (4 of 40 items, batch 8) trains with a batch of 4, not zero updates
    seen.clear(), batches.clear()
    doc = {"training": items[:40], "training_10pct": items[:4], "validation": items[:4], "test": items[:4]}
    datalist.write_text(json.dumps(doc))
    study.run_study(str(ckpt), str(tmp_path), str(tmp_path / "out2"), epochs=2, batch_size=8)
    assert batches == [4, 4, 8, 8] and [s[2] for s in seen] == [2, 2, 2, 2]


def test_train_config_switches_every_objective_but_lm_off():
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / "base.json"), str(BUNDLE / "configs" / "train.json")])
    parser["model_size"], parser["image_size"], parser["pretrained_ckpt"] = "tiny", 64, None
    net = parser.get_parsed_content("network")
    assert net.decoder is not None and net.fusion is None
    assert net.weights == {"itc": 0.0, "itm": 0.0, "lm": 1.0, "ecls": 0.0, "grounding": 0.0}


@pytest.mark.slow
def test_verify_net_in_out():
    bundle_cmd(
        NAME,
        [
            "verify_net_in_out",
            "network_def",
            "--meta_file",
            "configs/metadata.json",
            "--config_file",
            "configs/inference.json",
            "--device",
            "cpu",
            "--_meta_#network_data_format#inputs#image#spatial_shape",
            "[64,64]",
            *overrides(model_size="tiny", image_size=64),
            *EXPORT,
        ],
    )
