"""Scope fields of a prediction record (view, body part, in scope and why), read from the loader's metadata."""

from __future__ import annotations

from typing import Any

import torch


def _meta_value(meta: dict[str, Any], key: str, i: int, default: Any) -> Any:
    value = meta.get(key, None)
    if value is None:
        return default
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return value[i] if i < len(value) else default
    return value


def scope_records(image: Any, n: int) -> list[dict[str, Any]]:
    """``view``, ``body_part``, ``in_scope`` and ``scope_reason`` of each image of a collated batch.

    Args:
        image: the batch's image MetaTensor (its ``meta`` as written by ``LoadCXRImage``).
        n: number of images.

    Returns:
        One dict per image (an image without the fields is in scope, view and body part unknown).
    """
    meta = getattr(image, "meta", {}) or {}
    return [
        {
            "view": str(_meta_value(meta, "view_position", i, "")),
            "body_part": str(_meta_value(meta, "body_part", i, "")),
            "in_scope": bool(_meta_value(meta, "in_scope", i, True)),
            "scope_reason": str(_meta_value(meta, "scope_reason", i, "")),
        }
        for i in range(n)
    ]
