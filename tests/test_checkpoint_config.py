"""Checkpoints carry the network's config beside the weights (in a plain state dict) and loading one into
a network built with another config is an error naming the file and both configs."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from ignite.engine import Engine

from gkmvlp_monai.core import vocab
from gkmvlp_monai.engine.handlers.checkpoints import TrainingCheckpoints
from gkmvlp_monai.models.config import NetworkConfigError, saved_config, vocab_hash
from gkmvlp_monai.models.gkmvlp import GKMVLPEntityPredictor, build_gkmvlp
from gkmvlp_monai.models.pretrained import load_pretrained_weights
from gkmvlp_monai.tasks.classification.model import build_classifier
from gkmvlp_monai.tasks.localization.model import build_finding_segmenter
from gkmvlp_monai.tasks.vqa.model import build_vqa, load_backbone

DESCS = [
    "pleural effusion: fluid collecting in the pleural space",
    "cardiomegaly: enlarged cardiac silhouette",
    "pneumothorax: air in the pleural space",
]
S = 64


def _tiny(image_size: int = S, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_gkmvlp("tiny", DESCS, image_size=image_size, **kw)


def _unchanged(net: torch.nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_model_pt_stays_a_plain_state_dict_that_carries_the_config(tmp_path):
    net = _tiny()
    path = tmp_path / "model.pt"
    torch.save(net.state_dict(), path)
    state = torch.load(path, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())  # what MONAI bundles expect
    config = saved_config(state)
    assert config == net.network_config
    assert (config["size"], config["image_arch"], config["image_size"]) == ("tiny", "resnet_tiny", S)
    assert config["text_model"] is None and config["vocab_hash"] == vocab_hash(DESCS)
    _tiny().load_state_dict(state)  # same config: loads strictly
    # the export wrapper has the network's keys and its config
    wrapper = GKMVLPEntityPredictor(_tiny(), torch.zeros(29, 4), S)
    assert saved_config(wrapper.state_dict()) == config
    wrapper.load_state_dict(state)


def test_vocab_hash_covers_entity_descriptions_and_regions_in_order():
    assert vocab_hash() == vocab_hash([e.description for e in vocab.entities()])
    assert vocab_hash(DESCS) != vocab_hash(DESCS[::-1])
    assert len(vocab_hash()) == 16


def test_small_checkpoint_into_tiny_network_is_a_clear_error(tmp_path):
    torch.manual_seed(0)
    small = build_gkmvlp("small", DESCS, image_size=S).state_dict()
    # a few tensors under the small network's real metadata keep the file small; the check reads the
    # config before any tensor
    state = OrderedDict(list(small.items())[:4])
    state._metadata = small._metadata
    path = tmp_path / "small.pt"
    torch.save(state, path)
    tiny = _tiny()
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    with pytest.raises(NetworkConfigError) as err:
        load_pretrained_weights(tiny, path)
    message = str(err.value)
    assert str(path) in message
    assert "'size': 'small'" in message and "'size': 'tiny'" in message  # saved and requested configs
    assert "size 'small' vs 'tiny'" in message and "image_arch 'resnet18' vs 'resnet_tiny'" in message
    with pytest.raises(NetworkConfigError, match="size 'small' vs 'tiny'"):
        tiny.load_state_dict(torch.load(path, weights_only=True), strict=False)  # MONAI's loaders
    assert _unchanged(tiny, before)  # nothing was partially loaded


def test_task_networks_record_and_check_their_config(tmp_path):
    descriptions = [e.description for e in vocab.entities()]
    torch.manual_seed(0)
    pre = build_gkmvlp("tiny", descriptions, image_size=S)
    ckpt = tmp_path / "pretrain.pt"
    torch.save(pre.state_dict(), ckpt)
    # classification: the encoder loads from the GK-MVLP checkpoint; the classifier records its own config
    clf = build_classifier(3, size="tiny", image_size=S, pretrained_ckpt=str(ckpt))
    torch.testing.assert_close(clf.encoder.state_dict(), pre.image_encoder.state_dict())
    assert saved_config(clf.state_dict())["network"] == "GKMVLPClassifier"
    with pytest.raises(NetworkConfigError, match=r"pretrain\.pt.*image_size 64 vs 32"):
        build_classifier(3, size="tiny", image_size=32, pretrained_ckpt=str(ckpt))
    # localization
    seg = build_finding_segmenter(2, size="tiny", image_size=S)
    load_pretrained_weights(seg, ckpt)
    assert saved_config(seg.state_dict())["num_classes"] == 2
    with pytest.raises(NetworkConfigError, match="image_size 64 vs 32"):
        load_pretrained_weights(build_finding_segmenter(2, size="tiny", image_size=32), ckpt)
    # VQA: the backbone is checked; the task network's own checkpoint carries both configs
    vqa = load_backbone(build_vqa(5, size="tiny", entity_descriptions=descriptions, image_size=S), str(ckpt))
    state = vqa.state_dict()
    assert saved_config(state)["num_answers"] == 5 and saved_config(state, "backbone.")["network"] == "GKMVLP"
    with pytest.raises(NetworkConfigError, match=r"vocab_hash '\w+' vs '\w+'"):
        load_backbone(build_vqa(5, size="tiny", entity_descriptions=DESCS, image_size=S), str(ckpt))
    # report generation: another objective mix is not another network
    rg = build_gkmvlp("tiny", descriptions, image_size=S, weight_itc=0.0, weight_itm=0.0)
    load_pretrained_weights(rg, ckpt)
    torch.testing.assert_close(rg.decoder.state_dict(), pre.decoder.state_dict())


def test_checkpoint_without_config_loads_as_before_with_a_warning(tmp_path):
    net = _tiny()
    state = net.state_dict()
    del state._metadata[""]["network_config"]  # what a checkpoint of an earlier release holds
    path = tmp_path / "old.pt"
    torch.save(state, path)
    fresh = _tiny(itc_temperature=0.1)
    with pytest.warns(UserWarning, match=rf"{path}.*records no network config"):
        load_pretrained_weights(fresh, path)
    torch.testing.assert_close(fresh.state_dict(), net.state_dict())
    other = _tiny(itc_temperature=0.1)
    with pytest.warns(UserWarning, match="GKMVLP records no network config"):
        other.load_state_dict(torch.load(path, weights_only=True))
    torch.testing.assert_close(other.state_dict(), net.state_dict())


def _resume(save_dir, network) -> Engine:
    handler = TrainingCheckpoints(
        str(save_dir), network, torch.optim.SGD(network.parameters(), lr=0.1), resume=True, save=False
    )
    engine = Engine(lambda engine, batch: None)
    engine.state.device = torch.device("cpu")
    handler.attach(engine)
    engine.run([0], max_epochs=1)
    return engine


def test_resume_into_another_config_names_the_checkpoint(tmp_path):
    saved = _tiny()
    opt = torch.optim.SGD(saved.parameters(), lr=0.1)
    trainer = {"iteration": 0, "epoch_length": 1, "max_epochs": 1}
    path = tmp_path / "checkpoint_final.pt"
    torch.save({"model": saved.state_dict(), "optimizer": opt.state_dict(), "trainer": trainer}, path)
    same = _tiny(itc_temperature=0.1)
    _resume(tmp_path, same)
    torch.testing.assert_close(same.state_dict(), saved.state_dict())
    with pytest.raises(NetworkConfigError, match=rf"{path}.*image_size 64 vs 32"):
        _resume(tmp_path, _tiny(image_size=32))
