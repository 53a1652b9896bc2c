"""The package works from an installed, non-editable wheel: vocabularies are package data.

Builds the wheel, installs it (without dependencies: they are this environment's) into a fresh
folder, and from a working directory outside the checkout, with that folder first on the path,
loads the vocabularies and builds the pre-training bundle's network from a copy of the bundle.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

CHECK = r"""
import json, sys
import gkmvlp_monai
from gkmvlp_monai.core import vocab
from monai.bundle import ConfigParser

parser = ConfigParser()
parser.read_config("configs/inference.json")
parser.update({"model_size": "tiny", "image_size": 64})
net = parser.get_parsed_content("network_def")
print(json.dumps({
    "package": gkmvlp_monai.__file__,
    "vocab": str(vocab.vocab_path("entities.json")),
    "entities": len(vocab.entity_names()),
    "regions": len(vocab.region_names()),
    "network": type(net).__name__,
}))
"""


@pytest.mark.slow
def test_installed_wheel_finds_its_vocabularies_and_builds_a_bundle_network(tmp_path: Path) -> None:
    wheels, target, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)]
    if importlib.util.find_spec("setuptools") is not None:
        build.insert(4, "--no-build-isolation")
    subprocess.run(build, check=True, cwd=tmp_path, timeout=600)
    (wheel,) = wheels.glob("gkmvlp_monai-*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        timeout=600,
    )
    bundle = work / "gkmvlp_pretrain"
    shutil.copytree(REPO / "bundles" / "gkmvlp_pretrain", bundle, symlinks=False)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GKMVLP_CONFIGS")}
    env.update({"PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    out = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=bundle, env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(found["package"]).is_relative_to(target), found  # the wheel, not the checkout
    assert Path(found["vocab"]).is_relative_to(target), found
    assert found["entities"] > 70 and found["regions"] == 29, found
    assert found["network"] == "GKMVLPEntityPredictor", found
