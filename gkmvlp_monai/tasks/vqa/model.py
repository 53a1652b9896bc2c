"""Medical VQA on top of GK-MVLP: answer classification over the training answers and answer generation.

The question is read by the pre-trained text encoder and fused with the image's visual + GK memory by the
pre-trained image-grounded encoder of ITM (:class:`~gkmvlp_monai.models.fusion.CrossModalEncoder`). The
fused [CLS] feeds an answer classifier; the pre-trained report decoder generates the answer while
cross-attending to the fused question tokens followed by the visual + GK memory it was pre-trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gkmvlp_monai.core.boxes import default_layout, fixed_region_inputs
from gkmvlp_monai.models.config import IDENTITY_FIELDS, record_config
from gkmvlp_monai.models.decoder import ReportDecoder
from gkmvlp_monai.models.fusion import CrossModalEncoder
from gkmvlp_monai.models.gk import init_weights
from gkmvlp_monai.models.gkmvlp import GKMVLP, build_gkmvlp
from gkmvlp_monai.models.losses.lm import LMLoss
from gkmvlp_monai.models.pretrained import load_pretrained_weights
from gkmvlp_monai.models.text import tokenize_texts

__all__ = [
    "GKMVLPVQA",
    "VQAPresencePredictor",
    "build_presence_predictor",
    "build_vqa",
    "default_region_boxes",
    "encode_question_image",
    "fused_tokens",
    "load_backbone",
    "presence_questions",
    "unique_rows",
]


def fused_tokens(
    fusion: CrossModalEncoder, text_tokens: torch.Tensor, text_mask: torch.Tensor, memory: torch.Tensor
) -> torch.Tensor:
    """All output tokens of a :class:`CrossModalEncoder` (its ``forward`` returns only [CLS]).

    Args:
        fusion: the cross-modal encoder.
        text_tokens: ``[B, L, text_dim]``.
        text_mask: ``[B, L]`` 1 for real tokens.
        memory: ``[B, M, dim]``.

    Returns:
        ``[B, L, dim]`` normalised fused tokens (token 0 equals ``fusion(...)``).
    """
    x = fusion.in_proj(text_tokens)
    pad = ~text_mask.bool()
    for layer in fusion.layers:
        x = layer(x, memory, tgt_key_padding_mask=pad)
    return fusion.norm(x)


def unique_rows(*tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows (dim 0) that are exactly equal across all ``tensors``.

    Args:
        tensors: tensors with one shared first dimension ``B``.

    Returns:
        ``(first, inverse)``: ``first [U]`` the index of each distinct row's first occurrence (in order of
        first occurrence) and ``inverse [B]`` the position in ``first`` of each row, so that
        ``x[first][inverse]`` equals ``x`` for every input.
    """
    n = tensors[0].shape[0]
    key = torch.cat([t.detach().reshape(n, -1).to(torch.float64) for t in tensors], dim=1)
    _, inverse = torch.unique(key, dim=0, return_inverse=True)
    rows = torch.arange(n, device=inverse.device)
    first_sorted = torch.full((int(inverse.max()) + 1,), n, dtype=torch.long, device=inverse.device)
    first_sorted.scatter_reduce_(0, inverse, rows, reduce="amin")
    order = torch.argsort(first_sorted)  # distinct rows in order of first occurrence
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), device=order.device)
    return first_sorted[order], rank[inverse]


def encode_question_image(
    backbone: GKMVLP,
    image: torch.Tensor,
    region_boxes: torch.Tensor,
    region_mask: torch.Tensor,
    question_ids: torch.Tensor,
    question_mask: torch.Tensor,
    image_index: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Question tokens grounded in the image by the backbone's ITM fusion encoder.

    Args:
        backbone: the GK-MVLP backbone (with ``fusion``).
        image: ``[B, 1, S, S]``.
        region_boxes: ``[B, R, 4]``.
        region_mask: ``[B, R]``.
        question_ids: ``[B, L]``.
        question_mask: ``[B, L]``.
        image_index: optional ``[B]`` picture id of each row (the data set's ``image_index``). In training,
            rows of one picture share the encoding of its first row (one augmentation draw): a batch of
            questions grouped by picture (:class:`~gkmvlp_monai.engine.determinism.GroupedResumableSampler`)
            runs the image encoder once per picture.

    Returns:
        dict with ``fused`` ``[B, L, dim]``, ``cls`` ``[B, dim]`` and ``memory`` ``[B, L + M, dim]`` (fused
        question tokens with padding zeroed, then the visual + GK memory) for the decoder.

    In evaluation mode, rows that repeat one picture exactly (same pixels, boxes and mask: the several
    questions asked about one image) are encoded once and shared; the result is the same as encoding each
    row (no batch statistics in eval mode), at a fraction of the cost. In training only ``image_index``
    groups rows.
    """
    shared = None  # (first row of each distinct picture, each row's picture)
    if image.shape[0] > 1 and not torch.jit.is_tracing():
        if not backbone.training:
            shared = unique_rows(image, region_boxes, region_mask)
        elif image_index is not None:
            shared = unique_rows(image_index)
    if shared is None:
        memory = backbone.visual_features(image, region_boxes, region_mask)["memory"]
    else:
        first, inverse = shared
        memory = backbone.visual_features(image[first], region_boxes[first], region_mask[first])["memory"]
        memory = memory[inverse]
    text, _ = backbone.text_encoder(question_ids, question_mask)
    fused = fused_tokens(backbone.fusion, text, question_mask, memory)
    q = fused * question_mask.unsqueeze(-1).to(fused.dtype)
    return {"fused": fused, "cls": fused[:, 0], "memory": torch.cat((q, memory), dim=1)}


class GKMVLPVQA(nn.Module):
    """GK-MVLP visual question answering network.

    Args:
        backbone: a GK-MVLP network (pre-trained or freshly initialised): image encoder, region tokens, GK
            module, text encoder, ITM fusion and report decoder are reused.
        num_answers: classes of the answer classifier (the training answer vocabulary).
        weight_cls: weight of the classification loss.
        weight_gen: weight of the answer generation loss (0: no generation).
        label_smoothing: label smoothing of both losses.
        dropout: classifier dropout.
    """

    def __init__(
        self,
        backbone: GKMVLP,
        num_answers: int,
        weight_cls: float = 1.0,
        weight_gen: float = 1.0,
        label_smoothing: float = 0.1,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if num_answers < 2:
            raise ValueError(f"num_answers must be >= 2 (yes, no, ...), got {num_answers}")
        self.backbone = backbone
        self.num_answers = num_answers
        self.weight_cls = weight_cls
        self.weight_gen = weight_gen
        dim = backbone.ecls_head.in_features  # the GK / fusion / decoder width
        self.dim = dim
        heads = 4 if dim % 4 == 0 else 2
        if backbone.fusion is None:  # pre-trained without ITM: a fresh fusion encoder
            backbone.fusion = CrossModalEncoder(backbone.text_encoder.hidden_size, dim, 2, heads)
            init_weights(backbone.fusion)
        if weight_gen > 0 and backbone.decoder is None:  # pre-trained without LM: a fresh decoder
            tok = backbone.tokenizer
            backbone.decoder = ReportDecoder(
                len(tok),
                dim,
                dim,
                2,
                heads,
                backbone.max_text_length,
                tok.cls_token_id,
                tok.sep_token_id,
                tok.pad_token_id,
            )
            init_weights(backbone.decoder.layers)
        self.classifier = nn.Sequential(
            nn.Linear(dim, 2 * dim),
            nn.GELU(),
            nn.LayerNorm(2 * dim),
            nn.Dropout(dropout),
            nn.Linear(2 * dim, num_answers),
        )
        init_weights(self.classifier)
        self.label_smoothing = label_smoothing
        self.lm_loss = LMLoss(label_smoothing)

    @property
    def tokenizer(self) -> Any:
        """The backbone's tokenizer."""
        return self.backbone.tokenizer

    def encode(
        self,
        image: torch.Tensor,
        region_boxes: torch.Tensor,
        region_mask: torch.Tensor,
        question_ids: torch.Tensor,
        question_mask: torch.Tensor,
        image_index: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Fused question-image representation (see :func:`encode_question_image`)."""
        return encode_question_image(
            self.backbone, image, region_boxes, region_mask, question_ids, question_mask, image_index
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Training forward.

        Args:
            batch: ``image``, ``region_boxes``, ``region_mask``, ``question_ids``, ``question_mask`` (optional
                ``image_index``, see :func:`encode_question_image`) and, for
                the losses, ``answer_label`` (class, -1 for an answer outside the vocabulary: ignored by the
                classification loss) and ``answer_ids``/``answer_mask``.

        Returns:
            dict with ``answer_logits`` ``[B, A]``, ``answer_probs``, ``memory`` and, when targets are given,
            ``loss_cls``, ``loss_gen`` and the weighted ``loss``.
        """
        enc = self.encode(
            batch["image"],
            batch["region_boxes"],
            batch["region_mask"],
            batch["question_ids"],
            batch["question_mask"],
            batch.get("image_index"),
        )
        logits = self.classifier(enc["cls"])
        out: dict[str, torch.Tensor] = {
            "answer_logits": logits,
            "answer_probs": logits.softmax(-1),
            "memory": enc["memory"],
        }
        total = logits.new_zeros(())
        if "answer_label" in batch and self.weight_cls > 0:
            labels = batch["answer_label"].long()
            if (labels >= 0).any():
                out["loss_cls"] = F.cross_entropy(
                    logits, labels, ignore_index=-1, label_smoothing=self.label_smoothing
                )
            else:  # no known answer in the batch: a zero that keeps the graph
                out["loss_cls"] = logits.sum() * 0.0
            total = total + self.weight_cls * out["loss_cls"]
        if "answer_ids" in batch and self.weight_gen > 0:
            ids, mask = batch["answer_ids"], batch["answer_mask"]
            dec = self.backbone.decoder(ids[:, :-1], enc["memory"], mask[:, :-1])
            out["loss_gen"] = self.lm_loss(dec, ids, mask)
            total = total + self.weight_gen * out["loss_gen"]
        out["loss"] = total
        return out

    @torch.no_grad()
    def generate(self, memory: torch.Tensor, max_length: int = 16, num_beams: int = 1) -> list[str]:
        """Decode answers from the ``memory`` of :meth:`forward` / :meth:`encode`.

        Returns:
            one answer string per row (special tokens removed).
        """
        if self.backbone.decoder is None:
            raise RuntimeError("answer generation is switched off (weight_gen=0 and no pre-trained decoder)")
        if memory.shape[0] == 0:
            return []
        ids = self.backbone.decoder.generate(memory, max_length, num_beams)
        return self.tokenizer.batch_decode(ids.tolist(), skip_special_tokens=True)


def build_vqa(
    num_answers: int,
    size: str = "base",
    entity_descriptions: Sequence[str] = (),
    image_size: int = 224,
    image_arch: str | None = None,
    text_model: str | None = None,
    weight_cls: float = 1.0,
    weight_gen: float = 1.0,
    label_smoothing: float = 0.1,
    dropout: float = 0.1,
) -> GKMVLPVQA:
    """Build the VQA network around a GK-MVLP backbone with the pre-training architecture of ``size``.

    The backbone is built exactly as the pre-training bundle builds it (same ``build_gkmvlp`` arguments), so
    :func:`load_backbone` can load a pre-training checkpoint into it.

    Args:
        num_answers: answer classes.
        size: ``tiny``/``small``/``base`` (as in pre-training).
        entity_descriptions: entity knowledge descriptions (as in pre-training).
        image_size: square input size.
        image_arch: image encoder override (as in pre-training).
        text_model: text encoder override (as in pre-training).
        weight_cls: classification loss weight.
        weight_gen: generation loss weight.
        label_smoothing: label smoothing.
        dropout: classifier dropout.

    Returns:
        the network (backbone randomly initialised; see :func:`load_backbone`).
    """
    backbone = build_gkmvlp(
        size=size,
        entity_descriptions=entity_descriptions,
        image_arch=image_arch,
        image_size=image_size,
        text_model=text_model,
    )
    network = GKMVLPVQA(backbone, num_answers, weight_cls, weight_gen, label_smoothing, dropout)
    # the backbone records its own config; the task network adds what its heads were built for
    config = {k: v for k, v in backbone.network_config.items() if k in IDENTITY_FIELDS}
    return record_config(network, {"network": "GKMVLPVQA", **config, "num_answers": num_answers})


def load_backbone(network: GKMVLPVQA, pretrained_ckpt: str | None) -> GKMVLPVQA:
    """Load GK-MVLP pre-training weights into the backbone (``None``: from scratch); returns ``network``."""
    load_pretrained_weights(network.backbone, pretrained_ckpt)
    return network


class VQAPresencePredictor(nn.Module):
    """Image-only wrapper for ``verify_net_in_out`` and traced ``ckpt_export``: answers a fixed list of
    closed questions (default: "Is there <finding>?" for a label set) with ``P(yes)`` ``[B, Q]``.

    ``P(yes)`` is the classifier's softmax over its ``yes`` and ``no`` classes (indices 0 and 1 of
    :class:`~gkmvlp_monai.tasks.vqa.data.AnswerVocab`). Region boxes come from a fixed default layout.

    Args:
        model: a :class:`GKMVLPVQA`.
        questions: the questions.
        region_boxes: ``[R, 4]`` default boxes in pixels of an ``image_size`` square image.
        image_size: side the default boxes refer to.
        question_max_length: question token length.
    """

    def __init__(
        self,
        model: GKMVLPVQA,
        questions: Sequence[str],
        region_boxes: torch.Tensor | Sequence[Sequence[float]],
        image_size: int,
        question_max_length: int = 32,
    ) -> None:
        super().__init__()
        if not questions:
            raise ValueError("VQAPresencePredictor needs at least one question")
        self.backbone = model.backbone  # same parameter names as GKMVLPVQA: loads its model.pt strictly
        self.classifier = model.classifier
        self.questions = list(questions)
        enc = tokenize_texts(model.tokenizer, self.questions, question_max_length)
        self.register_buffer("question_ids", enc["input_ids"], persistent=False)
        self.register_buffer("question_mask", enc["attention_mask"], persistent=False)
        self.register_buffer(
            "region_boxes", torch.as_tensor(region_boxes, dtype=torch.float32), persistent=False
        )
        self.image_size = image_size
        self.register_load_state_dict_pre_hook(_yes_no_rows)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``[B, 1, S, S]`` image -> ``[B, Q]`` probability that the answer is yes."""
        b, q = image.shape[0], self.question_ids.shape[0]
        # each picture is encoded once, then asked every question
        boxes, mask = fixed_region_inputs(image, self.region_boxes, self.image_size)
        memory = self.backbone.visual_features(image, boxes, mask)["memory"]
        memory = memory.unsqueeze(1).expand(b, q, *memory.shape[1:]).reshape(b * q, *memory.shape[1:])
        text, _ = self.backbone.text_encoder(self.question_ids.repeat(b, 1), self.question_mask.repeat(b, 1))
        fused = fused_tokens(self.backbone.fusion, text, self.question_mask.repeat(b, 1), memory)
        logits = self.classifier(fused[:, 0])[:, :2]
        return logits.softmax(-1)[:, 0].reshape(b, q)


def _yes_no_rows(module: VQAPresencePredictor, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Load hook: into a yes/no answer head (2 classes), a checkpoint's answer classifier loads its first two
    rows, ``yes`` and ``no`` (:class:`~gkmvlp_monai.tasks.vqa.data.AnswerVocab` puts them first), whatever
    the size of the answer vocabulary it was trained with."""
    last = len(module.classifier) - 1
    for name in ("weight", "bias"):
        key = f"{prefix}classifier.{last}.{name}"
        value = state_dict.get(key)
        if value is not None and getattr(module.classifier[last], name).shape[0] == 2 < value.shape[0]:
            state_dict[key] = value[:2]


def build_presence_predictor(
    size: str = "base",
    image_size: int = 224,
    image_arch: str | None = None,
    text_model: str | None = None,
    label_set: str = "chexpert14",
    question_max_length: int = 32,
) -> VQAPresencePredictor:
    """The image-only VQA network of ``inference.json`` (``verify_net_in_out``, ``ckpt_export``), built
    without the answer vocabulary or any data set: a :class:`VQAPresencePredictor` asking
    :func:`presence_questions` of ``label_set`` over a yes/no answer head.

    Any checkpoint of :func:`build_vqa` with the same ``size``, ``image_size``, ``image_arch`` and
    ``text_model`` loads into it strictly, whatever its answer vocabulary (only the ``yes`` and ``no``
    rows of its classifier are kept).
    """
    from gkmvlp_monai.core import vocab

    model = build_vqa(
        2,
        size=size,
        entity_descriptions=vocab.entity_descriptions(),
        image_size=image_size,
        image_arch=image_arch,
        text_model=text_model,
    )
    questions = presence_questions(vocab.label_set(label_set))
    return VQAPresencePredictor(
        model, questions, default_region_boxes(image_size), image_size, question_max_length
    )


def presence_questions(label_names: Sequence[str]) -> list[str]:
    """ "Is there <name>?" for each label except "No Finding" (the iu-synth question template)."""
    return [f"Is there {n.lower()}?" for n in label_names if n.lower() != "no finding"]


#: the default region layout as float32 ``[29, 4]`` boxes; the name bundle configs call
#: (``gkmvlp_monai.core.boxes.default_layout`` itself)
default_region_boxes = default_layout
