"""Region box model: a MONAI ResNet backbone with a per-region "edge soft-argmax" head and IoU-aware confidence.

Formulation. Every one of the 29 regions appears exactly once on a frontal radiograph, so detection's
machinery (anchors, matching, NMS, a variable number of objects) is unnecessary: the output is a fixed
``[29, 4]`` set. Each region gets four edge channels on a stride-16 feature map (layer4 upsampled and
added to layer3, plus two coordinate channels). For a vertical edge (``x1``, ``x2``) the channel's logits
are marginalised over ``y`` (log-sum-exp) to a distribution over the ``x`` bins, and the edge is its
expectation (soft-argmax / integral regression); horizontal edges likewise over ``y``. This keeps the
spatial precision of a heat map while being trained directly with box losses (L1 + GIoU), and the
distributions' sharpness feeds the confidence head. Confidence is IoU-aware: a small head predicts the
IoU each predicted box reaches with the truth (trained with BCE against the detached IoU; negative, i.e.
non-chest, samples have target 0), so a low value means "this box is likely wrong".
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gkmvlp_monai.core.boxes import box_iou_paired, generalized_box_iou_paired, letterbox
from gkmvlp_monai.core.vocab import region_names
from gkmvlp_monai.models.image import RESNET_SPECS, ImageEncoder

__all__ = ["RegionBoxNet", "RegionBoxLoss", "load_region_model", "split_output"]


class RegionBoxNet(nn.Module):
    """Predict the 29 anatomical region boxes (normalised ``x1, y1, x2, y2`` in the square input frame).

    Args:
        arch: ResNet name from ``gkmvlp_monai.models.image.RESNET_SPECS`` (the backbone is
            ``ImageEncoder``'s MONAI ResNet).
        img_size: square input side ``S``; pictures are letterboxed to it by :meth:`predict_boxes`.
        hidden: channels of the head.
        num_regions: number of regions (29, the vocabulary's).
        backbone_weights: optional local state-dict file for the backbone.
    """

    def __init__(
        self,
        arch: str = "resnet18",
        img_size: int = 256,
        hidden: int = 64,
        num_regions: int | None = None,
        backbone_weights: str | None = None,
    ) -> None:
        super().__init__()
        if arch not in RESNET_SPECS:
            raise ValueError(f"RegionBoxNet needs a ResNet backbone (stride-16 map); got {arch!r}")
        self.arch, self.img_size, self.hidden = arch, int(img_size), int(hidden)
        self.num_regions = int(num_regions or len(region_names()))
        self.encoder = ImageEncoder(arch=arch, in_channels=1, weights_path=backbone_weights)
        block, _, inplanes = RESNET_SPECS[arch]
        expansion = 4 if block == "bottleneck" else 1
        c3, c4 = inplanes[2] * expansion, inplanes[3] * expansion
        self.lateral3 = nn.Conv2d(c3, hidden, 1)
        self.lateral4 = nn.Conv2d(c4, hidden, 1)
        self.head = nn.Sequential(
            nn.Conv2d(hidden + 2, hidden, 3, padding=1),
            nn.GroupNorm(8 if hidden % 8 == 0 else 1, hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, self.num_regions * 4, 1),
        )
        self.conf_head = nn.Sequential(
            nn.Linear(hidden + self.num_regions * 4, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, self.num_regions),
        )

    def _features(self, image: torch.Tensor) -> torch.Tensor:
        net = self.encoder.backbone
        x = net.act(net.bn1(net.conv1(image)))
        if not net.no_max_pool:
            x = net.maxpool(x)
        f3 = net.layer3(net.layer2(net.layer1(x)))
        f4 = net.layer4(f3)
        up = F.interpolate(self.lateral4(f4), size=f3.shape[-2:], mode="bilinear", align_corners=False)
        return F.relu(self.lateral3(f3) + up)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Predict boxes and confidence logits.

        Args:
            image: ``[B, 1, S, S]`` pictures in [0, 1] (``[C, W, H]`` order: dim -2 is x); each is
                standardised internally (zero mean, unit variance), so exposure does not matter.

        Returns:
            ``[B, R, 5]``: per region the box ``x1, y1, x2, y2`` normalised to [0, 1] in the input frame
            (``x`` along dim -2), then the confidence logit (sigmoid = predicted IoU with the truth). One
            tensor, so the network traces/exports as is; :func:`split_output` separates the parts.
        """
        mean = image.mean(dim=(-3, -2, -1), keepdim=True)
        std = image.std(dim=(-3, -2, -1), keepdim=True).clamp(min=1e-3)
        feat = self._features((image - mean) / std)
        b, _, gx, gy = feat.shape
        cx = torch.linspace(-1, 1, gx, device=feat.device).view(1, 1, gx, 1).expand(b, 1, gx, gy)
        cy = torch.linspace(-1, 1, gy, device=feat.device).view(1, 1, 1, gy).expand(b, 1, gx, gy)
        logits = self.head(torch.cat([feat, cx, cy], dim=1)).view(b, self.num_regions, 4, gx, gy)
        px = torch.softmax(torch.logsumexp(logits[:, :, 0::2], dim=-1), dim=-1)  # [B, R, 2, gx]
        py = torch.softmax(torch.logsumexp(logits[:, :, 1::2], dim=-2), dim=-1)  # [B, R, 2, gy]
        xs = torch.linspace(0, 1, gx, device=feat.device)
        ys = torch.linspace(0, 1, gy, device=feat.device)
        ex, ey = (px * xs).sum(-1), (py * ys).sum(-1)  # [B, R, 2]
        boxes = torch.stack(
            [ex.min(-1).values, ey.min(-1).values, ex.max(-1).values, ey.max(-1).values], dim=-1
        )
        peak = torch.cat([px.max(-1).values, py.max(-1).values], dim=-1).flatten(1)  # [B, R * 4]
        conf = self.conf_head(torch.cat([feat.mean(dim=(-2, -1)), peak], dim=1))
        return torch.cat([boxes, conf.unsqueeze(-1)], dim=-1)

    @torch.no_grad()
    def predict_boxes(self, image: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes of one picture in its ORIGINAL pixel coordinates.

        Args:
            image: ``[1, W, H]`` or ``[W, H]`` picture in [0, 1], any size (letterboxed to ``img_size``).

        Returns:
            ``(boxes float32 [R, 4] in picture pixels, confidence float32 [R] in [0, 1])``.
        """
        was_training = self.training
        self.eval()
        sq, lb = letterbox(image, self.img_size)
        pb, logits = split_output(self(sq[None].to(next(self.parameters()).device)))
        self.train(was_training)
        boxes = pb[0].cpu().numpy() * self.img_size
        conf = torch.sigmoid(logits[0]).cpu().numpy()
        return lb.to_original(boxes), conf.astype(np.float32)

    def config(self) -> dict:
        """Constructor arguments (saved next to the weights)."""
        return {
            "arch": self.arch,
            "img_size": self.img_size,
            "hidden": self.hidden,
            "num_regions": self.num_regions,
        }


def split_output(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``RegionBoxNet`` output ``[B, R, 5]`` -> ``(boxes [B, R, 4] normalised, confidence logits [B, R])``."""
    if out.ndim != 3 or out.shape[-1] != 5:
        raise ValueError(f"expected a RegionBoxNet output of shape [B, R, 5], got {tuple(out.shape)}")
    return out[..., :4], out[..., 4]


def load_region_model(
    path: str | os.PathLike, map_location: str = "cpu", **config: int | str
) -> RegionBoxNet:
    """Load a region model checkpoint (``weights_only``).

    Two layouts are read: ``{"config": model.config(), "state_dict": ...}`` (self-describing), and the
    bundle's ``models/model.pt``, a plain state dict, which needs the constructor arguments in ``config``
    (``arch``, ``img_size``, ``hidden``).

    Raises:
        ValueError: a plain state dict without ``config``, or weights that do not fit (names the file).
    """
    ckpt = torch.load(os.fspath(path), map_location=map_location, weights_only=True)
    if isinstance(ckpt, dict) and "state_dict" in ckpt and "config" in ckpt:
        config = {**ckpt["config"], **config}
        state = ckpt["state_dict"]
    else:
        state = ckpt
        if not config:
            raise ValueError(
                f"{path}: plain state dict; pass the network's arch/img_size/hidden to load_region_model"
            )
    model = RegionBoxNet(**config)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path}: weights do not fit RegionBoxNet({config}): {err}") from err
    return model.eval()


class RegionBoxLoss(nn.Module):
    """L1 + GIoU box loss over known regions, plus the IoU-aware confidence loss.

    Called as the engines' ``loss_function``: ``loss(pred, target)`` with ``pred`` the network output
    ``[B, R, 5]`` and ``target = {"boxes": [B, R, 4] normalised, "mask": [B, R] bool, "negative": [B]
    bool (optional)}`` (see :func:`gkmvlp_monai.tasks.anatomy.engine.prepare_region_batch`); returns the
    weighted total. :meth:`terms` gives the separate terms.

    Args:
        l1_weight: weight of the L1 loss on normalised coordinates.
        giou_weight: weight of ``1 - GIoU``.
        conf_weight: weight of the confidence BCE (target: detached IoU of each predicted box; 0 for
            regions of negative samples).
    """

    def __init__(self, l1_weight: float = 5.0, giou_weight: float = 2.0, conf_weight: float = 1.0) -> None:
        super().__init__()
        self.l1_weight, self.giou_weight, self.conf_weight = l1_weight, giou_weight, conf_weight

    def forward(self, pred: torch.Tensor, target: dict[str, torch.Tensor]) -> torch.Tensor:
        """Weighted total loss (a scalar)."""
        return self.terms(pred, target["boxes"], target["mask"], target.get("negative"))["loss"]

    def terms(
        self,
        pred: torch.Tensor,
        boxes: torch.Tensor,
        mask: torch.Tensor,
        negative: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Compute the losses.

        Args:
            pred: the model's output ``[B, R, 5]``.
            boxes: ``[B, R, 4]`` true normalised boxes.
            mask: ``[B, R]`` bool, region known.
            negative: optional ``[B]`` bool, sample is not a frontal chest picture (confidence target 0).

        Returns:
            ``{"loss", "l1", "giou", "conf", "iou"}`` (``iou``: mean IoU over known regions, no gradient).
        """
        pb, logits = split_output(pred)
        m = mask.float()
        if negative is not None:
            m = m * (~negative.bool()).float()[:, None]
        n = m.sum().clamp(min=1.0)
        l1 = (F.l1_loss(pb, boxes, reduction="none").sum(-1) * m).sum() / n
        giou = ((1.0 - generalized_box_iou_paired(pb, boxes)) * m).sum() / n
        iou = box_iou_paired(pb.detach(), boxes)
        target = iou * m
        conf_mask = mask.float()
        if negative is not None:
            conf_mask = torch.where(negative.bool()[:, None], torch.ones_like(conf_mask), conf_mask)
        conf = (
            F.binary_cross_entropy_with_logits(logits, target, reduction="none") * conf_mask
        ).sum() / conf_mask.sum().clamp(min=1.0)
        loss = self.l1_weight * l1 + self.giou_weight * giou + self.conf_weight * conf
        return {
            "loss": loss,
            "l1": l1.detach(),
            "giou": giou.detach(),
            "conf": conf.detach(),
            "iou": (iou * m).sum() / n,
        }
