"""Classification heads on tiny inputs, the zero-shot label mapping, and the data path (datalist -> batch)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gkmvlp_monai.models.image import ImageEncoder
from gkmvlp_monai.tasks.classification.engine import ClassificationLabeld, training_items
from gkmvlp_monai.tasks.classification.model import GKMVLPClassifier, ZeroShotClassifier, build_classifier


def _encoder() -> ImageEncoder:
    torch.manual_seed(0)
    return ImageEncoder("resnet_tiny", in_channels=1, img_size=64)


def _step(model: torch.nn.Module, x: torch.Tensor) -> None:
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.train()
    loss = model(x).square().mean()
    loss.backward()
    opt.step()


def test_linear_probe_trains_only_the_head():
    model = GKMVLPClassifier(_encoder(), num_classes=3, mode="linear_probe")
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}  # includes BN running stats
    head = model.head.weight.clone()
    _step(model, torch.rand(4, 1, 64, 64))
    assert model.training and not model.encoder.training
    assert all(torch.equal(before[k], v) for k, v in model.encoder.state_dict().items())
    assert not torch.equal(head, model.head.weight)
    assert all(not p.requires_grad for p in model.encoder.parameters())


def test_finetune_trains_the_encoder_too():
    model = GKMVLPClassifier(_encoder(), num_classes=3, mode="finetune")
    before = {k: v.clone() for k, v in model.encoder.named_parameters()}
    _step(model, torch.rand(4, 1, 64, 64))
    assert any(not torch.equal(before[k], p) for k, p in model.encoder.named_parameters())
    assert model(torch.rand(2, 1, 64, 64)).shape == (2, 3)


def test_classifier_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        GKMVLPClassifier(_encoder(), 3, mode="probe")
    with pytest.raises(ValueError, match="num_classes"):
        GKMVLPClassifier(_encoder(), 0)


def test_build_classifier_loads_the_pretrained_image_encoder(tmp_path):
    src = _encoder()
    ckpt = tmp_path / "model.pt"
    torch.save(
        {f"image_encoder.{k}": v for k, v in src.state_dict().items()} | {"text_proj.weight": torch.ones(2)},
        ckpt,
    )
    model = build_classifier(5, size="tiny", image_size=64, mode="linear_probe", pretrained_ckpt=str(ckpt))
    assert all(torch.equal(v, model.encoder.state_dict()[k]) for k, v in src.state_dict().items())
    scratch = build_classifier(5, size="tiny", image_size=64, pretrained_ckpt="scratch")  # CLI spelling
    assert any(
        not torch.equal(v, scratch.encoder.state_dict()[k])
        for k, v in src.state_dict().items()
        if v.is_floating_point()
    )
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        build_classifier(5, size="tiny", image_size=64, pretrained_ckpt=str(tmp_path / "missing.pt"))


class _FakeGKMVLP(torch.nn.Module):
    """Stands in for GKMVLP: entity "present" probability = fixed per-entity values."""

    def __init__(self, present: torch.Tensor) -> None:
        super().__init__()
        self.num_entities = present.numel()
        self.region_pool = torch.nn.Module()
        self.region_pool.type_embed = torch.nn.Embedding(29, 2)
        self.present = present
        self.seen_mask = None

    def entity_scores(self, image, region_boxes, region_mask):
        self.seen_mask = region_mask
        b = image.shape[0]
        p = self.present.expand(b, -1)
        return torch.stack([1 - p, p, torch.zeros_like(p)], -1), None


def test_zero_shot_scores_a_label_by_its_entities():
    from gkmvlp_monai.core import vocab

    names = vocab.entity_names()
    present = torch.zeros(len(names))
    mapping = vocab.label_entities("chexpert14")
    ents = mapping["Pleural Effusion"]
    present[names.index(ents[0])] = 0.3
    present[names.index(ents[-1])] = 0.8
    fake = _FakeGKMVLP(present)
    zs = ZeroShotClassifier(fake, ["Pleural Effusion", "Pneumothorax"], "chexpert14")
    out = zs(torch.zeros(2, 1, 8, 8))
    assert out.shape == (2, 2)
    assert out[0, 0] == pytest.approx(0.8) and out[0, 1] == 0.0
    assert not fake.seen_mask.any()  # no boxes given: every region marked absent
    mean = ZeroShotClassifier(fake, ["Pleural Effusion"], "chexpert14", reduce="mean")(
        torch.zeros(1, 1, 8, 8)
    )
    assert mean[0, 0] == pytest.approx(1.1 / len(ents))
    with pytest.raises(ValueError, match="not in label set"):
        ZeroShotClassifier(fake, ["Pleural Effusion", "Made Up"], "chexpert14")
    with pytest.raises(ValueError, match="covidx"):
        ZeroShotClassifier(fake, ["COVID-19"], "covidx")


def _tiny_datalist(tmp_path, n_train: int = 10) -> str:
    rng = np.random.default_rng(0)
    doc = {"name": "tiny", "label_names": ["a", "b", "c"], "label_type": "multilabel", "seed": 0}
    for split, n in (("training", n_train), ("validation", 3), ("test", 3)):
        items = []
        for i in range(n):
            f = tmp_path / f"{split}_{i}.png"
            Image.fromarray(rng.integers(0, 255, (40, 50), dtype=np.uint8)).save(f)
            items.append({"image": f.name, "label": [1, -1, 0] if i % 2 else [0, 0, 1]})
        doc[split] = items
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_data_path_from_datalist_to_batch(tmp_path):
    from monai.transforms import Compose, SelectItemsd
    from torch.utils.data import DataLoader

    from gkmvlp_monai.data.dataset import collate_skip_bad, make_dataset
    from gkmvlp_monai.transforms import cxr_transforms

    datalist = _tiny_datalist(tmp_path)
    items = training_items(datalist, 1.0)
    transforms = Compose(
        [
            cxr_transforms(32, train=True),
            ClassificationLabeld("label", num_classes=3),
            SelectItemsd(["image", "label", "region_boxes", "region_mask"]),
        ]
    )
    ds = make_dataset(items, transforms, cache="none")
    batch = next(iter(DataLoader(ds, batch_size=4, collate_fn=collate_skip_bad)))
    assert batch["image"].shape == (4, 1, 32, 32) and batch["image"].dtype == torch.float32
    assert 0.0 <= float(batch["image"].min()) and float(batch["image"].max()) <= 1.0
    assert batch["label"].shape == (4, 3) and batch["label"][1].tolist() == [1.0, -1.0, 0.0]
    assert batch["region_boxes"].shape == (4, 29, 4) and not batch["region_mask"].any()


def test_training_fraction_without_datalist_keys_is_nested_and_deterministic(tmp_path):
    datalist = _tiny_datalist(tmp_path, n_train=20)
    ten = training_items(datalist, 0.1)
    half = training_items(datalist, 0.5)
    assert 0 < len(ten) < len(half) < 20 and len(training_items(datalist, 1.0)) == 20
    assert {i["image"] for i in ten} <= {i["image"] for i in half}
    assert [i["image"] for i in training_items(datalist, 0.1)] == [i["image"] for i in ten]
    doc = json.loads(open(datalist).read())
    doc["training_10pct"] = doc["training"][-2:]  # an adapter-written key wins
    open(datalist, "w").write(json.dumps(doc))
    assert [i["image"] for i in training_items(datalist, 0.1)] == [
        i["image"] for i in training_items(datalist, 1.0)[-2:]
    ]
    with pytest.raises(ValueError, match="fraction"):
        training_items(datalist, 0.0)
