"""Loaders for the shared vocabularies in ``configs/vocab`` (defined once, loaded everywhere).

Every module that needs region names, entity names or label-set names gets them from here; nothing in
the package repeats them as constants.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from gkmvlp_monai.paths import vocab_path


def load_vocab_file(name: str) -> dict[str, Any]:
    """Parse ``configs/vocab/<name>``; errors name the file."""
    path = vocab_path(name)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: invalid JSON ({err})") from err


@dataclass(frozen=True)
class Region:
    """One anatomical region of the Chest ImaGenome vocabulary."""

    index: int
    name: str
    side: str
    group: str


@lru_cache(maxsize=1)
def regions() -> tuple[Region, ...]:
    """The 29 anatomical regions in canonical order (index = region id)."""
    doc = load_vocab_file("regions.json")
    return tuple(Region(i, r["name"], r["side"], r["group"]) for i, r in enumerate(doc["regions"]))


def region_names() -> list[str]:
    """Names of the anatomical regions in canonical order."""
    return [r.name for r in regions()]


def region_index(name: str) -> int:
    """Index of a region by name (case-insensitive); raises ``KeyError`` naming the unknown region."""
    lookup = {r.name.lower(): r.index for r in regions()}
    try:
        return lookup[name.strip().lower()]
    except KeyError as err:
        raise KeyError(f"unknown anatomical region {name!r}; see configs/vocab/regions.json") from err


def label_set(name: str) -> list[str]:
    """Class names of a public label set (``chexpert14``, ``nih14``, ``rsna_pneumonia``, ``siim_pneumothorax``,
    ``covidx``) in official order."""
    sets = load_vocab_file("label_sets.json")["label_sets"]
    if name not in sets:
        raise KeyError(f"unknown label set {name!r}; known: {sorted(sets)} (configs/vocab/label_sets.json)")
    return list(sets[name])
