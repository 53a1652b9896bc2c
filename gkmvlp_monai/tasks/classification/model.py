"""Classification networks on top of GK-MVLP: a linear head on the image encoder (linear probe or full
fine-tuning) and a training-free zero-shot classifier scoring findings through the entity queries."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gkmvlp_monai.core import vocab
from gkmvlp_monai.models.config import record_config
from gkmvlp_monai.models.gkmvlp import GKMVLP, SIZES, build_gkmvlp
from gkmvlp_monai.models.image import ImageEncoder
from gkmvlp_monai.models.pretrained import load_pretrained_weights

MODES = ("linear_probe", "finetune")
REDUCTIONS = ("max", "mean")

__all__ = [
    "GKMVLPClassifier",
    "ZeroShotClassifier",
    "build_classifier",
    "build_zero_shot",
    "checkpoint_or_none",
]

#: values of ``pretrained_ckpt`` meaning "from scratch". ``python -m monai.bundle run`` drops ``None``
#: command-line overrides, so ``--pretrained_ckpt scratch`` is the command-line spelling.
SCRATCH = ("", "none", "scratch")


def checkpoint_or_none(path: str | None, from_scratch: bool = False) -> str | None:
    """``None`` for a from-scratch request (``from_scratch``, or ``path`` ``None``, ``""``, ``"none"``,
    ``"scratch"``), else ``path``."""
    if from_scratch or path is None or str(path).strip().lower() in SCRATCH:
        return None
    return str(path)


class GKMVLPClassifier(nn.Module):
    """GK-MVLP image encoder (global vector) + a linear head: ``image [B, 1, S, S] -> logits [B, C]``.

    In ``linear_probe`` mode the encoder's parameters are frozen (``requires_grad=False``) and the encoder
    stays in eval mode even while the classifier trains, so its batch-norm statistics do not move either:
    the head is the only thing that learns. In ``finetune`` mode everything trains.

    Args:
        image_encoder: the (pre-trained or freshly initialised) image encoder.
        num_classes: output classes (multi-label: one logit each; multi-class: softmax logits).
        mode: ``"linear_probe"`` or ``"finetune"``.
        dropout: dropout on the global vector before the head.
    """

    def __init__(
        self, image_encoder: ImageEncoder, num_classes: int, mode: str = "finetune", dropout: float = 0.0
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown classifier mode {mode!r}; use one of {MODES}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.mode = mode
        self.encoder = image_encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(image_encoder.out_channels, num_classes)
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)
        if mode == "linear_probe":
            for p in self.encoder.parameters():
                p.requires_grad_(False)
            self.encoder.eval()

    def train(self, mode: bool = True) -> GKMVLPClassifier:
        super().train(mode)
        if self.mode == "linear_probe":
            self.encoder.eval()
        return self

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """Global image vector ``[B, D]`` of the encoder."""
        if self.mode == "linear_probe":
            with torch.no_grad():
                return self.encoder(image)[1]
        return self.encoder(image)[1]

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``[B, 1, S, S]`` image -> ``[B, C]`` logits."""
        return self.head(self.dropout(self.features(image)))


def build_classifier(
    num_classes: int,
    size: str = "base",
    image_size: int = 224,
    mode: str = "finetune",
    pretrained_ckpt: str | None = None,
    image_arch: str | None = None,
    dropout: float = 0.0,
) -> GKMVLPClassifier:
    """Build the classifier with the image encoder of a GK-MVLP network of ``size``.

    Args:
        num_classes: output classes.
        size: GK-MVLP size (``tiny``/``small``/``base``), must match the pre-training run.
        image_size: square input size.
        mode: ``"linear_probe"`` or ``"finetune"``.
        pretrained_ckpt: GK-MVLP pre-training checkpoint; its ``image_encoder.*`` weights are loaded.
            ``None`` or ``"scratch"`` keeps the random initialisation (the from-scratch baseline).
        image_arch: image encoder override (as in pre-training).
        dropout: dropout before the head.

    Returns:
        The classifier.
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; known: {sorted(SIZES)}")
    arch = image_arch or SIZES[size]["image_arch"]
    config = {"network": "GKMVLPClassifier", "size": size, "image_arch": arch, "image_size": image_size}
    config.update(num_classes=num_classes, mode=mode)
    encoder = ImageEncoder(arch, in_channels=1, img_size=image_size)
    load_pretrained_weights(
        encoder, checkpoint_or_none(pretrained_ckpt), prefix="image_encoder.", config=config
    )
    classifier = GKMVLPClassifier(encoder, num_classes, mode, dropout)
    record_config(classifier, config)  # its checkpoints carry it (gkmvlp_monai.models.config)
    return classifier


class ZeroShotClassifier(nn.Module):
    """Training-free classifier: a label's score is the max (or mean) "present" probability of the
    entities that support it (``vocab.label_entities``), from the GK module's entity queries.

    ``forward(image, region_boxes=None, region_mask=None) -> [B, C]`` probabilities. Without boxes every
    region is marked absent (the region prompts then carry no location).

    Args:
        model: a GK-MVLP network.
        label_names: class names, in output order.
        label_set: vocabulary label set mapping entities to the names (``chexpert14`` or ``nih14``).
        reduce: ``"max"`` or ``"mean"`` over a label's entities.
    """

    def __init__(
        self, model: GKMVLP, label_names: Sequence[str], label_set: str = "chexpert14", reduce: str = "max"
    ) -> None:
        super().__init__()
        if reduce not in REDUCTIONS:
            raise ValueError(f"unknown reduction {reduce!r}; use one of {REDUCTIONS}")
        try:
            mapping = vocab.label_entities(label_set)
        except KeyError as err:
            raise ValueError(
                f"zero-shot needs an entity mapping for label set {label_set!r}: {err.args[0]}"
            ) from None
        names = vocab.entity_names()
        index = torch.zeros(len(label_names), len(names))
        for c, label in enumerate(label_names):
            if label not in mapping:
                raise ValueError(f"label {label!r} is not in label set {label_set!r} ({sorted(mapping)})")
            if not mapping[label]:
                raise ValueError(f"label {label!r} of {label_set!r} has no supporting entity")
            for e in mapping[label]:
                index[c, names.index(e)] = 1.0
        if model.num_entities != len(names):
            raise ValueError(f"network has {model.num_entities} entities, vocabulary {len(names)}")
        self.model = model
        self.label_names = list(label_names)
        self.reduce = reduce
        self.num_regions = model.region_pool.type_embed.num_embeddings
        self.register_buffer("label_index", index, persistent=False)

    def forward(
        self,
        image: torch.Tensor,
        region_boxes: torch.Tensor | None = None,
        region_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        b = image.shape[0]
        if region_boxes is None:
            region_boxes = image.new_zeros(b, self.num_regions, 4)
            region_mask = torch.zeros(b, self.num_regions, dtype=torch.bool, device=image.device)
        elif region_mask is None:
            region_mask = torch.ones(region_boxes.shape[:2], dtype=torch.bool, device=image.device)
        probs, _ = self.model.entity_scores(image, region_boxes.float(), region_mask.bool())
        present = probs[..., 1]  # [B, E]
        if self.reduce == "mean":
            return present @ self.label_index.t() / self.label_index.sum(1)
        masked = present[:, None, :].masked_fill(self.label_index[None] == 0, -1.0)
        return masked.max(-1).values


def build_zero_shot(
    label_names: Sequence[str],
    label_set: str = "chexpert14",
    size: str = "base",
    image_size: int = 224,
    pretrained_ckpt: str | None = None,
    image_arch: str | None = None,
    text_model: str | None = None,
    reduce: str = "max",
) -> ZeroShotClassifier:
    """Build a GK-MVLP network like pre-training (without the ITM fusion and the report decoder, which
    zero-shot scoring does not use), load ``pretrained_ckpt`` and wrap it in :class:`ZeroShotClassifier`.

    ``pretrained_ckpt=None`` gives an untrained network: the chance-level baseline.
    """
    model = build_gkmvlp(
        size=size,
        entity_descriptions=[e.description for e in vocab.entities()],
        image_arch=image_arch,
        image_size=image_size,
        text_model=text_model,
        weight_itm=0.0,
        weight_lm=0.0,
    )
    load_pretrained_weights(model, checkpoint_or_none(pretrained_ckpt))
    model.eval()
    return ZeroShotClassifier(model, label_names, label_set, reduce)
