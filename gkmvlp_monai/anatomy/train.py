"""Training and evaluation helpers for :class:`~gkmvlp_monai.anatomy.model.RegionBoxNet`.

Samples are letterboxed pictures with boxes normalised to the square frame. Augmentation: random zoom
(0.85-1.15) and shift (+-8 %) of the square frame (boxes follow exactly), gamma and contrast; and, with
probability ``negative_prob``, a *negative* sample (noise, blank, smooth random field or the picture
rotated by 90 degrees, a crude stand-in for a non-frontal view) whose confidence target is 0. No
left-right flips (laterality is knowledge).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gkmvlp_monai.anatomy.boxes import box_iou_paired, boxes_from_dict, letterbox
from gkmvlp_monai.anatomy.model import RegionBoxLoss, RegionBoxNet

__all__ = ["prepare_sample", "augment_batch", "train_region_model", "evaluate_region_boxes", "load_items"]


def load_items(
    items: Sequence[Mapping], base_dir: str | os.PathLike | None = None
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, str]]:
    """Load datalist items as ``(picture [W, H], boxes [29, 4], mask [29], path)`` in original pixels."""
    from gkmvlp_monai.transforms.io import LoadCXRImage

    loader = LoadCXRImage()
    out = []
    for it in items:
        path = Path(it["image"])
        if base_dir is not None and not path.is_absolute():
            path = Path(base_dir) / path
        img = np.asarray(loader(path).as_tensor()[0], dtype=np.float32)
        boxes, mask = boxes_from_dict(it.get("region_boxes"))
        out.append((img, boxes, mask, str(path)))
    return out


def prepare_sample(
    image: np.ndarray | torch.Tensor, boxes: np.ndarray, mask: np.ndarray, size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Letterbox a picture and normalise its boxes.

    Args:
        image: ``[W, H]`` or ``[1, W, H]`` picture.
        boxes: ``[29, 4]`` boxes in picture pixels.
        mask: ``[29]`` bools.
        size: square side.

    Returns:
        ``(image [1, S, S], boxes [29, 4] in [0, 1], mask [29])``.
    """
    sq, lb = letterbox(image, size)
    nb = torch.as_tensor(lb.to_square(boxes) / size, dtype=torch.float32)
    return sq, nb, torch.as_tensor(mask, dtype=torch.bool)


def augment_batch(
    images: torch.Tensor, boxes: torch.Tensor, generator: torch.Generator, negative_prob: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random zoom/shift (boxes follow), gamma/contrast, and negatives.

    Args:
        images: ``[B, 1, S, S]``.
        boxes: ``[B, R, 4]`` normalised.
        generator: torch RNG.
        negative_prob: probability of replacing a sample by a non-chest picture.

    Returns:
        ``(images, boxes, negative [B] bool)``.
    """
    b = images.shape[0]
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(b, generator=generator)  # noqa: E731
    zoom, tx, ty = u(0.85, 1.15), u(-0.08, 0.08), u(-0.08, 0.08)
    # output normalised coord p in [-1, 1] samples input at (p - t) / zoom; along dims (x=-2, y=-1)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = 1 / zoom
    theta[:, 1, 1] = 1 / zoom
    theta[:, 0, 2] = -ty / zoom  # grid's last coordinate indexes the last tensor dim (y)
    theta[:, 1, 2] = -tx / zoom
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # box coordinates in [0, 1]: q' = (q - 0.5) * zoom + 0.5 + t / 2
    z = zoom.view(b, 1, 1)
    shift = torch.stack([tx, ty, tx, ty], dim=-1).view(b, 1, 4) / 2
    new_boxes = ((boxes - 0.5) * z + 0.5 + shift).clamp(0, 1)
    gamma = u(0.7, 1.4).view(b, 1, 1, 1)
    gain = u(0.8, 1.2).view(b, 1, 1, 1)
    out = (out.clamp(0, 1) ** gamma * gain).clamp(0, 1)
    negative = torch.rand(b, generator=generator) < negative_prob
    for i in torch.nonzero(negative).flatten().tolist():
        kind = int(torch.randint(0, 4, (1,), generator=generator))
        s = out.shape[-1]
        if kind == 0:
            out[i] = torch.rand(1, s, s, generator=generator)
        elif kind == 1:
            out[i] = torch.rand(1, generator=generator)
        elif kind == 2:
            coarse = torch.rand(1, 1, 4, 4, generator=generator)
            out[i] = F.interpolate(coarse, size=(s, s), mode="bicubic", align_corners=False)[0].clamp(0, 1)
        else:
            out[i] = torch.rot90(out[i], 1, dims=(-2, -1))
    return out, new_boxes, negative


def train_region_model(
    model: RegionBoxNet,
    samples: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, str]],
    epochs: int = 10,
    batch_size: int = 16,
    lr: float = 1e-3,
    negative_prob: float = 0.1,
    augment: bool = True,
    seed: int = 0,
    log: Callable[[str], None] | None = print,
    max_seconds: float | None = None,
) -> list[float]:
    """Train ``model`` on loaded samples (``load_items`` output) with AdamW and a cosine schedule.

    Args:
        model: the network (trained in place).
        samples: ``(picture, boxes, mask, path)`` tuples in original pixels.
        epochs: passes over the samples.
        batch_size: batch size.
        lr: peak learning rate.
        negative_prob: share of negative (non-chest) samples per batch.
        augment: apply :func:`augment_batch`.
        seed: shuffling and augmentation seed.
        log: per-epoch logger (``None``: silent).
        max_seconds: stop after this wall time.

    Returns:
        Mean training loss per epoch.
    """
    prepared = [prepare_sample(img, b, m, model.img_size) for img, b, m, _ in samples]
    images = torch.stack([p[0] for p in prepared])
    boxes = torch.stack([p[1] for p in prepared])
    masks = torch.stack([p[2] for p in prepared])
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * max(1, int(np.ceil(len(prepared) / batch_size)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    loss_fn = RegionBoxLoss()
    history: list[float] = []
    t0 = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(prepared), generator=gen)
        total, n = 0.0, 0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            x, y, m = images[idx], boxes[idx], masks[idx]
            neg = None
            if augment:
                x, y, neg = augment_batch(x, y, gen, negative_prob)
            out = model(x)
            losses = loss_fn(out, y, m, neg)
            opt.zero_grad()
            losses["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            total += losses["loss"].item() * len(idx)
            n += len(idx)
        history.append(total / max(n, 1))
        if log is not None:
            log(f"epoch {epoch + 1}/{epochs} loss {history[-1]:.4f} ({time.perf_counter() - t0:.0f} s)")
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            break
    model.eval()
    return history


def evaluate_region_boxes(
    predict: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    samples: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, str]],
) -> dict:
    """IoU per region and overall of a predictor (``picture [1, W, H] -> (boxes, confidence)``) on samples.

    Returns:
        ``{"per_region": [29] mean IoU (NaN where never known), "mean_iou": float (over all known
        region instances), "mean_confidence": float, "seconds_per_image": float, "n": int}``.
    """
    ious, masks, confs, secs = [], [], [], []
    for img, boxes, mask, _ in samples:
        t = time.perf_counter()
        pb, conf = predict(img[None])
        secs.append(time.perf_counter() - t)
        ious.append(box_iou_paired(torch.as_tensor(pb, dtype=torch.float32), torch.as_tensor(boxes)).numpy())
        masks.append(mask)
        confs.append(float(np.mean(conf)))
    iou_a, mask_a = np.stack(ious), np.stack(masks)
    with np.errstate(invalid="ignore"):
        per_region = np.where(mask_a.any(0), (iou_a * mask_a).sum(0) / mask_a.sum(0), np.nan)
    return {
        "per_region": per_region.tolist(),
        "mean_iou": float((iou_a * mask_a).sum() / max(mask_a.sum(), 1)),
        "mean_confidence": float(np.mean(confs)),
        "seconds_per_image": float(np.mean(secs)),
        "n": len(samples),
    }
