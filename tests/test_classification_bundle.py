"""The gkmvlp_classification bundle: model-zoo checks and an end-to-end run on tiny settings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from bundle_helpers import REPO, SCHEMA, bundle_cmd, overrides

BUNDLE = REPO / "bundles" / "gkmvlp_classification"
TINY = dict(
    model_size="tiny",
    image_size=64,
    num_workers=0,
    cache="memory",
    batch_size=4,
    val_batch_size=8,
    mlflow=False,
)


@pytest.mark.slow
def test_metadata_is_valid_against_the_schema_on_disk():
    bundle_cmd(
        "gkmvlp_classification",
        ["verify_metadata", "--meta_file", "configs/metadata.json", "--filepath", str(SCHEMA)],
    )
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    assert meta["version"] in meta["changelog"]
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == 14


@pytest.mark.slow
def test_verify_net_in_out(chexpert_datalist):
    bundle_cmd(
        "gkmvlp_classification",
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
            *overrides(model_size="tiny", image_size=64, datalist_file=chexpert_datalist),
        ],
    )


def test_config_properties(tmp_path, chexpert_datalist):
    from monai.bundle import ConfigWorkflow

    settings = {
        **TINY,
        "datalist_file": chexpert_datalist,
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
                else {k: settings[k] for k in ("model_size", "image_size", "datalist_file", "output_dir")}
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
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_multi_gpu_config_runs_with_two_cpu_processes(tmp_path, chexpert_datalist):
    import subprocess
    import sys

    cpu = tmp_path / "cpu_ddp.json"
    cpu.write_text(json.dumps({"device": "$torch.device('cpu')", "backend": "gloo"}))
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
        *_args(tmp_path, chexpert_datalist, max_epochs=1, from_scratch=True, mode="finetune"),
    ]
    proc = subprocess.run(
        cmd,
        cwd=BUNDLE,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert (tmp_path / "models" / "checkpoint_final.pt").is_file()
