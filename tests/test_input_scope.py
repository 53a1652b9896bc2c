"""Inputs kept in scope, on real DICOM files from the project's writer: a radiograph of another body part
is refused and counted (or flagged with ``allow_non_chest``), laterals of a frontal-only model are
flagged, and every prediction record carries view, training domain and OOD score."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_helpers import bundle_cmd, overrides

from gkmvlp_monai.data.dataset import collate_skip_bad, make_dataset
from gkmvlp_monai.data.dicom_writer import write_cxr_dicom
from gkmvlp_monai.data.synth.phantom import chest_phantom
from gkmvlp_monai.transforms import cxr_transforms

SIZE = 64


def _picture(seed: int) -> np.ndarray:
    """A 12-bit ``80 x 72`` (rows x cols) chest phantom."""
    return np.ascontiguousarray(np.round(chest_phantom(72, 80, seed=seed)[0].T * 4095).astype(np.uint16))


def _write_inputs(folder: Path) -> dict[str, Path]:
    return {
        "chest": write_cxr_dicom(folder / "chest_pa.dcm", _picture(0), modality="CR", view_position="PA"),
        "lateral": write_cxr_dicom(folder / "chest_ll.dcm", _picture(1), modality="CR", view_position="LL"),
        "hand": write_cxr_dicom(
            folder / "hand.dcm", _picture(2), modality="CR", body_part="EXTREMITY", view_position="PA"
        ),
        "ct": write_cxr_dicom(folder / "ct.dcm", _picture(3), modality="CT"),
    }


def test_non_chest_is_skipped_and_counted_like_other_modalities(tmp_path):
    files = _write_inputs(tmp_path)
    ds = make_dataset([{"image": str(p)} for p in files.values()], cxr_transforms(SIZE, with_boxes=False))
    batch = collate_skip_bad([ds[i] for i in range(len(ds))])
    assert batch["skipped_samples"] == 2
    assert sorted(Path(f).name for f in batch["skipped_files"]) == ["ct.dcm", "hand.dcm"]
    flagged = make_dataset(
        [{"image": str(files["hand"])}], cxr_transforms(SIZE, with_boxes=False, allow_non_chest=True)
    )
    meta = flagged[0]["image"].meta
    assert meta["in_scope"] is False and "'EXTREMITY'" in meta["scope_reason"]


def _tiny_checkpoint(tmp_path: Path, files: dict[str, Path], with_stats: bool = True) -> Path:
    from monai.transforms import Compose, SelectItemsd

    from gkmvlp_monai.core import vocab
    from gkmvlp_monai.engine.ood import OODStatsHandler
    from gkmvlp_monai.models import build_gkmvlp

    torch.manual_seed(0)
    net = build_gkmvlp("tiny", [e.description for e in vocab.entities()], image_size=SIZE)
    models = tmp_path / "models"
    models.mkdir()
    torch.save(net.state_dict(), models / "model.pt")
    if with_stats:
        train = [
            {"image": str(write_cxr_dicom(tmp_path / "train" / f"t{i}.dcm", _picture(10 + i))), "view": "PA"}
            for i in range(8)
        ]
        held = [
            {"image": str(write_cxr_dicom(tmp_path / "held" / f"h{i}.dcm", _picture(30 + i)))}
            for i in range(4)
        ]
        datalist = tmp_path / "datalist.json"
        datalist.write_text(json.dumps({"name": "tiny-phantoms", "description": "chest phantoms"}))
        transform = Compose([cxr_transforms(SIZE, with_boxes=False), SelectItemsd(keys=["image"])])
        handler = OODStatsHandler(
            net,
            train,
            held,
            transform,
            str(models / "ood_stats.npz"),
            str(datalist),
            str(models / "model.pt"),
        )
        assert handler() is not None
    return models


def _infer(bundle: str, models: Path, output_dir: Path, **kw: object) -> dict:
    """Run ``bundle``'s inference.json at the tiny setting; return its predictions.json."""
    settings = dict(model_size="tiny", image_size=SIZE, num_workers=0, batch_size=4, **kw)
    args = overrides(**settings, ckpt_dir=str(models), output_dir=str(output_dir))
    bundle_cmd(bundle, ["run", "--config_file", "configs/inference.json", *args])
    return json.loads((output_dir / "predictions.json").read_text())


@pytest.mark.slow
def test_pretrain_inference_records_scope_view_domain_and_ood(tmp_path):
    images = tmp_path / "images"
    files = _write_inputs(images)
    models = _tiny_checkpoint(tmp_path, files)

    pred = _infer("gkmvlp_pretrain", models, tmp_path / "default", image_dir=str(images))
    assert pred["skipped_samples"] == 2  # the CR EXTREMITY image and the CT, refused and counted
    rows = {Path(r["image"]).name: r for r in pred["images"]}
    assert set(rows) == {"chest_pa.dcm", "chest_ll.dcm"}
    for r in rows.values():
        assert {"view", "in_scope", "training_domain", "ood_score", "ood_percentile", "ood"} <= set(r)
        assert r["training_domain"] == "tiny-phantoms" and isinstance(r["ood"], bool)
        assert r["ood_score"] > 0 and 0 <= r["ood_percentile"] <= 100
    assert rows["chest_pa.dcm"]["view"] == "PA" and rows["chest_pa.dcm"]["in_scope"] is True
    lateral = rows["chest_ll.dcm"]
    assert lateral["view"] == "LL" and lateral["in_scope"] is False
    assert lateral["scope_reason"] == "lateral view; model trained on frontal views"
    assert pred["training_domain"] == "tiny-phantoms" and pred["ood_threshold_percentile"] == 99.0
    assert pred["out_of_scope"] == 1

    pred = _infer(
        "gkmvlp_pretrain", models, tmp_path / "allowed", image_dir=str(images), allow_non_chest=True
    )
    assert pred["skipped_samples"] == 1  # the CT only
    hand = next(r for r in pred["images"] if r["image"].endswith("hand.dcm"))
    assert hand["in_scope"] is False and hand["body_part"] == "EXTREMITY"
    assert "BodyPartExamined is 'EXTREMITY', not the chest" in hand["scope_reason"]

    # a checkpoint from before the statistics existed: ood null with the reason, inference still runs
    (models / "ood_stats.npz").unlink()
    pred = _infer("gkmvlp_pretrain", models, tmp_path / "old", image_dir=str(images))
    assert pred["images"] and all(r["ood"] is None and r["ood_score"] is None for r in pred["images"])
    assert "no OOD statistics" in pred["images"][0]["ood_reason"]


@pytest.mark.slow
def test_classification_inference_writes_scope_and_ood_records(tmp_path):
    from monai.transforms import Compose, SelectItemsd
    from PIL import Image

    from gkmvlp_monai.core.vocab import label_set
    from gkmvlp_monai.engine.ood import OODStatsHandler
    from gkmvlp_monai.tasks.classification.model import build_classifier

    images = tmp_path / "images"
    files = _write_inputs(images)
    png = images / "lateral.png"
    Image.fromarray((_picture(5) // 16).astype(np.uint8)).save(png)
    names = label_set("chexpert14")
    test = [
        {"image": str(files[k]), "view": "", "label": [0.0] * len(names)}
        for k in ("chest", "lateral", "hand")
    ]
    test.append({"image": str(png), "view": "LATERAL", "label": [0.0] * len(names)})
    train = [
        {"image": str(write_cxr_dicom(tmp_path / "train" / f"t{i}.dcm", _picture(10 + i))), "view": "PA"}
        for i in range(8)
    ]
    datalist = tmp_path / "datalist.json"
    doc = {"name": "tiny-cls", "description": "phantoms", "label_names": names, "label_type": "multilabel"}
    datalist.write_text(json.dumps({**doc, "training": train, "validation": train[:4], "test": test}))
    torch.manual_seed(0)
    net = build_classifier(len(names), size="tiny", image_size=SIZE)
    models = tmp_path / "models"
    models.mkdir()
    torch.save(net.state_dict(), models / "model.pt")
    transform = Compose([cxr_transforms(SIZE, with_boxes=False), SelectItemsd(keys=["image"])])
    OODStatsHandler(
        net,
        train,
        train[:4],
        transform,
        str(models / "ood_stats.npz"),
        str(datalist),
        str(models / "model.pt"),
    )()

    pred = _infer("gkmvlp_classification", models, tmp_path / "infer", datalist_file=str(datalist))
    assert pred["skipped_samples"] == 1 and pred["training_domain"] == "tiny-cls"  # the CR EXTREMITY image
    rows = {Path(r["image"]).name: r for r in pred["images"]}
    assert set(rows) == {"chest_pa.dcm", "chest_ll.dcm", "lateral.png"}
    assert rows["chest_pa.dcm"]["in_scope"] is True and rows["chest_pa.dcm"]["view"] == "PA"
    assert rows["lateral.png"]["view"] == "LATERAL" and rows["lateral.png"]["in_scope"] is False
    for r in rows.values():
        assert set(r["scores"]) == set(names) and isinstance(r["ood"], bool) and r["ood_score"] > 0
    header = (tmp_path / "infer" / "predictions.csv").read_text().splitlines()[0].split(",")
    assert header[: 1 + len(names)] == ["image", *names] and header[-1] == "ood"
