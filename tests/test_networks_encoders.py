"""Image and text encoders, report tokenisation, knowledge encoder."""

from __future__ import annotations

import pytest
import torch

from gkmvlp_monai.models.image import ImageEncoder
from gkmvlp_monai.models.knowledge import KnowledgeEncoder
from gkmvlp_monai.models.text import TextEncoder, TokenizeReportd, load_tokenizer, tiny_bert_config


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


@pytest.mark.parametrize(("arch", "grid"), [("resnet_tiny", 2), ("vit_tiny", 4)])
def test_image_encoder_shapes(arch, grid):
    enc = ImageEncoder(arch, img_size=64)
    fmap, glob = enc(torch.rand(2, 1, 64, 64))
    assert fmap.shape == (2, enc.out_channels, grid, grid)
    assert glob.shape == (2, enc.out_channels)


def test_resnet50_width_and_stride():
    enc = ImageEncoder("resnet50")
    assert enc.out_channels == 2048
    with torch.no_grad():
        fmap, _ = enc.eval()(torch.rand(1, 1, 64, 64))
    assert fmap.shape == (1, 2048, 2, 2)


def test_vit_feature_map_keeps_spatial_order():
    enc = ImageEncoder("vit_tiny", img_size=64).eval()
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        tokens, _ = enc.backbone(x)
        fmap, _ = enc(x)
    # token k = patch (k // 4, k % 4): first index along dim -2
    torch.testing.assert_close(fmap[0, :, 1, 2], tokens[0, 1 * 4 + 2])


def test_image_encoder_loads_local_weights(tmp_path):
    torch.manual_seed(0)
    src = ImageEncoder("resnet_tiny").eval()
    path = tmp_path / "w.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in src.backbone.state_dict().items()}}, path)
    torch.manual_seed(1)
    dst = ImageEncoder("resnet_tiny", weights_path=str(path)).eval()
    x = torch.rand(1, 1, 64, 64)
    torch.testing.assert_close(dst(x)[1], src(x)[1])


def test_unknown_arch_raises():
    with pytest.raises(ValueError, match="unknown image encoder"):
        ImageEncoder("resnet9000")


def test_text_encoder_pooling(tokenizer):
    torch.manual_seed(0)
    enc = TextEncoder(config=tiny_bert_config()).eval()
    batch = tokenizer(
        ["no effusion", "heart size is normal today"],
        padding="max_length",
        max_length=12,
        return_tensors="pt",
    )
    tokens, pooled = enc(batch["input_ids"], batch["attention_mask"])
    assert tokens.shape == (2, 12, 32) and pooled.shape == (2, 32)
    m = batch["attention_mask"][0].bool()
    torch.testing.assert_close(pooled[0], tokens[0][m].mean(0))
    cls = TextEncoder(config=tiny_bert_config(), pooling="cls").eval()
    assert torch.equal(
        cls(batch["input_ids"], batch["attention_mask"])[1], cls.model(**batch).last_hidden_state[:, 0]
    )


def test_tokenize_reportd(tokenizer):
    t = TokenizeReportd("report", tokenizer=tokenizer, max_length=12)
    out = t({"report": "No pleural effusion.", "image": "x.png"})
    assert out["input_ids"].shape == (12,) and out["input_ids"].dtype == torch.int64
    assert out["input_ids"][0] == tokenizer.cls_token_id
    assert out["attention_mask"].sum() == 10 and out["input_ids"][9] == tokenizer.sep_token_id
    assert out["image"] == "x.png"
    empty = t({"report": None})
    assert empty["attention_mask"].sum() == 2
    lazy = TokenizeReportd("report", max_length=12)  # default MiniLM tokenizer loaded on first use
    assert torch.equal(lazy({"report": "No pleural effusion."})["input_ids"], out["input_ids"])
    with pytest.raises(KeyError):
        t({"image": "x.png"})


def test_knowledge_encoder_cached_vs_trainable(tokenizer):
    torch.manual_seed(0)
    text = TextEncoder(config=tiny_bert_config())
    descs = ["effusion: fluid in the pleural space", "cardiomegaly: enlarged cardiac silhouette"]
    frozen = KnowledgeEncoder(text, descs, tokenizer, dim=16, trainable=False, max_length=16)
    emb = frozen()
    assert emb.shape == (2, 16)
    probe = torch.randn(2, 16)  # (a plain sum of LayerNorm outputs has zero gradient)
    (emb * probe).sum().backward()
    assert all(p.grad is None for p in text.parameters())  # cached: no gradient to the text encoder
    assert frozen.proj.weight.grad is not None
    assert not any(n.startswith("text_encoder") for n in frozen.state_dict())
    trainable = KnowledgeEncoder(text, descs, tokenizer, dim=16, trainable=True, max_length=16)
    (trainable() * probe).sum().backward()
    assert text.model.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    # the cache equals an eval-mode encoding
    text.eval()
    _, pooled = text(frozen.desc_ids, frozen.desc_mask)
    torch.testing.assert_close(frozen.cached, pooled)


def test_text_encoder_truncation_and_freezing():
    from gkmvlp_monai.models.text import TextEncoder, tiny_bert_config

    enc = TextEncoder(config=tiny_bert_config(), num_layers=1, trainable_layers=0)
    assert len(enc.model.encoder.layer) == 1
    assert not any(p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.training  # a frozen encoder stays in eval mode
    ids = torch.randint(5, 100, (2, 6))
    tokens, pooled = enc(ids, torch.ones_like(ids))
    assert not tokens.requires_grad and pooled.shape[0] == 2
    top = TextEncoder(config=tiny_bert_config(), trainable_layers=1)
    trainable = [n for n, p in top.named_parameters() if p.requires_grad]
    last = len(top.model.encoder.layer) - 1
    assert trainable and all(f"encoder.layer.{last}." in n for n in trainable)
    with pytest.raises(ValueError, match="num_layers"):
        TextEncoder(config=tiny_bert_config(), num_layers=99)
