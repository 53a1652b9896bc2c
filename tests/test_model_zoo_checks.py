"""The MONAI model-zoo's CI checks, written for this project, on every bundle under ``bundles/``.

The model-zoo verifies a bundle (``ci/verify_bundle.py`` and its contributing guide) by: the required
files (``LICENSE``, ``configs/metadata.json``; preferred ``models/model.pt`` or a ``large_files.yml`` that
names it, and ``configs/inference.json``), the metadata against its schema, the version named in the
changelog, then on fake weights saved from a freshly built ``network_def``: ``verify_net_in_out`` on
``configs/inference.json`` alone and a TorchScript export with ``ckpt_export``. Here the schema is the
offline copy ``configs/bundle/metadata_schema.json``; no checkpoint has a download URL, so the fake
weights stand in for every ``models/model.pt``; the export scripts where the network allows it and traces
where it holds the Hugging Face text encoder (the model cards say which). The fast tier checks the files,
the metadata and the configs and builds each ``network_def`` at the tiny size; the slow tier runs the
model-zoo's sequence at the bundles' default settings on copies of the bundles.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "configs" / "bundle" / "metadata_schema.json"
BUNDLES = sorted(p.name for p in (REPO / "bundles").iterdir() if (p / "configs" / "metadata.json").is_file())
#: bundles whose network holds the Hugging Face text encoder: ``torch.jit.script`` cannot compile it
#: (transformers' ``BertConfig``), so they export with ``--use_trace True``
TRACE_ONLY = {"gkmvlp_pretrain", "gkmvlp_report_generation", "gkmvlp_vqa"}
#: the model-zoo's keys of an inference config (contributing guide) and MONAI's required inference
#: properties (``monai.bundle.properties.InferProperties``)
INFERENCE_KEYS = (
    "bundle_root",
    "device",
    "network_def",
    "inferer",
    "output_dir",
    "dataset_dir",
    "dataset",
    "evaluator",
)
MAX_EXPRESSIONS = 10
HASH_TYPES = ("", "md5", "sha1", "sha256", "sha512")


def _tiny(bundle: str) -> dict:
    """Overrides of the smallest network of ``bundle`` at 64 px, the metadata's input shape to match."""
    size = {"hidden": 16} if bundle == "cxr_anatomy" else {"model_size": "tiny"}
    out = {**size, "image_size": 64, "_meta_#network_data_format#inputs#image#spatial_shape": [64, 64]}
    if bundle == "gkmvlp_report_generation":  # the tiny decoder has 32 positions: 31 tokens at most
        out.update({"export_max_length": 31, "_meta_#network_data_format#outputs#pred#num_channels": 31})
    return out


def _copy(bundle: str, dest: Path) -> Path:
    """The bundle as the model-zoo holds it: its files without trained models, alone in ``dest``."""
    src = REPO / "bundles" / bundle
    out = dest / bundle
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("models", "eval", "__pycache__"))
    return out


def _strings(obj: object):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings(value)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _export_command(bundle: str) -> str:
    """The model card's ``ckpt_export`` command, its continuation lines joined."""
    card = (REPO / "bundles" / bundle / "docs" / "README.md").read_text()
    joined = re.sub(r"\\\n\s*", " ", card)
    lines = [line for line in joined.splitlines() if "monai.bundle ckpt_export" in line]
    assert len(lines) == 1, (
        f"bundles/{bundle}/docs/README.md: expected one ckpt_export command, found {lines}"
    )
    return lines[0]


def test_every_bundle_is_checked() -> None:
    expected = {
        "cxr_anatomy",
        "gkmvlp_classification",
        "gkmvlp_localization",
        "gkmvlp_pretrain",
        "gkmvlp_report_generation",
        "gkmvlp_vqa",
    }
    assert expected <= set(BUNDLES), BUNDLES


# ------------------------------------------------------------------------------------------- fast tier
@pytest.mark.parametrize("bundle", BUNDLES)
def test_required_files(bundle: str) -> None:
    root = REPO / "bundles" / bundle
    for name in ("LICENSE", "configs/metadata.json", "configs/inference.json", "docs/README.md"):
        assert (root / name).is_file(), f"bundles/{bundle}: the model-zoo requires {name}"
    licence = (root / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0" in licence, (
        f"bundles/{bundle}/LICENSE: not Apache-2.0"
    )
    data_licence = (root / "docs" / "data_license.txt").read_text()
    for term in ("CC BY-NC-ND 4.0", "non-commercial", "torchxrayvision"):
        assert term in data_licence, f"bundles/{bundle}/docs/data_license.txt does not mention {term!r}"
    assert (root / "models" / "model.pt").is_file() or (root / "large_files.yml").is_file(), (
        f"bundles/{bundle}: neither models/model.pt nor a large_files.yml that names it"
    )


@pytest.mark.parametrize("bundle", BUNDLES)
def test_large_files_name_the_checkpoint_and_how_to_make_it(bundle: str) -> None:
    from monai.bundle import ConfigParser

    path = REPO / "bundles" / bundle / "large_files.yml"
    parser = ConfigParser()
    parser.read_config(str(path))  # how the model-zoo reads it (ci/utils.py download_large_files)
    entries = parser.get()["large_files"]
    assert isinstance(entries, list) and entries, f"{path}: no large_files list"
    for entry in entries:
        assert set(entry) <= {"path", "url", "hash_val", "hash_type"}, f"{path}: unknown keys in {entry}"
        assert isinstance(entry.get("path"), str) and isinstance(entry.get("url"), str), f"{path}: {entry}"
        assert entry.get("hash_type", "") in HASH_TYPES, f"{path}: hash_type of {entry['path']}"
        assert not entry.get("hash_val") or entry.get("hash_type"), f"{path}: hash_val without hash_type"
    assert "models/model.pt" in [e["path"] for e in entries], f"{path} does not name models/model.pt"
    if not all(e["url"] for e in entries):  # no download: the file says how to train the weights
        text = path.read_text()
        assert "python -m gkmvlp_monai.apps.demo" in text and "docs/README.md" in text, (
            f"{path}: a file without url must say how to produce it (the demo and the train command)"
        )


@pytest.mark.parametrize("bundle", BUNDLES)
def test_metadata_and_version(bundle: str) -> None:
    from monai.bundle import verify_metadata

    meta_file = REPO / "bundles" / bundle / "configs" / "metadata.json"
    verify_metadata(meta_file=str(meta_file), filepath=str(SCHEMA))
    meta = json.loads(meta_file.read_text())
    assert meta["version"] in meta["changelog"], (
        f"{meta_file}: version {meta['version']} not in the changelog"
    )
    newest = max(meta["changelog"], key=_version)
    assert meta["version"] == newest, f"{meta_file}: version {meta['version']}, changelog's newest {newest}"


@pytest.mark.parametrize("bundle", BUNDLES)
def test_inference_config_stands_alone(bundle: str) -> None:
    """The keys the model-zoo and MONAI's inference workflow need, in ``inference.json`` itself, with few
    expressions and no lambda."""
    path = REPO / "bundles" / bundle / "configs" / "inference.json"
    config = json.loads(path.read_text())
    missing = [k for k in INFERENCE_KEYS if k not in config]
    assert not missing, f"{path}: missing {missing}"
    expressions = [
        s for s in _strings({k: v for k, v in config.items() if k != "imports"}) if s.startswith("$")
    ]
    assert not [s for s in expressions if "lambda" in s], f"{path}: lambdas"
    assert len(expressions) <= MAX_EXPRESSIONS, f"{path}: {len(expressions)} $ expressions: {expressions}"


@pytest.mark.parametrize("bundle", BUNDLES)
def test_network_def_builds_from_inference_json_alone(bundle: str, tmp_path: Path) -> None:
    """``verify_net_in_out`` on a copy of the bundle: no data set, no models folder, no train.json."""
    from monai.bundle import verify_net_in_out

    root = _copy(bundle, tmp_path)
    (root / "configs" / "train.json").unlink()
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(root / "configs" / "metadata.json"),
        config_file=str(root / "configs" / "inference.json"),
        device="cpu",
        bundle_root=str(root),
        **_tiny(bundle),
    )


@pytest.mark.parametrize("bundle", BUNDLES)
def test_model_card_export_command(bundle: str) -> None:
    """The card exports ``network_def`` of ``inference.json``: traced where scripting is impossible (and
    says so under Limitations), scripted, the model-zoo default, elsewhere."""
    command = _export_command(bundle)
    assert "--config_file configs/inference.json" in command and "ckpt_export network_def" in command, command
    if bundle in TRACE_ONLY:
        assert "--use_trace True" in command, command
        card = (REPO / "bundles" / bundle / "docs" / "README.md").read_text()
        limitations = card.split("## Limitations", 1)[-1].split("\n## ", 1)[0]
        assert "TorchScript" in limitations and "--use_trace True" in limitations, (
            f"bundles/{bundle}/docs/README.md: Limitations must say why the export is traced"
        )
    else:
        assert "--use_trace" not in command, command


# ------------------------------------------------------------------- what inference.json relies on
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


def test_vqa_network_def_loads_a_checkpoint_of_any_answer_vocabulary() -> None:
    """``build_presence_predictor`` (VQA's ``network_def``) needs no answer set: a trained network's
    checkpoint, here with 5 answers, loads strictly and answers as the wrapper of that network does."""
    from gkmvlp_monai.core import vocab
    from gkmvlp_monai.tasks.vqa.model import (
        VQAPresencePredictor,
        build_presence_predictor,
        build_vqa,
        default_region_boxes,
        presence_questions,
    )

    torch.manual_seed(0)
    trained = build_vqa(5, size="tiny", entity_descriptions=vocab.entity_descriptions(), image_size=64)
    questions = presence_questions(vocab.label_set("chexpert14"))
    reference = VQAPresencePredictor(trained, questions, default_region_boxes(64), 64).eval()
    network_def = build_presence_predictor(size="tiny", image_size=64)
    network_def.load_state_dict(trained.state_dict())  # strict
    network_def.eval()
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(network_def(x), reference(x))
    assert network_def(x).shape == (2, 13)


def test_inference_helpers_give_what_the_expressions_they_replace_gave(tmp_path: Path) -> None:
    from bundle_helpers import build_chexpert_datalist

    from gkmvlp_monai.data.datalist import load_datalist
    from gkmvlp_monai.engine.ood import lateral_policy, trained_frontal_only
    from gkmvlp_monai.tasks.anatomy.predictions import atlas_if_present, image_batch
    from gkmvlp_monai.tasks.classification.engine import inference_items as classification_items
    from gkmvlp_monai.tasks.pretrain.predictions import inference_items as pretrain_items
    from gkmvlp_monai.tasks.pretrain.predictions import items_from_folder
    from gkmvlp_monai.tasks.report_generation.engine import evaluation_items, with_ids
    from gkmvlp_monai.tasks.report_generation.engine import inference_items as report_items

    datalist = build_chexpert_datalist(tmp_path)
    for policy in ("flag", "refuse"):
        stats = tmp_path / "ood_stats.npz"
        assert lateral_policy(stats, policy) == (policy if trained_frontal_only(stats) else "accept")
    assert pretrain_items(datalist, "test") == load_datalist(datalist, "test")
    assert pretrain_items(datalist, "test", str(tmp_path)) == items_from_folder(str(tmp_path))
    old = [{"image": it["image"], "view": it.get("view", "")} for it in load_datalist(datalist, "test")]
    assert classification_items(datalist, "test") == old
    assert report_items(datalist, "test", 2) == evaluation_items(datalist, "test", 2)
    assert report_items(None, "test", None, str(tmp_path)) == with_ids(items_from_folder(str(tmp_path)))
    assert atlas_if_present(tmp_path / "atlas.npz") is None
    batch = {"image": torch.zeros(1, 1, 4, 4)}
    assert image_batch(batch, torch.device("cpu")) == (batch["image"], None)


def test_classification_inference_warns_when_the_datalist_names_other_classes(tmp_path: Path, caplog) -> None:
    """The class names come from inference.json (label_set), not the data: a datalist that names other
    classes is said, since a checkpoint trained on those would otherwise be written under wrong names."""
    from bundle_helpers import build_chexpert_datalist

    from gkmvlp_monai.core.vocab import label_set
    from gkmvlp_monai.tasks.classification.engine import inference_items

    datalist = build_chexpert_datalist(tmp_path)  # CheXpert-14 names
    with caplog.at_level("WARNING"):
        inference_items(datalist, "test", label_set("chexpert14"))
        assert not caplog.records
        inference_items(datalist, "test", label_set("nih14"))
    assert len(caplog.records) == 1 and "--label_set" in caplog.records[0].getMessage()


# ------------------------------------------------------------------------------------------- slow tier
@pytest.mark.slow
@pytest.mark.parametrize("bundle", BUNDLES)
def test_model_zoo_verify_steps_at_the_default_settings(bundle: str, tmp_path: Path) -> None:
    """The model-zoo's full verification of a copy of the bundle, at its default (largest) settings:
    fake weights from a freshly built ``network_def``, ``verify_net_in_out`` and ``ckpt_export`` on
    ``inference.json`` alone, the TorchScript module loaded back and compared with the eager network."""
    from monai.bundle import ConfigParser, ckpt_export, verify_metadata, verify_net_in_out

    root = _copy(bundle, tmp_path)
    meta_file, config_file = root / "configs" / "metadata.json", root / "configs" / "inference.json"
    verify_metadata(meta_file=str(meta_file), filepath=str(SCHEMA))
    # the model-zoo helper's fake weights (ci/verify_bundle.py _produce_fake_weights), for the url-less
    # models/model.pt of large_files.yml
    parser = ConfigParser()
    parser.read_config(str(config_file))
    parser.read_meta(str(meta_file))
    parser["bundle_root"] = str(root)
    torch.manual_seed(0)
    network = parser.get_parsed_content("network_def")
    (root / "models").mkdir()
    ckpt = root / "models" / "model.pt"
    torch.save(network.state_dict(), ckpt)
    common = dict(meta_file=str(meta_file), config_file=str(config_file), bundle_root=str(root))
    verify_net_in_out(net_id="network_def", device="cpu", **common)

    shape = json.loads(meta_file.read_text())["network_data_format"]["inputs"]["image"]["spatial_shape"]
    trace: dict = {}
    if bundle in TRACE_ONLY:
        with pytest.raises((OSError, RuntimeError)):  # what the model card's Limitations say
            torch.jit.script(network)
        trace = dict(use_trace=True, input_shape=[1, 1, *shape])
    shorter: dict = {}
    if bundle == "gkmvlp_report_generation":  # 100 traced decoding steps of the base decoder take minutes
        shorter = {"export_max_length": 8, "_meta_#network_data_format#outputs#pred#num_channels": 8}
    ts_file = root / "models" / "verify_model.ts"
    ckpt_export(
        net_id="network_def", filepath=str(ts_file), ckpt_file=str(ckpt), **common, **trace, **shorter
    )

    exported = torch.jit.load(str(ts_file))
    parser = ConfigParser()
    parser.read_config(str(config_file))
    parser.update({"bundle_root": str(root), **{k: v for k, v in shorter.items() if not k.startswith("_")}})
    eager = parser.get_parsed_content("network_def")
    eager.load_state_dict(torch.load(ckpt, weights_only=True))
    eager.eval()
    x = torch.rand(1, 1, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(exported(x), eager(x), atol=1e-4, rtol=1e-4)
