"""Model-zoo style checks of bundles/gkmvlp_localization with tiny overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigWorkflow, ckpt_export, verify_metadata, verify_net_in_out

from gkmvlp_monai.core.paths import REPO_ROOT

BUNDLE = REPO_ROOT / "bundles" / "gkmvlp_localization"
CONFIGS = BUNDLE / "configs"
TINY = {"model_size": "tiny", "image_size": 64}


def test_metadata_against_schema_on_disk():
    verify_metadata(
        meta_file=str(CONFIGS / "metadata.json"),
        filepath=str(REPO_ROOT / "configs" / "bundle" / "metadata_schema.json"),
    )


def test_net_in_out_and_traced_export(tmp_path: Path):
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(CONFIGS / "metadata.json"),
        config_file=[str(CONFIGS / "base.json"), str(CONFIGS / "train.json")],
        **TINY,
    )
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "base.json"), str(CONFIGS / "train.json")])
    parser.update(TINY)
    net = parser.get_parsed_content("network_def")
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
        input_shape=[1, 1, 64, 64],
        **TINY,
    )
    traced = torch.jit.load(str(out))
    x = torch.rand(1, 1, 64, 64)
    net.eval()
    assert torch.allclose(traced(x), net(x), atol=1e-5)


@pytest.mark.parametrize(
    "files, kind",
    [
        (["base.json", "train.json"], "train"),
        (["base.json", "train.json", "evaluate.json"], "train"),
        (["base.json", "train.json", "evaluate.json", "zero_shot.json"], "train"),
        (["inference.json"], "infer"),  # stands alone
    ],
)
def test_check_properties(files, kind, tmp_path: Path):
    import json

    import numpy as np
    from PIL import Image

    Image.fromarray(np.full((40, 50), 128, np.uint8)).save(tmp_path / "img.png")
    item = {"image": "img.png", "lesion_boxes": [[5.0, 5.0, 20.0, 15.0]], "lesion_labels": ["opacity"]}
    split = {"training": [item] * 2, "validation": [item], "test": [item]}
    (tmp_path / "datalist.json").write_text(json.dumps(split))
    workflow = ConfigWorkflow(
        config_file=[str(CONFIGS / f) for f in files],
        meta_file=str(CONFIGS / "metadata.json"),
        workflow_type=kind,
        bundle_root=str(BUNDLE),
        output_dir=str(tmp_path / "eval"),
        ckpt_dir=str(tmp_path / "models"),
        dataset_dir=str(tmp_path),
        from_scratch=True,
        cache="none",
        num_workers=0,
        mlflow=False,
        **TINY,
    )
    workflow.initialize()
    assert workflow.check_properties() in (None, [])
