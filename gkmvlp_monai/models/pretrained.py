"""Loading pre-trained GK-MVLP weights into a network (the one place downstream bundles do it)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from gkmvlp_monai.models.config import check_config, network_config, saved_config
from gkmvlp_monai.models.gkmvlp import upgrade_state_dict

logger = logging.getLogger(__name__)


def load_pretrained_weights(
    network: torch.nn.Module,
    path: str | Path | None,
    strict: bool = False,
    prefix: str = "",
    config: Mapping[str, Any] | None = None,
) -> torch.nn.Module:
    """Load a GK-MVLP pre-training checkpoint into ``network`` (or a sub-module of it).

    Accepts the bundle's plain ``models/model.pt`` state dict and full training checkpoints
    (``{"model": ..., "optimizer": ...}``). ``None`` leaves the network as initialised (the
    "from scratch" baseline). The checkpoint's network config must agree with the network's
    (:mod:`gkmvlp_monai.models.config`); a checkpoint that records none (saved before configs were
    recorded) loads as before, with a warning. Entries whose shapes differ are skipped.

    Args:
        network: module to load into.
        path: checkpoint file, or ``None``.
        strict: require every key to match.
        prefix: load only the entries under this prefix (e.g. ``"image_encoder."``), stripped of it.
        config: the config to check the checkpoint's against (default: the one ``network`` records; a
            network without one is not checked).

    Returns:
        ``network`` (for use inside bundle configs).

    Raises:
        FileNotFoundError: the checkpoint does not exist (the message names it).
        NetworkConfigError: the checkpoint was saved from a network built with another config (the
            message names the file and both configs).
        RuntimeError: nothing in the checkpoint matched the network.
    """
    if path is None:
        logger.info("no pre-trained checkpoint given: %s starts from scratch", type(network).__name__)
        return network
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"pre-trained checkpoint {path} not found (run the gkmvlp_pretrain bundle first)"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    saved = saved_config(state, prefix)
    requested = dict(config) if config is not None else network_config(network)
    if saved is None:
        warnings.warn(
            f"{path} records no network config (saved before checkpoints recorded one): loading it "
            "unchecked, as before",
            UserWarning,
            stacklevel=2,
        )
    elif requested is not None:
        check_config(saved, requested, str(path))
    state = upgrade_state_dict(dict(state))  # entries renamed since the checkpoint was saved
    if prefix:
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    own = network.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise RuntimeError(f"{path}: no entry matches {type(network).__name__} (prefix={prefix!r})")
    result = network.load_state_dict(usable, strict=False)
    skipped = sorted(set(state) - set(usable))
    if strict and (result.missing_keys or skipped):
        raise RuntimeError(f"{path}: missing {result.missing_keys[:5]}..., unusable {skipped[:5]}...")
    logger.info(
        "loaded %d/%d tensors from %s (%d missing in checkpoint, %d skipped)",
        len(usable),
        len(own),
        path,
        len(result.missing_keys),
        len(skipped),
    )
    return network
