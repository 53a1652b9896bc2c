"""IU X-ray MeSH major tags → entities, regions and qualifiers (``gkmvlp_monai/core/vocabularies/mesh_map.json``).

A tag such as ``"Opacity/lung/base/right"`` is a finding term followed by qualifiers; the map says which
entities the term asserts present, and each qualifier is a location word (resolved through
``locations.json``), a severity, a descriptor, an anatomy word outside the 29 regions, or (on an
anatomical term such as ``Lung`` or ``Aorta``) a finding (``Lung/hypoinflation`` → ``low``).

``entities`` are what the indexer coded (iu-synth draws them); ``meaning`` reads the term as a radiologist
means it with the compound table of ``gkmvlp_monai/core/vocabularies/finding_classes.json`` (``Calcified Granuloma`` →
granuloma *and* calcification), and ``groups`` names the entity groups it belongs to (the device terms
``Catheters, Indwelling``, ``Implanted Medical Device``, ``Surgical Instruments``, ``Tube, Inserted``,
``Stents``, ``Spinal Fusion`` … → ``support_devices``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from gkmvlp_monai.core.vocab import (
    compound_phrases,
    entity_groups,
    load_vocab_file,
    location_regions,
    tokenize,
)


class UnknownMeshTermError(KeyError):
    """A MeSH term or qualifier is not in ``gkmvlp_monai/core/vocabularies/mesh_map.json``."""


@dataclass(frozen=True)
class MeshTag:
    """One parsed MeSH major tag.

    Attributes:
        term: the MeSH term as written (part before the first ``/``).
        entities: entity names the tag asserts present (empty for non-finding terms).
        regions: region names from the tag's location words (canonical order; may be empty).
        qualifiers: ``{role: [words]}`` for the parts after the term (roles: location, severity,
            descriptor, anatomy, finding).
        kind: ``finding``, ``structure`` or ``none``.
        meaning: ``entities`` plus the parts of a compound term (``Calcified Granuloma`` → granuloma,
            calcification); what the tag asserts read by meaning.
    """

    term: str
    entities: tuple[str, ...]
    regions: tuple[str, ...]
    qualifiers: dict[str, list[str]]
    kind: str
    meaning: tuple[str, ...] = ()

    @property
    def groups(self) -> tuple[str, ...]:
        """Entity groups (``finding_classes.json``) holding an entity of ``meaning``."""
        return tuple(g.name for g in entity_groups().values() if set(g.entities) & set(self.meaning))


@lru_cache(maxsize=1)
def mesh_map() -> dict[str, Any]:
    """The MeSH map with lower-cased lookup tables under ``terms_lc`` and ``qualifiers_lc``."""
    doc = load_vocab_file("mesh_map.json")
    doc["terms_lc"] = {k.lower(): v for k, v in doc["terms"].items()}
    doc["qualifiers_lc"] = {k.lower(): v for k, v in doc["qualifiers"].items()}
    return doc


def mesh_terms() -> list[str]:
    """Every MeSH term of the map, as spelled in IU."""
    return list(mesh_map()["terms"])


def term_entities(term: str) -> list[str]:
    """Entities a MeSH finding term maps to (empty for structure/none terms); raises if unknown."""
    entry = mesh_map()["terms_lc"].get(term.strip().lower())
    if entry is None:
        raise UnknownMeshTermError(
            f"MeSH term {term!r} is not in gkmvlp_monai/core/vocabularies/mesh_map.json"
        )
    return list(entry["entities"])


def parse_mesh_tag(tag: str, strict: bool = False) -> MeshTag:
    """Parse one IU MeSH major tag.

    Args:
        tag: e.g. ``"Opacity/lung/base/right"``, ``"Lung/hypoinflation/mild"``, ``"normal"``.
        strict: raise :class:`UnknownMeshTermError` for a term or qualifier missing from the map; when
            False an unknown term gives no entities and an unknown qualifier is kept under ``unknown``.

    Returns:
        The parsed :class:`MeshTag`.
    """
    doc = mesh_map()
    parts = [p.strip() for p in tag.split("/") if p.strip()]
    if not parts:
        raise ValueError("empty MeSH tag")
    term = parts[0]
    entry = doc["terms_lc"].get(term.lower())
    if entry is None:
        if strict:
            raise UnknownMeshTermError(
                f"MeSH term {term!r} is not in gkmvlp_monai/core/vocabularies/mesh_map.json"
            )
        entry = {"kind": "none", "entities": []}
    kind = entry["kind"]
    entities: list[str] = list(entry["entities"])
    qualifiers: dict[str, list[str]] = {}
    location_words: list[str] = [entry["location"]] if entry.get("location") else []
    for word in parts[1:]:
        q = doc["qualifiers_lc"].get(word.lower())
        if q is None:
            if strict:
                raise UnknownMeshTermError(f"MeSH qualifier {word!r} (in {tag!r}) is not in mesh_map.json")
            qualifiers.setdefault("unknown", []).append(word)
            continue
        role = q["role"]
        override = entry.get("qualifier_entities", {}).get(word.lower())
        if override and kind == "finding":
            # the indexer codes this finding with this qualifier ("Markings/bronchovascular" = crowding)
            entities = list(override)
        if role == "finding" and kind != "structure":
            role = "descriptor"
        qualifiers.setdefault(role, []).append(word)
        if role == "location":
            location_words.extend(q.get("words", [word.lower()]))
        elif role == "finding":
            override = entry.get("qualifier_entities", {}).get(word.lower())
            for name in override or q["entities"]:
                if name not in entities:
                    entities.append(name)
    regions = tuple(location_regions(location_words)) if location_words else ()
    meaning = list(entities)
    if kind == "finding":
        meaning.extend(compound_phrases().get(tuple(tokenize(term)), ()))
    return MeshTag(
        term=term,
        entities=tuple(entities),
        regions=regions,
        qualifiers=qualifiers,
        kind=kind,
        meaning=tuple(dict.fromkeys(meaning)),
    )


def mesh_entities(tags: list[str], by_meaning: bool = False) -> dict[str, list[str]]:
    """Entities asserted present by a report's MeSH major tags, with the union of their tag regions.

    Args:
        tags: the report's MeSH major tags.
        by_meaning: read each tag by meaning (:attr:`MeshTag.meaning`: compound terms assert every
            part) instead of the coded ``entities``.
    """
    out: dict[str, list[str]] = {}
    for tag in tags:
        parsed = parse_mesh_tag(tag)
        for name in parsed.meaning if by_meaning else parsed.entities:
            regs = out.setdefault(name, [])
            regs.extend(r for r in parsed.regions if r not in regs)
    return out
