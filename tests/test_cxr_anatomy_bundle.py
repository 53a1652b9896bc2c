"""cxr_anatomy bundle: model-zoo checks, and (slow) a tiny train -> evaluate -> inference run with resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "cxr_anatomy"
CONFIGS = BUNDLE / "configs"
SCHEMA = Path(__file__).resolve().parents[1] / "configs" / "bundle" / "metadata_schema.json"
TINY = {"hidden": 16, "num_workers": 0, "cache": "none", "mlflow": False, "image_size": 64}


def test_verify_metadata_and_net_in_out() -> None:
    from monai.bundle import verify_metadata, verify_net_in_out

    verify_metadata(meta_file=str(CONFIGS / "metadata.json"), filepath=str(SCHEMA))
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(CONFIGS / "metadata.json"),
        config_file=[str(CONFIGS / "base.json"), str(CONFIGS / "train.json")],
        device="cpu",
        hidden=16,
    )


def test_ckpt_export_trace(tmp_path) -> None:
    from monai.bundle import ckpt_export

    from gkmvlp_monai.models.anatomy import RegionBoxNet

    torch.manual_seed(0)
    net = RegionBoxNet("resnet_tiny", img_size=128, hidden=16)
    ckpt = tmp_path / "model.pt"
    torch.save(net.state_dict(), ckpt)
    out = tmp_path / "model.ts"
    ckpt_export(
        net_id="network_def",
        filepath=str(out),
        ckpt_file=str(ckpt),
        meta_file=str(CONFIGS / "metadata.json"),
        config_file=[str(CONFIGS / "base.json"), str(CONFIGS / "train.json")],
        use_trace=True,
        input_shape=[1, 1, 128, 128],
        hidden=16,
    )
    ts = torch.jit.load(str(out))
    x = torch.rand(2, 1, 128, 128)
    torch.testing.assert_close(ts(x), net.eval()(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "files,kind",
    [
        (["base.json", "train.json"], "train"),
        (["base.json", "train.json", "evaluate.json"], "infer"),
        (["inference.json"], "infer"),  # stands alone
    ],
)
def test_config_workflow_properties(files: list[str], kind: str, tmp_path) -> None:
    from monai.bundle import ConfigWorkflow

    Image.fromarray(np.zeros((32, 32), dtype=np.uint8)).save(tmp_path / "a.png")
    item = {"image": "a.png", "region_boxes": {"right lung": [2, 2, 10, 20]}}
    (tmp_path / "datalist.json").write_text(
        json.dumps({s: [item] for s in ("training", "validation", "test")})
    )
    wf = ConfigWorkflow(
        config_file=[str(CONFIGS / f) for f in files],
        meta_file=str(CONFIGS / "metadata.json"),
        logging_file=str(CONFIGS / "logging.conf"),
        workflow_type=kind,
        bundle_root=str(tmp_path),
        dataset_dir=str(tmp_path),
        mlflow=False,
    )
    wf.initialize()
    assert wf.check_properties() in (None, [])
