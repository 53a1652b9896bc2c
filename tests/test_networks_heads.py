"""The objectives' parameters are heads of the network: same random initialisation and the same checkpoints
as when the losses held them (values recorded in ``fixtures/gkmvlp_tiny_seed0.json``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from gkmvlp_monai.core import vocab
from gkmvlp_monai.models.gkmvlp import GKMVLPEntityPredictor, build_gkmvlp
from gkmvlp_monai.models.pretrained import load_pretrained_weights

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "gkmvlp_tiny_seed0.json").read_text())
DESCS = [
    "pleural effusion: fluid collecting in the pleural space, blunting the costophrenic angle",
    "cardiomegaly: enlarged cardiac silhouette",
    "pneumothorax: air in the pleural space with a visible pleural line",
]
# the only entries that moved: written out here, independent of the network's own mapping
MOVED = {"itc_loss.": "itc_head.", "itm_loss.classifier.": "itm_head."}


def _new_name(old: str) -> str:
    for before, after in MOVED.items():
        if old.startswith(before):
            return after + old[len(before) :]
    return old


def _old_state_dict() -> dict[str, torch.Tensor]:
    """A state dict under the recorded (old) entry names, with distinct values per entry."""
    g = torch.Generator().manual_seed(3)
    state = {}
    for key, shape, dtype in FIXTURE["state_keys"]:
        if dtype == "float32":
            state[key] = torch.randn(shape, generator=g)
        else:
            state[key] = torch.randint(0, 4, shape, generator=g, dtype=getattr(torch, dtype))
    return state


def test_initialisation_equals_the_recorded_one():
    """Every parameter, in order, has the value it had before the heads moved (seed 0)."""
    torch.manual_seed(0)
    net = build_gkmvlp("tiny", [e.description for e in vocab.entities()], image_size=64)
    params = list(net.named_parameters())
    assert len(params) == len(FIXTURE["parameters"])
    for (name, p), (old, shape, total, squares, absolute) in zip(params, FIXTURE["parameters"]):
        assert name == _new_name(old), (name, old)  # same order: same optimizer groups, same clipping
        assert list(p.shape) == shape, name
        x = p.detach().double()
        scale = 1e-6 * max(math.sqrt(squares * max(p.numel(), 1)), 1e-12)
        assert abs(float(x.sum()) - total) <= scale + 1e-9, name
        assert math.isclose(float((x**2).sum()), squares, rel_tol=1e-6, abs_tol=1e-12), name
        assert math.isclose(float(x.abs().sum()), absolute, rel_tol=1e-6, abs_tol=1e-12), name


def test_heads_live_in_the_network_and_losses_hold_nothing():
    torch.manual_seed(0)
    net = build_gkmvlp("tiny", DESCS, image_size=64, itc_queue_size=4)
    names = dict(net.named_parameters())
    assert "itc_head.log_temp" in names and "itm_head.weight" in names
    for loss in ("itc_loss", "itm_loss", "lm_loss", "ecls_loss", "grounding_loss"):
        module = getattr(net, loss)
        assert not list(module.parameters()) and not module.state_dict(), loss
    assert not any(k.startswith(("itc_loss.", "itm_loss.")) for k in net.state_dict())


def test_old_checkpoint_entries_load_into_the_new_places(tmp_path):
    old = _old_state_dict()
    assert "itc_loss.log_temp" in old and "itm_loss.classifier.weight" in old
    torch.manual_seed(0)
    net = build_gkmvlp("tiny", DESCS, image_size=64, itc_queue_size=4)
    net.load_state_dict(old)  # strict: every old entry has a place, every place an entry
    new = net.state_dict()
    assert set(new) == {_new_name(k) for k in old}
    for key, value in old.items():
        assert torch.equal(new[_new_name(key)], value), key
    # the export wrapper (same keys as the network) and the pre-trained loader map them too
    torch.manual_seed(0)
    wrapper = GKMVLPEntityPredictor(
        build_gkmvlp("tiny", DESCS, image_size=64, itc_queue_size=4), torch.zeros(29, 4), 64
    )
    wrapper.load_state_dict(old)
    assert torch.equal(wrapper.itm_head.weight, old["itm_loss.classifier.weight"])
    path = tmp_path / "old.pt"
    torch.save(old, path)
    torch.manual_seed(1)
    fresh = build_gkmvlp("tiny", DESCS, image_size=64, itc_queue_size=4)
    load_pretrained_weights(fresh, path, strict=True)
    assert torch.equal(fresh.itc_head.log_temp, old["itc_loss.log_temp"])
    assert torch.equal(fresh.itc_head.image_queue, old["itc_loss.image_queue"])
