"""Supervised reference for the zero-shot AUC: a ResNet trained directly on iu-synth's drawn findings.

The pre-training's zero-shot figure (macro AUC over the 8 abnormal findings drawn most often in the test
split) is bounded by what the image encoder can see at the demo's size and budget. This trains the same
backbone (``ImageEncoder``) with the complete drawn labels of the training split (every undrawn finding a
negative) and an attention-pooling multi-label head, and prints the test macro AUC of those 8 findings
after every epoch. Images are decoded once to 256 px and kept in memory (``--cache``).

    python bench/supervised_ceiling.py --data data/iu-synth --size 128 --stride 32 --epochs 4

Measured (2026-11-23, 2 CPU cores; pre-training model card): 128 px 0.767 after 4 epochs (1 min each),
stride 16 0.752; granuloma and degenerative spine stay near 0.55 at 128 px.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from gkmvlp_monai.core.vocab import entities
from gkmvlp_monai.engine.metrics import masked_multilabel_auc
from gkmvlp_monai.models.image import ImageEncoder


def load_split(root: Path, items: list[dict], side: int = 256) -> np.ndarray:
    """``[N, side, side]`` uint8 images of the items' PNG renderings."""
    key = "image_png" if "image_png" in items[0] else "image"
    return np.stack(
        [
            np.asarray(Image.open(root / t[key]).convert("L").resize((side, side), Image.BILINEAR))
            for t in items
        ]
    )


class AttentionPoolClassifier(nn.Module):
    """Image encoder + one learned query per class attending over the feature map + per-class linear."""

    def __init__(self, encoder: ImageEncoder, num_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        c = encoder.out_channels
        self.query = nn.Parameter(torch.randn(num_classes, c) * 0.02)
        self.weight = nn.Parameter(torch.randn(num_classes, c) * 0.02)
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmap, _ = self.encoder(x)
        tokens = fmap.flatten(2).transpose(1, 2)  # [B, N, C]
        attn = torch.softmax(tokens @ self.query.t() / tokens.shape[-1] ** 0.5, dim=1)  # [B, N, K]
        pooled = torch.einsum("bnk,bnc->bkc", attn, tokens)
        return (pooled * self.weight).sum(-1) + self.bias


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="data/iu-synth")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--stride", type=int, default=32, choices=[16, 32], help="ResNet output stride")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--top-k", type=int, default=8)
    p.add_argument(
        "--cache", default=None, help="npz of decoded 256-px images (default <data>/.ceiling256.npz)"
    )
    a = p.parse_args(argv)
    torch.manual_seed(0)
    root = Path(a.data)
    dl = json.loads((root / "datalist.json").read_text())
    cache = Path(a.cache or root / ".ceiling256.npz")
    if not cache.is_file():
        np.savez(cache, training=load_split(root, dl["training"]), test=load_split(root, dl["test"]))
    arrays = np.load(cache)
    names = [e.name for e in entities()]
    abnormal = [e.name for e in entities() if e.kind == "abnormal"]

    def labels(split: str) -> np.ndarray:
        y = np.zeros((len(dl[split]), len(names)), np.float32)
        for i, t in enumerate(dl[split]):
            for lab in t.get("lesion_labels", []):
                y[i, names.index(lab)] = 1
        return y

    y_train, y_test = labels("training"), labels("test")
    counts = y_test.sum(0)
    top = sorted(abnormal, key=lambda n: -counts[names.index(n)])[: a.top_k]
    encoder = ImageEncoder(a.arch)
    if a.stride == 16:  # layer4 without its stride-2 downsampling
        block = encoder.backbone.layer4[0]
        block.conv1.stride = (1, 1)
        if block.downsample is not None:
            block.downsample[0].stride = (1, 1)
    model = AttentionPoolClassifier(encoder, len(names))
    opt = torch.optim.AdamW(model.parameters(), a.lr, weight_decay=0.05)
    n = len(y_train)
    steps = a.epochs * (n // a.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, a.lr, total_steps=steps, pct_start=0.1)

    def batch(x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(x).float().div(255).unsqueeze(1)
        return F.interpolate(t, size=(a.size, a.size), mode="bilinear", antialias=True, align_corners=False)

    result: dict[str, float] = {}
    t0 = time.time()
    for epoch in range(a.epochs):
        model.train()
        perm = np.random.RandomState(epoch).permutation(n)
        for i in range(n // a.batch_size):
            idx = np.sort(perm[i * a.batch_size : (i + 1) * a.batch_size])
            loss = F.binary_cross_entropy_with_logits(
                model(batch(arrays["training"][idx])), torch.from_numpy(y_train[idx])
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            probs = torch.cat(
                [torch.sigmoid(model(batch(arrays["test"][i : i + 64]))) for i in range(0, len(y_test), 64)]
            )
        cols = [names.index(k) for k in top]
        aucs = masked_multilabel_auc(probs[:, cols], torch.from_numpy(y_test[:, cols]))
        result = {k: float(v) for k, v in zip(top, aucs) if v is not None}
        macro = float(np.mean(list(result.values())))
        print(
            f"epoch {epoch + 1} ({time.time() - t0:.0f} s): top-{a.top_k} macro AUC {macro:.3f} "
            + " ".join(f"{k} {v:.3f}" for k, v in result.items()),
            flush=True,
        )
        result["macro"] = macro
    return result


if __name__ == "__main__":
    main()
