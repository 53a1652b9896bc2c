"""The MONAI model-zoo's CI checks, written for this project, on every bundle under ``bundles/``.

The model-zoo verifies a bundle (``ci/verify_bundle.py`` and its contributing guide) by: the required
files (``LICENSE``, ``configs/metadata.json``; preferred ``models/model.pt`` or a ``large_files.yml`` that
names it, and ``configs/inference.json``), the metadata against its schema, the version named in the
changelog, then on fake weights saved from a freshly built ``network_def``: ``verify_net_in_out`` on
``configs/inference.json`` alone and a TorchScript export with ``ckpt_export``. Here the schema is the
offline copy ``configs/bundle/metadata_schema.json``, and the export scripts where the network allows it
and traces where it holds the Hugging Face text encoder (the model cards say which).
"""

from __future__ import annotations

import pytest
import torch


@pytest.mark.parametrize("arch", ["resnet_tiny", "vit_tiny"])
def test_image_encoder_scripts(arch: str) -> None:
    """``torch.jit.script`` compiles the encoder (only the branch of its backbone) and gives its outputs."""
    from gkmvlp_monai.models.image import ImageEncoder

    torch.manual_seed(0)
    encoder = ImageEncoder(arch, img_size=64).eval()
    scripted = torch.jit.script(encoder)
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        for got, want in zip(scripted(x), encoder(x)):
            torch.testing.assert_close(got, want)
        for got, want in zip(scripted.feature_maps(x), encoder.feature_maps(x)):
            torch.testing.assert_close(got, want)


@pytest.mark.parametrize("arch", ["resnet_tiny", "vit_tiny"])
def test_image_encoder_feature_maps_end_in_its_forward_map(arch: str) -> None:
    from gkmvlp_monai.models.image import ImageEncoder

    encoder = ImageEncoder(arch, img_size=64).eval()
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        maps = encoder.feature_maps(x)
        assert torch.equal(maps[0], encoder(x)[0])
    widths = [m.shape[-1] for m in maps]
    assert widths == ([2, 4, 8, 16, 32] if arch == "resnet_tiny" else [4])


def test_image_only_networks_script() -> None:
    """The networks of cxr_anatomy, classification and localization script as a whole."""
    from gkmvlp_monai.models.anatomy import RegionBoxNet
    from gkmvlp_monai.tasks.classification.model import build_classifier
    from gkmvlp_monai.tasks.localization.model import build_finding_segmenter

    torch.manual_seed(0)
    x = torch.rand(2, 1, 64, 64)
    for net in (
        RegionBoxNet("resnet_tiny", img_size=64, hidden=16),
        build_classifier(3, size="tiny", image_size=64),
        build_finding_segmenter(2, size="tiny", image_size=64),
        build_finding_segmenter(2, size="tiny", image_size=64, image_arch="vit_tiny"),
    ):
        net.eval()
        with torch.no_grad():
            torch.testing.assert_close(torch.jit.script(net)(x), net(x), atol=1e-5, rtol=1e-4)
