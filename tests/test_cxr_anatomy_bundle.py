"""cxr_anatomy bundle: model-zoo checks, and (slow) a tiny train -> evaluate -> inference run with resume."""

from __future__ import annotations

import json
import warnings
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
        config_file=str(CONFIGS / "train.json"),
        device="cpu",
        hidden=16,
    )


def test_ckpt_export_trace(tmp_path) -> None:
    from monai.bundle import ckpt_export

    from gkmvlp_monai.anatomy.model import RegionBoxNet

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
        config_file=str(CONFIGS / "train.json"),
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
        (["train.json"], "train"),
        (["train.json", "evaluate.json"], "infer"),
        (["train.json", "inference.json"], "infer"),
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


def _run(files: list[str], root: Path, **override) -> None:
    from monai.bundle import ConfigWorkflow

    wf = ConfigWorkflow(
        config_file=[str(CONFIGS / f) for f in files],
        meta_file=str(CONFIGS / "metadata.json"),
        workflow_type="train" if files == ["train.json"] else "infer",
        bundle_root=str(root),
        **{**TINY, **override},
    )
    wf.initialize()
    wf.run()
    wf.finalize()


@pytest.mark.slow
def test_train_evaluate_infer_resume(iu_synth_tiny: str, tmp_path) -> None:
    root = tmp_path / "bundle"
    common = {
        "dataset_dir": str(Path(iu_synth_tiny).parent),
        "ckpt_dir": str(root / "models"),
        "output_dir": str(root / "eval"),
        "atlas_images": 4,
    }
    _run(["train.json"], root, max_epochs=1, batch_size=8, ckpt_interval=2, val_interval=1, **common)
    first = torch.load(root / "models" / "checkpoint_final.pt", weights_only=True)
    # Ignite's state_dict holds the iteration (not the epoch) next to epoch_length
    first_epochs = first["trainer"]["iteration"] // first["trainer"]["epoch_length"]
    assert first_epochs == 1 and (root / "models" / "model.pt").is_file()
    _run(
        ["train.json"],
        root,
        max_epochs=2,
        batch_size=8,
        ckpt_interval=2,
        val_interval=1,
        resume=True,
        **common,
    )
    second = torch.load(root / "models" / "checkpoint_final.pt", weights_only=True)
    assert (
        second["trainer"]["iteration"] == 2 * first["trainer"]["iteration"]
        and second["trainer"]["iteration"] // second["trainer"]["epoch_length"] == 2
    )

    _run(["train.json", "evaluate.json"], root, **common)
    metrics = json.loads((root / "eval" / "metrics.json").read_text())["metrics"]
    for key in (
        "model_mean_iou",
        "atlas_mean_iou",
        "model_iou_right_lung",
        "atlas_iou_right_lung",
        "model_seconds_per_image",
        "atlas_seconds_per_image",
    ):
        assert key in metrics and metrics[key] is not None, key
    assert metrics["atlas_mean_iou"] > 0.4  # registration works without training
    assert (root / "models" / "atlas.npz").is_file()

    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray((np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)).save(
        images / "noise.png"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _run(
            ["train.json", "inference.json"],
            root,
            input_dir=str(images),
            inference_dir=str(root / "out"),
            **common,
        )
    rec = json.loads((root / "out" / "noise.json").read_text())
    assert rec["low_confidence"] and rec["score"] < 0.5 and (root / "out" / "noise.png").is_file()
    assert any("noise.png" in str(w.message) and "low confidence" in str(w.message) for w in caught)
