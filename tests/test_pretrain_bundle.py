"""The gkmvlp_pretrain bundle, run the way a user runs it (``python -m monai.bundle``), on tiny settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from bundle_helpers import REPO, RESUME_MARK, SCHEMA, bundle_cmd, mark_resume_point, overrides, resumed_steps

BUNDLE = REPO / "bundles" / "gkmvlp_pretrain"
TINY = dict(
    model_size="tiny",
    image_size=64,
    num_workers=0,
    cache="memory",
    batch_size=4,
    val_batch_size=8,
    mlflow=False,
)


def _train_args(tmp: Path, datalist: str, **kw: object) -> list[str]:
    settings = {
        **TINY,
        "datalist_file": datalist,
        "ckpt_dir": str(tmp / "models"),
        "output_dir": str(tmp / "eval"),
        "max_epochs": 2,
        "ckpt_interval": 2,
        "log_every": 1,
        **kw,
    }
    return overrides(**settings)


def test_metadata_is_valid_against_the_schema_on_disk():
    bundle_cmd(
        "gkmvlp_pretrain",
        ["verify_metadata", "--meta_file", "configs/metadata.json", "--filepath", str(SCHEMA)],
    )


def test_metadata_output_channels_match_the_entity_vocabulary():
    from gkmvlp_monai.core.vocab import entity_names

    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == len(entity_names())
    assert meta["version"] in meta["changelog"]


def test_verify_net_in_out():
    bundle_cmd(
        "gkmvlp_pretrain",
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
        ],
    )


def test_config_properties(tmp_path, iu_synth_tiny):
    from monai.bundle import ConfigWorkflow

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
                datalist_file=iu_synth_tiny,
                num_workers=0,
            )
            wf.initialize()
            assert wf.check_properties() in (None, []), (config, wf.check_properties())
    finally:
        os.chdir(cwd)


def test_resume_flag_continues_from_the_last_checkpoint(tmp_path, iu_synth_tiny):
    bundle_cmd(
        "gkmvlp_pretrain",
        [
            "run",
            "--config_file",
            "['configs/base.json','configs/train.json']",
            *_train_args(tmp_path, iu_synth_tiny, max_epochs=1),
        ],
    )
    first = mark_resume_point(tmp_path / "models")
    bundle_cmd(
        "gkmvlp_pretrain",
        [
            "run",
            "--config_file",
            "['configs/base.json','configs/train.json']",
            *_train_args(tmp_path, iu_synth_tiny, max_epochs=2, resume=True),
        ],
    )
    # the second run continued the saved optimizer state (marked counts) for one more epoch
    steps, iterations, epochs = resumed_steps(tmp_path / "models")
    assert (iterations, epochs) == (2 * first, 2) and max(steps) == RESUME_MARK + 2 * first, steps


_KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from ignite.engine import Events
    from monai.bundle import ConfigWorkflow
    kill_at = int(sys.argv[1])
    overrides = dict(a.split("=", 1) for a in sys.argv[2:])
    wf = ConfigWorkflow(config_file=["configs/base.json", "configs/train.json"], meta_file="configs/metadata.json",
                        logging_file="configs/logging.conf", workflow_type="train", **{k: eval(v) for k, v in overrides.items()})
    wf.initialize()
    trainer = wf.parser.get_parsed_content("train#trainer")
    if kill_at > 0:
        trainer.add_event_handler(Events.ITERATION_COMPLETED(once=kill_at), lambda e: os.kill(os.getpid(), signal.SIGKILL))
    wf.run()
    """
)


def _run_killable(tmp: Path, datalist: str, kill_at: int, resume: bool = False) -> int:
    settings = {
        **TINY,
        "datalist_file": datalist,
        "ckpt_dir": str(tmp / "models"),
        "output_dir": str(tmp / "eval"),
        "max_epochs": 2,
        "ckpt_interval": 2,
        "resume": resume,
        "batch_size": 4,
    }
    args = [f"{k}={v!r}" for k, v in settings.items()]
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_SCRIPT, str(kill_at), *args],
        cwd=BUNDLE,
        capture_output=True,
        text=True,
        timeout=600,
        # deterministic mode: single-threaded CPU kernels from process start (set later, oneDNN's
        # multi-threaded reductions already make two unbroken runs differ in the last bits)
        env={
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        },
    )
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(proc.stdout[-3000:] + proc.stderr[-3000:])
    return proc.returncode


def test_sigkill_mid_epoch_then_resume_ends_at_the_same_weights(tmp_path, iu_synth_tiny):
    # 28 training items, batch 4 (drop_last) -> 7 iterations per epoch; checkpoints every 2 iterations.
    assert _run_killable(tmp_path / "full", iu_synth_tiny, kill_at=0) == 0
    assert _run_killable(tmp_path / "broken", iu_synth_tiny, kill_at=10) == -signal.SIGKILL  # mid epoch 2
    assert not (tmp_path / "broken" / "models" / "checkpoint_final.pt").exists()
    # the kill lands before iteration 10's checkpoint (savers run last): the newest is iteration 8's
    assert [p.name for p in (tmp_path / "broken" / "models").glob("checkpoint_iteration=*.pt")] == [
        "checkpoint_iteration=8.pt"
    ]
    assert _run_killable(tmp_path / "broken", iu_synth_tiny, kill_at=0, resume=True) == 0
    full = torch.load(tmp_path / "full" / "models" / "checkpoint_final.pt", weights_only=False)["model"]
    resumed = torch.load(tmp_path / "broken" / "models" / "checkpoint_final.pt", weights_only=False)["model"]
    assert full.keys() == resumed.keys()
    diff = {
        k: (full[k].float() - resumed[k].float()).abs().max().item()
        for k in full
        if full[k].is_floating_point()
    }
    assert max(diff.values()) == 0.0, sorted(diff.items(), key=lambda kv: -kv[1])[:5]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_multi_gpu_config_runs_with_two_cpu_processes(tmp_path, iu_synth_tiny):
    cpu = tmp_path / "cpu_ddp.json"
    cpu.write_text(json.dumps({"device": "$torch.device('cpu')", "backend": "gloo"}))
    args = _train_args(tmp_path, iu_synth_tiny, max_epochs=1)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes=1",
        "--nproc_per_node=2",
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        f"['configs/base.json','configs/train.json','configs/multi_gpu_train.json','{cpu}']",
        *args,
    ]
    proc = subprocess.run(
        cmd,
        cwd=BUNDLE,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert (tmp_path / "models" / "checkpoint_final.pt").is_file()


def test_validation_metrics_follow_the_objective_switches():
    """Regression: with the LM objective off the network returns no ``loss_lm`` and validation crashed
    on the ``val_loss_lm`` metric at the end of the first epoch (found by bench/pretrain_ablation.py)."""
    from monai.bundle import ConfigParser

    for lm, expect in ((1.0, {"zero_shot_auc", "val_loss_lm"}), (0.0, {"zero_shot_auc"})):
        parser = ConfigParser()
        configs = Path(__file__).resolve().parents[1] / "bundles/gkmvlp_pretrain/configs"
        parser.read_config([str(configs / "base.json"), str(configs / "train.json")])
        parser["loss_weights#lm"] = lm
        assert set(parser.get_parsed_content("validate#additional_metrics")) == expect
