"""Shared pytest fixtures."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_TRACKING_URI", "")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def iu_synth_tiny(tmp_path_factory) -> str:
    """A 40-report iu-synth build at 64 px (datalist path), shared by the bundle tests.

    Skipped, with the reason, when the torchxrayvision wheel (IU reports, lung masks) cannot be had.
    """
    from gkmvlp_monai.data.synth import build_iu_synth
    from gkmvlp_monai.data.xrv_assets import AssetUnavailableError

    out = tmp_path_factory.mktemp("iu_synth_tiny")
    try:
        return str(build_iu_synth(out, limit=40, seed=0, size=64, workers=1))
    except AssetUnavailableError as err:
        pytest.skip(f"iu-synth needs the torchxrayvision wheel: {err}")


@pytest.fixture(scope="session")
def chexpert_datalist(tmp_path_factory) -> str:
    """A CheXpert-14 multi-label datalist of random PNGs (``bundle_helpers.build_chexpert_datalist``)."""
    from bundle_helpers import build_chexpert_datalist

    return build_chexpert_datalist(tmp_path_factory.mktemp("cls_data"))


@pytest.fixture(scope="session")
def vqa_datalist(tmp_path_factory) -> str:
    """A tiny VQA datalist of random PNGs with qa lists (``bundle_helpers.build_vqa_datalist``)."""
    from bundle_helpers import build_vqa_datalist

    return build_vqa_datalist(tmp_path_factory.mktemp("vqa_data"))


@pytest.fixture(scope="session")
def pretrained_tiny_ckpt(tmp_path_factory) -> str:
    """A tiny GK-MVLP state dict at 64 px (random init), what downstream bundles load as pre-trained."""
    from gkmvlp_monai.core import vocab
    from gkmvlp_monai.models import build_gkmvlp

    torch.manual_seed(0)
    net = build_gkmvlp("tiny", [e.description for e in vocab.entities()], image_size=64)
    path = tmp_path_factory.mktemp("pretrained") / "model.pt"
    torch.save(net.state_dict(), path)
    return str(path)
