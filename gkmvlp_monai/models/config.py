"""The network config a checkpoint carries beside its weights, and the check made when one is loaded.

A network built by a builder (:func:`~gkmvlp_monai.models.gkmvlp.build_gkmvlp` and the task builders)
records what it was built with (:func:`record_config`): its size, image and text encoders, image size,
the hash of the vocabularies it was built on and its widths. ``state_dict()`` writes that record into
the state dict's ``_metadata``, the per-module dictionary torch keeps beside the tensors, which
``torch.save`` stores and ``torch.load(weights_only=True)`` restores. So every file saved from the state
dict carries it (MONAI's ``CheckpointSaver`` writing ``models/model.pt``, the full training checkpoints)
and ``model.pt`` stays a plain state dict (``docs/decisions/150-checkpoint-config.md``).

Loading compares the identity fields (:data:`IDENTITY_FIELDS`) that both the saved and the requested
config hold; a difference raises :class:`NetworkConfigError` before any tensor is copied. A checkpoint
saved before configs were recorded loads as before, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from torch import nn

ModuleT = TypeVar("ModuleT", bound=nn.Module)

#: the ``_metadata`` entry holding a module's config
CONFIG_KEY = "network_config"
#: the :class:`~gkmvlp_monai.models.gkmvlp.GKMVLP` arguments that fix its architecture
ARCHITECTURE_FIELDS = (
    "dim",
    "embed_dim",
    "gk_layers",
    "num_heads",
    "fusion_layers",
    "decoder_layers",
    "max_text_length",
    "knowledge_max_length",
    "num_regions",
)
#: fields that must be equal on both sides when both record them (what the weights mean and their shapes)
IDENTITY_FIELDS = (
    "size",
    "image_arch",
    "image_size",
    "text_model",
    "text_layers",
    "tokenizer",
    "vocab_hash",
    *ARCHITECTURE_FIELDS,
)


class NetworkConfigError(ValueError):
    """A checkpoint saved from a network built with one config, loaded into a network built with another.

    Args:
        saved: the checkpoint's config.
        requested: the config of the network being loaded.
        source: the checkpoint file (or a description of where the state dict came from).
    """

    def __init__(self, saved: Mapping[str, Any], requested: Mapping[str, Any], source: str) -> None:
        self.saved = dict(saved)
        self.requested = dict(requested)
        self.source = source
        diff = config_differences(saved, requested)
        fields = ", ".join(f"{k} {a!r} vs {b!r}" for k, (a, b) in diff.items())
        super().__init__(
            f"{source} was saved from a network built with {_summary(saved, diff)}, but it is being loaded "
            f"into a network built with {_summary(requested, diff)} (saved vs requested: {fields}). Build the "
            "network with the checkpoint's settings (e.g. the same model_size, image_size, image_arch) or "
            "load the checkpoint made for this network."
        )


def _summary(config: Mapping[str, Any], diff: Mapping[str, Any]) -> dict[str, Any]:
    """The main fields of a config and those that differ."""
    keep = ("network", "size", "image_arch", "image_size", "text_model", "vocab_hash", *diff)
    return {k: config[k] for k in dict.fromkeys(keep) if k in config}


def _json_safe(value: Any) -> Any:
    """``value`` as plain JSON types (tuples as lists), so ``torch.load(weights_only=True)`` reads it."""
    return json.loads(json.dumps(value, default=str))


def vocab_hash(entity_descriptions: Sequence[str] | None = None) -> str:
    """Hash of what the network's entity- and region-indexed weights refer to.

    Covers the entity knowledge descriptions in order (default: those of
    ``gkmvlp_monai/core/vocabularies/entities.json``) and the region names of ``regions.json`` in order;
    editing an entity's synonyms or a region's side does not change it, reordering or rewording does.

    Returns:
        the first 16 hex digits of a SHA-256.
    """
    from gkmvlp_monai.core import vocab

    if entity_descriptions is None:
        entity_descriptions = [e.description for e in vocab.entities()]
    doc = {"entities": list(entity_descriptions), "regions": vocab.region_names()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def network_config(module: nn.Module) -> dict[str, Any] | None:
    """The config ``module`` was built with (:func:`record_config`), or ``None``."""
    config = getattr(module, "network_config", None)
    return dict(config) if isinstance(config, Mapping) else None


def record_config(module: ModuleT, config: Mapping[str, Any]) -> ModuleT:
    """Attach ``config`` to ``module``: its state dicts carry it and loading one checks it.

    Args:
        module: the network (or a wrapper with the same state-dict keys).
        config: JSON-like values (str, int, float, bool, None, lists, dicts).

    Returns:
        ``module``.
    """
    module.network_config = _json_safe(dict(config))
    if not getattr(module, "_network_config_hooks", False):
        module.register_state_dict_post_hook(_save_config)
        module.register_load_state_dict_pre_hook(_check_config_on_load)
        module._network_config_hooks = True
    return module


def _save_config(module: nn.Module, state_dict: Any, prefix: str, local_metadata: dict[str, Any]) -> None:
    local_metadata[CONFIG_KEY] = dict(module.network_config)


def _check_config_on_load(
    module: nn.Module, state_dict: Any, prefix: str, local_metadata: dict[str, Any], *_: Any
) -> None:
    saved = local_metadata.get(CONFIG_KEY)
    if saved is not None:
        check_config(saved, module.network_config, "the checkpoint")
    elif "version" in local_metadata:  # a state dict torch wrote, from before configs were recorded
        warnings.warn(
            f"the state dict loaded into {type(module).__name__} records no network config (saved before "
            "checkpoints recorded one): loading it unchecked, as before",
            UserWarning,
            stacklevel=2,
        )


def saved_config(state_dict: Any, prefix: str = "") -> dict[str, Any] | None:
    """The config a state dict records for the module at ``prefix``, or else for the nearest module
    around it (a GK-MVLP checkpoint's config covers its ``image_encoder.`` entries); ``None`` if none."""
    metadata = getattr(state_dict, "_metadata", None) or {}
    name = prefix.rstrip(".")
    while True:
        entry = metadata.get(name)
        if isinstance(entry, Mapping) and CONFIG_KEY in entry:
            return dict(entry[CONFIG_KEY])
        if not name:
            return None
        name = name.rpartition(".")[0]


def config_differences(saved: Mapping[str, Any], requested: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{field: (saved, requested)}`` for the identity fields both configs hold with different values."""
    return {
        k: (saved[k], requested[k])
        for k in IDENTITY_FIELDS
        if k in saved and k in requested and saved[k] != requested[k]
    }


def check_config(saved: Mapping[str, Any], requested: Mapping[str, Any], source: str) -> None:
    """Raise :class:`NetworkConfigError` naming ``source`` when the configs differ in an identity field."""
    if config_differences(saved, requested):
        raise NetworkConfigError(saved, requested, source)
