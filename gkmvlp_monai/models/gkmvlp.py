"""The GK-MVLP network: image/text encoders, region pooling, knowledge encoder, GK module and the four
objectives (ITC, ITM, LM, ECLS) plus a grounding term; inference helpers and an export wrapper."""

from __future__ import annotations

import inspect
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gkmvlp_monai.core import keys as K
from gkmvlp_monai.core.boxes import fixed_region_inputs
from gkmvlp_monai.models.config import ARCHITECTURE_FIELDS, network_config, record_config, vocab_hash
from gkmvlp_monai.models.decoder import ReportDecoder
from gkmvlp_monai.models.fusion import CrossModalEncoder
from gkmvlp_monai.models.gk import GKModule, init_weights
from gkmvlp_monai.models.heads import ITCHead
from gkmvlp_monai.models.image import ImageEncoder
from gkmvlp_monai.models.knowledge import KnowledgeEncoder
from gkmvlp_monai.models.losses.ecls import ECLSLoss
from gkmvlp_monai.models.losses.grounding import GroundingLoss
from gkmvlp_monai.models.losses.itc import ITCLoss, report_keys
from gkmvlp_monai.models.losses.itm import ITMLoss, itm_pairs
from gkmvlp_monai.models.losses.lm import LMLoss
from gkmvlp_monai.models.region import RegionPooling
from gkmvlp_monai.models.text import TextEncoder, load_tokenizer, tiny_bert_config

LOSS_NAMES = ("itc", "itm", "lm", "ecls", "grounding")


def trim_padding(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the trailing token columns that are padding in every row of the batch.

    Masked positions never influence real tokens (text encoder, ITM fusion, causal decoder) and carry no
    loss, so the outputs at real tokens are unchanged while every text stage runs on the batch's longest
    report instead of the fixed ``max_text_length``. Costs one host synchronisation.

    Args:
        input_ids: ``[B, L]`` token ids.
        attention_mask: ``[B, L]`` 1 for real tokens.

    Returns:
        ``(input_ids[:, :n], attention_mask[:, :n])`` with ``n`` one past the last real column (at least 1).
    """
    cols = attention_mask.bool().any(0)
    pos = torch.arange(1, cols.shape[0] + 1, device=cols.device)
    n = max(int((pos * cols).max()), 1)
    if n == input_ids.shape[1]:
        return input_ids, attention_mask
    return input_ids[:, :n], attention_mask[:, :n]


#: renamed state-dict entries, (old sub-key, new sub-key) relative to the GK-MVLP network: before the
#: objectives became parameter-free, the ITC temperature and queue lived in ``itc_loss`` and the ITM head
#: in ``itm_loss.classifier``. The one place old checkpoints are mapped (:func:`upgrade_legacy_keys`).
LEGACY_KEYS: tuple[tuple[str, str], ...] = (
    ("itc_loss.", "itc_head."),
    ("itm_loss.classifier.", "itm_head."),
)


def upgrade_state_dict(state_dict: MutableMapping[str, Any], prefix: str = "") -> MutableMapping[str, Any]:
    """Rename, in place, the entries of a GK-MVLP state dict saved under :data:`LEGACY_KEYS`' old names.

    Args:
        state_dict: a state dict holding a GK-MVLP network's entries under ``prefix``.
        prefix: where the network's entries start (``""`` for a GK-MVLP checkpoint, ``"backbone."`` for one
            nested in a task network).

    Returns:
        ``state_dict`` (an entry whose new name is already present is left as it is).
    """
    for key in [k for k in state_dict if k.startswith(prefix)]:
        rest = key[len(prefix) :]
        for old, new in LEGACY_KEYS:
            if rest.startswith(old):
                renamed = prefix + new + rest[len(old) :]
                if renamed not in state_dict:
                    state_dict[renamed] = state_dict.pop(key)
                break
    return state_dict


def upgrade_legacy_keys(
    module: nn.Module, state_dict: MutableMapping[str, Any], prefix: str, *_: Any
) -> None:
    """``load_state_dict`` pre-hook of GK-MVLP networks and their wrappers: :func:`upgrade_state_dict`."""
    upgrade_state_dict(state_dict, prefix)


class GKMVLP(nn.Module):
    """Grounded knowledge-enhanced vision-language pre-training network.

    Region tokens pooled over the anatomical boxes prompt the entity knowledge queries of the GK module,
    which attend to the global and patch visual features. Objectives: ITC (global image vs report), ITM
    (image-grounded report encoding over positives and hard negatives), LM (report decoder conditioned on
    visual and GK tokens), ECLS (entity state from GK features) and grounding (present entities' patch
    attention inside their grounded boxes). The parameters the objectives learn are heads of the network
    (``itc_head``: temperature and queue; ``itm_head``; the report decoder; ``ecls_head``); the objectives
    themselves (``itc_loss`` ... ``grounding_loss``) hold none. An objective with weight 0 is not computed
    and its ITM or LM heads are not built.

    Args:
        image_encoder: image encoder.
        text_encoder: text encoder (reports and knowledge descriptions).
        tokenizer: tokenizer of ``text_encoder`` (decoding, knowledge tokenisation).
        entity_descriptions: one knowledge description per entity (``E = len``).
        num_regions: anatomical regions (29).
        dim: width of region tokens, GK module and fusion.
        embed_dim: ITC embedding width.
        gk_layers: GK layers.
        num_heads: attention heads in GK, fusion and decoder.
        fusion_layers: ITM cross-modal encoder layers.
        decoder_layers: report decoder layers.
        max_text_length: token length of reports (decoder positions).
        knowledge_trainable: re-encode knowledge with gradients (else cached, frozen).
        knowledge_max_length: token length of knowledge descriptions.
        report_prompts: restrict a report-grounded entity's region prompt to its grounded regions during
            training (off by default: it leaks the label and differs from inference, see design notes).
        itc_temperature: initial ITC temperature.
        itc_queue_size: ITC queue of past embeddings (0 off).
        itm_sample_negatives: sample ITM negatives (BLIP) instead of taking the hardest.
        lm_label_smoothing: LM label smoothing.
        ecls_class_weights: optional ECLS weights (absent, present, uncertain).
        dropout: dropout in GK module and decoder.
        weight_itc: ITC weight.
        weight_itm: ITM weight.
        weight_lm: LM weight.
        weight_ecls: ECLS weight.
        weight_grounding: grounding weight.
    """

    def __init__(
        self,
        image_encoder: ImageEncoder,
        text_encoder: TextEncoder,
        tokenizer: Any,
        entity_descriptions: Sequence[str],
        num_regions: int = 29,
        dim: int = 256,
        embed_dim: int = 256,
        gk_layers: int = 2,
        num_heads: int = 4,
        fusion_layers: int = 2,
        decoder_layers: int = 2,
        max_text_length: int = 128,
        knowledge_trainable: bool = False,
        knowledge_max_length: int = 64,
        report_prompts: bool = False,
        itc_temperature: float = 0.07,
        itc_queue_size: int = 0,
        itm_sample_negatives: bool = False,
        lm_label_smoothing: float = 0.1,
        ecls_class_weights: Sequence[float] | None = None,
        dropout: float = 0.1,
        weight_itc: float = 1.0,
        weight_itm: float = 1.0,
        weight_lm: float = 1.0,
        weight_ecls: float = 1.0,
        weight_grounding: float = 0.5,
    ) -> None:
        super().__init__()
        self.weights = {
            "itc": weight_itc,
            "itm": weight_itm,
            "lm": weight_lm,
            "ecls": weight_ecls,
            "grounding": weight_grounding,
        }
        self.tokenizer = tokenizer
        self.num_entities = len(entity_descriptions)
        self.report_prompts = report_prompts
        self.max_text_length = max_text_length
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        c = image_encoder.out_channels
        h = text_encoder.hidden_size
        self.region_pool = RegionPooling(c, dim, num_regions)
        self.knowledge = KnowledgeEncoder(
            text_encoder, entity_descriptions, tokenizer, dim, knowledge_trainable, knowledge_max_length
        )
        self.gk = GKModule(dim, c, self.num_entities, gk_layers, num_heads, dropout)
        self.ecls_head = nn.Linear(dim, 3)
        self.image_proj = nn.Linear(c, embed_dim)
        self.text_proj = nn.Linear(h, embed_dim)
        # heads that hold what the objectives learn; created in this order (the random initialisation of
        # every parameter depends on it, and so does checkpoint compatibility: see LEGACY_KEYS)
        self.itc_head = ITCHead(embed_dim, itc_temperature, queue_size=itc_queue_size)
        self.fusion = self.itm_head = self.decoder = None
        if weight_itm > 0:
            self.fusion = CrossModalEncoder(h, dim, fusion_layers, num_heads)
            self.itm_head = nn.Linear(dim, 2)
        self.itm_sample_negatives = itm_sample_negatives
        if weight_lm > 0:
            self.decoder = ReportDecoder(
                vocab_size=len(tokenizer),
                dim=dim,
                memory_dim=dim,
                num_layers=decoder_layers,
                num_heads=num_heads,
                max_length=max_text_length,
                bos_id=tokenizer.cls_token_id,
                eos_id=tokenizer.sep_token_id,
                pad_id=tokenizer.pad_token_id,
                dropout=dropout,
            )
        # the objectives: parameter-free functions of the heads' outputs
        self.itc_loss = ITCLoss()
        self.itm_loss = ITMLoss()
        self.lm_loss = LMLoss(lm_label_smoothing)
        self.ecls_loss = ECLSLoss(ecls_class_weights)
        self.grounding_loss = GroundingLoss()
        for m in (self.region_pool, self.gk, self.ecls_head, self.image_proj, self.text_proj, self.fusion):
            if m is not None:
                init_weights(m)
        if self.decoder is not None:
            init_weights(self.decoder.layers)
        self.register_load_state_dict_pre_hook(upgrade_legacy_keys)

    # ------------------------------------------------------------------ shared pieces
    def visual_features(
        self,
        image: torch.Tensor,
        region_boxes: torch.Tensor,
        region_mask: torch.Tensor,
        prompt_regions: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Image encoder, region tokens and GK module.

        Args:
            image: ``[B, 1, S, S]``.
            region_boxes: ``[B, R, 4]`` xyxy pixels.
            region_mask: ``[B, R]`` bool.
            prompt_regions: optional ``[B, E, R]`` report grounding for the region prompts.

        Returns:
            dict with ``fmap``, ``global``, ``region_tokens``, ``region_valid``, GK outputs (``features``,
            ``patch_attn``, ``region_attn``, ``visual``), ``memory`` ``[B, 1 + h*w + E, dim]`` and
            ``ecls_logits`` ``[B, E, 3]``.
        """
        fmap, glob = self.image_encoder(image)
        tokens, valid = self.region_pool(fmap, region_boxes, region_mask, image.shape[-1])
        gk = self.gk(self.knowledge(), tokens, valid, fmap, glob, prompt_regions)
        return {
            "fmap": fmap,
            "global": glob,
            "region_tokens": tokens,
            "region_valid": valid,
            **gk,
            "memory": torch.cat((gk["visual"], gk["features"]), dim=1),
            "ecls_logits": self.ecls_head(gk["features"]),
        }

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Training forward.

        Args:
            batch: ``image``, ``region_boxes``, ``region_mask`` and, for the objectives that need them,
                ``input_ids``/``attention_mask`` (ITC, ITM, LM), ``entity_state`` (ECLS, grounding),
                ``entity_regions`` (grounding), with the dtypes and shapes of the batch-key contract
                (:mod:`gkmvlp_monai.core.keys`). An objective whose inputs are missing is skipped.

        Returns:
            dict with ``loss`` (weighted total), ``loss_<name>`` for each computed objective, ``ecls_probs``
            ``[B, E, 3]``, ``patch_attn`` ``[B, E, h, w]`` (not in training mode when no objective needs the
            GK module: then region pooling and the GK module are skipped) and, when the text branch ran, ``image_embed``/
            ``text_embed`` (normalised) and ``sim_i2t``.
        """
        w = self.weights
        image = batch[K.IMAGE]
        has_text = K.INPUT_IDS in batch and K.ATTENTION_MASK in batch
        has_state = K.ENTITY_STATE in batch
        has_regions = K.ENTITY_REGIONS in batch
        # region pooling + GK module only when an objective (or evaluation) consumes them
        need_gk = (
            not self.training
            or (has_state and (w["ecls"] > 0 or (w["grounding"] > 0 and has_regions)))
            or (has_text and (w["itm"] > 0 or w["lm"] > 0))
        )
        out: dict[str, torch.Tensor] = {}
        # 1. encode the image and ground the entity queries in it (region tokens, GK module, ECLS logits)
        if need_gk:
            prompt = batch.get(K.ENTITY_REGIONS) if (self.report_prompts and self.training) else None
            vis = self.visual_features(image, batch[K.REGION_BOXES], batch[K.REGION_MASK], prompt)
            out.update({K.ECLS_PROBS: vis["ecls_logits"].softmax(-1), K.PATCH_ATTN: vis["patch_attn"]})
        else:
            _, glob = self.image_encoder(image)
            vis = {"global": glob}
        # 2. encode the report and compute the heads (the order of the heads is the order of their
        # random draws: ITM negative sampling, then fusion dropout, then decoder dropout)
        itc = itm_logits = lm_logits = None
        if has_text:
            ids, mask = trim_padding(batch[K.INPUT_IDS], batch[K.ATTENTION_MASK])
        if has_text and (w["itc"] > 0 or w["itm"] > 0):
            text_tokens, text_pooled = self.text_encoder(ids, mask)
            image_embed = F.normalize(self.image_proj(vis["global"]), dim=-1)
            text_embed = F.normalize(self.text_proj(text_pooled), dim=-1)
            keys = report_keys(ids, mask)
            if w["itc"] > 0:
                itc = self.itc_head(image_embed, text_embed, keys)
                sim, same = itc["sim_i2t"], itc["same"]
            else:
                sim = image_embed @ text_embed.t()
                same = keys[:, None] == keys[None, :]
            out.update({K.IMAGE_EMBED: image_embed, K.TEXT_EMBED: text_embed, K.SIM_I2T: sim})
            if w["itm"] > 0:
                pairs = itm_pairs(sim, same, sample=self.itm_sample_negatives and self.training)
                t, i = pairs["text_index"], pairs["image_index"]
                itm_logits = self.itm_head(self.fusion(text_tokens[t], mask[t], vis["memory"][i]))
        if has_text and w["lm"] > 0:
            # logits only where a real next token is predicted (the vocabulary projection is the
            # decoder's largest matmul; padding positions would be ignored by the loss anyway)
            hidden = self.decoder.hidden(ids[:, :-1], vis["memory"], mask[:, :-1])
            lm_target = LMLoss.targets(ids, mask)
            keep = lm_target >= 0
            lm_logits = self.decoder.project(hidden[keep])
        # 3. the parameter-free objectives
        losses: dict[str, torch.Tensor] = {}
        if itc is not None:
            losses["itc"] = self.itc_loss(itc["logits_i2t"], itc["logits_t2i"], itc["positives"])
        if itm_logits is not None:
            losses["itm"] = self.itm_loss(itm_logits, pairs["labels"])
        if lm_logits is not None:
            losses["lm"] = self.lm_loss.from_selected(lm_logits, lm_target[keep])
        if has_state and w["ecls"] > 0:
            losses["ecls"] = self.ecls_loss(vis["ecls_logits"], batch[K.ENTITY_STATE])
        if has_state and has_regions and w["grounding"] > 0:
            losses["grounding"] = self.grounding_loss(
                vis["patch_attn"],
                batch[K.ENTITY_STATE],
                batch[K.ENTITY_REGIONS],
                batch[K.REGION_BOXES],
                vis["region_valid"],
                image.shape[-1],
            )
        total = image.new_zeros(())
        for name, value in losses.items():
            out[f"loss_{name}"] = value
            total = total + w[name] * value
        out[K.LOSS] = total
        return out

    # ------------------------------------------------------------------ inference
    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """L2-normalised ITC image embeddings ``[B, embed_dim]``."""
        _, glob = self.image_encoder(image)
        return F.normalize(self.image_proj(glob), dim=-1)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """L2-normalised ITC report embeddings ``[B, embed_dim]``."""
        _, pooled = self.text_encoder(input_ids, attention_mask)
        return F.normalize(self.text_proj(pooled), dim=-1)

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenise texts to ``input_ids``/``attention_mask`` ``[N, max_text_length]``."""
        enc = self.tokenizer(
            list(texts),
            padding="max_length",
            truncation=True,
            max_length=self.max_text_length,
            return_tensors="pt",
        )
        dev = self.image_proj.weight.device
        return {"input_ids": enc["input_ids"].to(dev), "attention_mask": enc["attention_mask"].to(dev)}

    def entity_scores(
        self, image: torch.Tensor, region_boxes: torch.Tensor, region_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Entity state probabilities and patch attention maps (no report needed).

        Args:
            image: ``[B, 1, S, S]``.
            region_boxes: ``[B, R, 4]``.
            region_mask: ``[B, R]``.

        Returns:
            ``(probs [B, E, 3]`` over absent/present/uncertain, ``attn [B, E, h, w])``.
        """
        vis = self.visual_features(image, region_boxes, region_mask)
        return vis["ecls_logits"].softmax(-1), vis["patch_attn"]

    def itm_score(
        self,
        image: torch.Tensor,
        region_boxes: torch.Tensor,
        region_mask: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Probability ``[B]`` that each image matches its paired report (ITM head)."""
        if self.fusion is None:
            raise RuntimeError("ITM is switched off (weight_itm=0)")
        vis = self.visual_features(image, region_boxes, region_mask)
        tokens, _ = self.text_encoder(input_ids, attention_mask)
        fused = self.fusion(tokens, attention_mask, vis["memory"])
        return self.itm_head(fused).softmax(-1)[:, 1]

    @torch.no_grad()
    def generate_ids(
        self,
        image: torch.Tensor,
        region_boxes: torch.Tensor,
        region_mask: torch.Tensor,
        max_length: int = 64,
        num_beams: int = 1,
        repetition_penalty: float = 1.0,
        min_length: int = 1,
    ) -> torch.Tensor:
        """Generated token ids ``[B, T]`` (see :meth:`ReportDecoder.generate`)."""
        if self.decoder is None:
            raise RuntimeError("the report decoder is switched off (weight_lm=0)")
        vis = self.visual_features(image, region_boxes, region_mask)
        return self.decoder.generate(vis["memory"], max_length, num_beams, repetition_penalty, min_length)

    @torch.no_grad()
    def generate(
        self,
        image: torch.Tensor,
        region_boxes: torch.Tensor,
        region_mask: torch.Tensor,
        max_length: int = 64,
        num_beams: int = 1,
        repetition_penalty: float = 1.0,
        min_length: int = 1,
    ) -> list[str]:
        """Generate reports (greedy with ``num_beams=1``, else beam search).

        Returns:
            one decoded string per image (special tokens removed).
        """
        ids = self.generate_ids(
            image, region_boxes, region_mask, max_length, num_beams, repetition_penalty, min_length
        )
        return self.tokenizer.batch_decode(ids.tolist(), skip_special_tokens=True)


def share_state(wrapper: nn.Module, model: nn.Module) -> None:
    """Give an export wrapper the state-dict layout of the GK-MVLP network it wraps.

    Registers ``model``'s children, parameters and buffers on ``wrapper`` at the top level (the same
    objects, so the wrapper's keys equal the network's and nothing is duplicated) and the network's
    checkpoint handling (:func:`upgrade_legacy_keys`, its recorded config), so a network's
    ``models/model.pt``, old ones included, loads into the wrapper as into the network.
    """
    for name, child in model.named_children():
        wrapper.add_module(name, child)
    for name, param in model.named_parameters(recurse=False):
        wrapper.register_parameter(name, param)
    for name, buf in model.named_buffers(recurse=False):
        wrapper.register_buffer(name, buf)
    wrapper.register_load_state_dict_pre_hook(upgrade_legacy_keys)
    config = network_config(model)
    if config is not None:
        record_config(wrapper, config)


class GKMVLPEntityPredictor(nn.Module):
    """Image-only wrapper for ``verify_net_in_out`` and traced ``ckpt_export``: ``image -> pred`` with the
    per-entity present probability ``[B, E]``; region boxes come from a fixed default layout (atlas).

    Args:
        model: a :class:`GKMVLP`.
        region_boxes: ``[R, 4]`` default boxes in pixels of an ``image_size`` square image.
        image_size: side the default boxes refer to; inputs of another size get scaled boxes.
        region_mask: optional ``[R]`` bool (default: all boxes valid).
    """

    def __init__(
        self,
        model: GKMVLP,
        region_boxes: torch.Tensor | Sequence[Sequence[float]],
        image_size: int,
        region_mask: torch.Tensor | Sequence[bool] | None = None,
    ) -> None:
        super().__init__()
        # The model's parts are registered at the top level, so this wrapper's state-dict keys equal a
        # GK-MVLP checkpoint's: ``models/model.pt`` loads into either, and MONAI's ``ckpt_export`` (which
        # copies by key name and silently skips mismatches) really loads the trained weights.
        share_state(self, model)
        object.__setattr__(self, "model", model)  # not registered: that would duplicate every key
        boxes = torch.as_tensor(region_boxes, dtype=torch.float32)
        mask = (
            torch.ones(boxes.shape[0], dtype=torch.bool)
            if region_mask is None
            else torch.as_tensor(region_mask)
        )
        self.register_buffer("region_boxes", boxes, persistent=False)
        self.register_buffer("region_mask", mask.bool(), persistent=False)
        self.image_size = image_size

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``[B, 1, S, S]`` image -> ``[B, E]`` present probability."""
        boxes, mask = fixed_region_inputs(image, self.region_boxes, self.image_size, self.region_mask)
        probs, _ = self.model.entity_scores(image, boxes, mask)
        return probs[..., 1]


SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(
        image_arch="resnet_tiny",
        dim=32,
        embed_dim=32,
        gk_layers=1,
        num_heads=2,
        fusion_layers=1,
        decoder_layers=1,
        max_text_length=32,
        knowledge_max_length=16,
    ),
    "cpu": dict(
        image_arch="resnet18",
        dim=128,
        embed_dim=128,
        gk_layers=1,
        num_heads=4,
        fusion_layers=1,
        decoder_layers=1,
        max_text_length=64,
        knowledge_max_length=48,
        text_layers=2,
        text_trainable_layers=0,
    ),
    "small": dict(
        image_arch="resnet18",
        dim=256,
        embed_dim=256,
        gk_layers=2,
        num_heads=4,
        fusion_layers=2,
        decoder_layers=2,
        max_text_length=128,
        knowledge_max_length=64,
    ),
    "base": dict(
        image_arch="resnet50",
        dim=384,
        embed_dim=256,
        gk_layers=4,
        num_heads=6,
        fusion_layers=3,
        decoder_layers=3,
        max_text_length=128,
        knowledge_max_length=64,
    ),
}


def _model_name(path_or_id: str | None) -> str | None:
    """A text model's name without the folder it lives in (the same model in another place is the same)."""
    return None if path_or_id is None else Path(str(path_or_id).rstrip("/")).name


def build_gkmvlp(
    size: str = "base",
    entity_descriptions: Sequence[str] = (),
    image_arch: str | None = None,
    image_size: int = 224,
    image_weights: str | None = None,
    text_model: str | None = None,
    tokenizer: str | None = None,
    text_layers: int | None = None,
    text_trainable_layers: int | None = None,
    **overrides: Any,
) -> GKMVLP:
    """Build a GK-MVLP network of a named size.

    ``tiny`` (tests): tiny ResNet, tiny random BERT (MiniLM vocabulary), width 32. ``cpu`` (the CPU demo):
    ResNet-18, the first 2 MiniLM layers frozen (run without gradients), width 128, 64 text tokens.
    ``small``: ResNet-18, MiniLM, width 256. ``base``: ResNet-50, MiniLM, width 384. Everything loads
    offline from local paths.

    Args:
        size: ``"tiny"``, ``"cpu"``, ``"small"`` or ``"base"``.
        entity_descriptions: entity knowledge descriptions (``E`` entries, required).
        image_arch: override the image encoder (e.g. ``"vit_b16"``; needs ``image_size`` multiple of 16).
        image_size: square input size.
        image_weights: optional local state-dict file for the image backbone.
        text_model: local folder / cached hub id of the text encoder (default MiniLM; ``tiny`` ignores it
            unless given).
        tokenizer: tokenizer path (default: ``text_model`` or MiniLM).
        text_layers: keep only the first ``text_layers`` layers of the pretrained text encoder.
        text_trainable_layers: train only its top layers (``0``: frozen, run without gradients).
        **overrides: any :class:`GKMVLP` keyword argument.

    Returns:
        the network, which records these settings as its config: its checkpoints carry them and loading
        one saved with other settings is an error (:mod:`gkmvlp_monai.models.config`).
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; known: {sorted(SIZES)}")
    if not entity_descriptions:
        raise ValueError("build_gkmvlp needs entity_descriptions (one per entity)")
    spec = dict(SIZES[size])
    arch = image_arch or spec.pop("image_arch")
    spec.pop("image_arch", None)
    spec.update(overrides)
    text_layers = spec.pop("text_layers", text_layers) if text_layers is None else text_layers
    text_trainable_layers = (
        spec.pop("text_trainable_layers", None) if text_trainable_layers is None else text_trainable_layers
    )
    spec.pop("text_layers", None)
    spec.pop("text_trainable_layers", None)
    image_encoder = ImageEncoder(arch, in_channels=1, img_size=image_size, weights_path=image_weights)
    max_len = spec["max_text_length"]
    if size == "tiny" and text_model is None:
        text_encoder = TextEncoder(
            config=tiny_bert_config(max_positions=max(max_len, spec["knowledge_max_length"]))
        )
    else:
        text_encoder = TextEncoder(
            text_model, max_length=max_len, num_layers=text_layers, trainable_layers=text_trainable_layers
        )
    tok = load_tokenizer(tokenizer or text_model)
    network = GKMVLP(image_encoder, text_encoder, tok, list(entity_descriptions), **spec)
    defaults = {
        k: p.default
        for k, p in inspect.signature(GKMVLP.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    config = {
        "network": "GKMVLP",
        "size": size,
        "image_arch": arch,
        "image_size": image_size,
        "text_model": _model_name(text_model),
        "text_layers": text_layers,
        "tokenizer": _model_name(tokenizer or text_model),
        "vocab_hash": vocab_hash(entity_descriptions),
        "num_entities": len(entity_descriptions),
        **{k: spec.get(k, defaults.get(k)) for k in ARCHITECTURE_FIELDS},
        "objective_weights": {n: spec.get(f"weight_{n}", defaults[f"weight_{n}"]) for n in LOSS_NAMES},
    }
    record_config(network, config)
    return network
