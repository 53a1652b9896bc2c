"""The gkmvlp_classification bundle: model-zoo checks and an end-to-end run on tiny settings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_helpers import REPO, SCHEMA, bundle_cmd, overrides
from PIL import Image

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


@pytest.fixture(scope="module")
def chexpert_datalist(tmp_path_factory) -> str:
    """A CheXpert-14 multi-label datalist of random 48x40 PNGs with region boxes (14 train / 6 / 6)."""
    from gkmvlp_monai.knowledge.vocab import label_set, region_names

    tmp = tmp_path_factory.mktemp("cls_data")
    rng = np.random.default_rng(0)
    names = label_set("chexpert14")
    boxes = {r: [4.0, 4.0, 30.0, 30.0] for r in region_names()[:5]}
    doc = {"name": "tiny", "label_names": names, "label_type": "multilabel", "seed": 0}
    for split, n in (("training", 14), ("validation", 6), ("test", 6)):
        items = []
        for i in range(n):
            f = tmp / f"{split}_{i}.png"
            Image.fromarray(rng.integers(0, 255, (40, 48), dtype=np.uint8)).save(f)
            label = [0.0] * len(names)
            label[i % 3] = 1.0
            label[4] = -1.0 if i == 1 else label[4]
            items.append({"image": f.name, "label": label, "region_boxes": boxes})
        doc[split] = items
    path = tmp / "datalist.json"
    path.write_text(json.dumps(doc))
    return str(path)


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
        for configs, kind in (("configs/train.json", "train"), ("configs/inference.json", "infer")):
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
def test_train_resume_evaluate_zero_shot_infer_export(tmp_path, chexpert_datalist):
    from gkmvlp_monai.knowledge import vocab
    from gkmvlp_monai.networks import build_gkmvlp

    pre = build_gkmvlp("tiny", [e.description for e in vocab.entities()], image_size=64)
    ckpt = tmp_path / "pretrained.pt"
    torch.save(pre.state_dict(), ckpt)
    args = _args(tmp_path, chexpert_datalist, pretrained_ckpt=str(ckpt), mode="linear_probe")

    out = bundle_cmd(
        "gkmvlp_classification", ["run", "--config_file", "configs/train.json", *args, "--max_epochs", "1"]
    )
    assert "macro_AUC" in out
    out = bundle_cmd(
        "gkmvlp_classification", ["run", "--config_file", "configs/train.json", *args, "--resume", "True"]
    )
    assert "epoch 1 until 2 epochs" in out
    models = tmp_path / "models"
    for name in ("model.pt", "best_checkpoint.pt", "checkpoint_final.pt"):
        assert (models / name).is_file(), name
    state = torch.load(models / "model.pt", weights_only=True)
    enc = {k: v for k, v in pre.state_dict().items() if k.startswith("image_encoder.")}
    # linear probe: the trained model still carries the pre-trained encoder unchanged
    assert all(torch.equal(state["encoder." + k[len("image_encoder.") :]], v) for k, v in enc.items())

    bundle_cmd(
        "gkmvlp_classification",
        ["run", "--config_file", "['configs/train.json','configs/evaluate.json']", *args],
    )
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["threshold_split"] == "validation"
    for key in ("macro_AUC", "macro_F1", "mean_accuracy", "AUC_No Finding"):
        assert key in metrics["metrics"], key
    assert "Pneumothorax" in json.loads((tmp_path / "eval" / "thresholds.json").read_text())["fallback"]

    bundle_cmd(
        "gkmvlp_classification",
        [
            "run",
            "--config_file",
            "['configs/train.json','configs/evaluate.json','configs/zero_shot.json']",
            *args,
        ],
    )
    zs = json.loads((tmp_path / "eval" / "zero_shot" / "metrics.json").read_text())
    assert zs["mode"] == "zero_shot" and "macro_AUC" in zs["metrics"]

    bundle_cmd(
        "gkmvlp_classification",
        [
            "run",
            "--config_file",
            "configs/inference.json",
            *overrides(
                model_size="tiny",
                image_size=64,
                num_workers=0,
                batch_size=4,
                mode="linear_probe",
                datalist_file=chexpert_datalist,
                ckpt_dir=str(models),
                output_dir=str(tmp_path / "infer"),
            ),
        ],
    )
    rows = (tmp_path / "infer" / "predictions.csv").read_text().strip().splitlines()
    assert len(rows) == 7 and rows[0].startswith("image,No Finding")

    ts = tmp_path / "model.ts"
    bundle_cmd(
        "gkmvlp_classification",
        [
            "ckpt_export",
            "network_def",
            "--filepath",
            str(ts),
            "--ckpt_file",
            str(models / "model.pt"),
            "--meta_file",
            "configs/metadata.json",
            "--config_file",
            "configs/inference.json",
            "--use_trace",
            "True",
            "--input_shape",
            "[1,1,64,64]",
            *overrides(model_size="tiny", image_size=64, datalist_file=chexpert_datalist),
        ],
    )
    traced = torch.jit.load(str(ts))
    assert torch.equal(traced.state_dict()["head.weight"], state["head.weight"])
    assert traced(torch.rand(2, 1, 64, 64)).shape == (2, 14)


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
        f"['configs/train.json','configs/multi_gpu_train.json','{cpu}']",
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
