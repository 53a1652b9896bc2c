"""Loaders for the shared vocabularies in ``gkmvlp_monai/core/vocabularies`` (defined once, loaded everywhere).

Every module that needs region names, entity names or label-set names gets them from here; nothing in
the package repeats them as constants.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from gkmvlp_monai.core.paths import vocab_path


def load_vocab_file(name: str) -> dict[str, Any]:
    """Parse ``gkmvlp_monai/core/vocabularies/<name>``; errors name the file."""
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
        raise KeyError(
            f"unknown anatomical region {name!r}; see gkmvlp_monai/core/vocabularies/regions.json"
        ) from err


def label_set(name: str) -> list[str]:
    """Class names of a public label set (``chexpert14``, ``nih14``, ``rsna_pneumonia``, ``siim_pneumothorax``,
    ``covidx``) in official order."""
    sets = load_vocab_file("label_sets.json")["label_sets"]
    if name not in sets:
        raise KeyError(
            f"unknown label set {name!r}; known: {sorted(sets)} (gkmvlp_monai/core/vocabularies/label_sets.json)"
        )
    return list(sets[name])


# ---------------------------------------------------------------------------------------------------------
# Location words (gkmvlp_monai/core/vocabularies/locations.json)
# ---------------------------------------------------------------------------------------------------------

_TOKEN_SPLIT = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens of ``text`` (hyphenated words stay whole: ``right-sided``)."""
    return _TOKEN_SPLIT.findall(text.lower())


@dataclass(frozen=True)
class LocationLexicon:
    """The parsed ``locations.json``: phrase tables keyed by tuples of lower-cased tokens."""

    sides: dict[tuple[str, ...], tuple[str, ...]]
    zones: dict[tuple[str, ...], dict[str, Any]]
    structures: dict[tuple[str, ...], tuple[str, ...]]
    lung_context_words: frozenset[str]
    default_sides: tuple[str, ...]
    max_len: int


@dataclass(frozen=True)
class LocationMatch:
    """One location phrase found in a token list: tokens ``[start, end)``, its table and its key."""

    start: int
    end: int
    kind: str
    key: tuple[str, ...]


@lru_cache(maxsize=1)
def location_lexicon() -> LocationLexicon:
    """Load ``gkmvlp_monai/core/vocabularies/locations.json``; raises ``ValueError`` when a pattern names an unknown region."""
    doc = load_vocab_file("locations.json")
    known = set(region_names())

    def check(region: str, where: str) -> None:
        if region not in known:
            raise ValueError(f"locations.json: {where} maps to unknown region {region!r}")

    zones: dict[tuple[str, ...], dict[str, Any]] = {}
    for word, entry in doc["zones"].items():
        sides = tuple(entry.get("sides", doc["default_sides"]))
        for pattern in entry["regions"]:
            for side in sides:
                check(pattern.format(side=side), word)
        zones[tuple(tokenize(word))] = entry
    structures = {}
    for word, regs in doc["structures"].items():
        for r in regs:
            check(r, word)
        structures[tuple(tokenize(word))] = tuple(regs)
    sides_tab = {tuple(tokenize(w)): tuple(s) for w, s in doc["sides"].items()}
    keys = list(zones) + list(structures) + list(sides_tab)
    return LocationLexicon(
        sides=sides_tab,
        zones=zones,
        structures=structures,
        lung_context_words=frozenset(doc["lung_context_words"]),
        default_sides=tuple(doc["default_sides"]),
        max_len=max(len(k) for k in keys),
    )


def location_words() -> list[str]:
    """Every location word or phrase of the vocabulary (sides, zones, structures)."""
    lex = location_lexicon()
    return sorted(" ".join(k) for k in [*lex.sides, *lex.zones, *lex.structures])


def find_locations(tokens: list[str]) -> list[LocationMatch]:
    """Find location phrases in ``tokens``, longest match first, left to right.

    A zone marked ``needs_lung_context`` (``upper``, ``lower``, ``mid``) is kept only when a lung word
    follows within two tokens.
    """
    lex = location_lexicon()
    out: list[LocationMatch] = []
    i = 0
    while i < len(tokens):
        found = None
        for n in range(min(lex.max_len, len(tokens) - i), 0, -1):
            key = tuple(tokens[i : i + n])
            for kind, table in (("zone", lex.zones), ("structure", lex.structures), ("side", lex.sides)):
                if key in table:
                    found = LocationMatch(i, i + n, kind, key)
                    break
            if found:
                break
        if found and found.kind == "zone" and lex.zones[found.key].get("needs_lung_context"):
            following = tokens[found.end : found.end + 3]
            if not any(t in lex.lung_context_words for t in following):
                found = None
        if found:
            out.append(found)
            i = found.end
        else:
            i += 1
    return out


def resolve_locations(matches: list[LocationMatch]) -> list[str]:
    """Combine location matches of one phrase into region names (canonical order).

    Sides apply to every lateralised zone of the phrase (both sides when the phrase names none); a zone
    with fixed sides keeps them; structures map directly; a phrase naming only a side gives that lung.
    """
    lex = location_lexicon()
    sides: list[str] = []
    for m in matches:
        if m.kind == "side":
            sides.extend(s for s in lex.sides[m.key] if s not in sides)
    chosen: set[str] = set()
    has_zone = False
    for m in matches:
        if m.kind == "structure":
            chosen.update(lex.structures[m.key])
        elif m.kind == "zone":
            has_zone = True
            entry = lex.zones[m.key]
            zone_sides = entry.get("sides") or sides or list(lex.default_sides)
            for pattern in entry["regions"]:
                chosen.update(pattern.format(side=s) for s in zone_sides)
    if sides and not has_zone and not chosen:
        chosen.update(f"{s} lung" for s in sides)
    # a whole lung is redundant next to a zone of the same lung
    for side in ("right", "left"):
        if f"{side} lung" in chosen and any(r != f"{side} lung" and r.startswith(side) for r in chosen):
            chosen.discard(f"{side} lung")
    return [r for r in region_names() if r in chosen]


def location_regions(words: list[str] | str) -> list[str]:
    """Regions named by location words: a MeSH location path or a report phrase.

    Args:
        words: a phrase (``"left lower lobe"``), a MeSH path (``"lung/base/right"``) or a list of words or
            phrases (``["lung", "base", "right"]``).

    Returns:
        Region names from ``regions.json`` in canonical order (empty when nothing is recognised).

    Examples:
        ``location_regions("right lower lobe") == ["right lower lung zone"]``;
        ``location_regions("bilateral bases") == ["right lower lung zone", "left lower lung zone"]``.
    """
    if isinstance(words, str):
        words = words.split("/")
    matches: list[LocationMatch] = []
    for word in words:
        matches.extend(find_locations(tokenize(word)))
    return resolve_locations(matches)


# ---------------------------------------------------------------------------------------------------------
# Observation entities (gkmvlp_monai/core/vocabularies/entities.json)
# ---------------------------------------------------------------------------------------------------------

ENTITY_KINDS = ("normal", "abnormal", "catch-all")
ATTRIBUTE_SCOPES = ("phrase", "report")
_RULE_KEYS = ("relabel", "absent_if", "normal_means_absent", "attribute_of")
_LABEL_FIELDS = {"chexpert14": "chexpert", "nih14": "nih"}


@dataclass(frozen=True)
class Entity:
    """One observation entity: lemma name, kind, matching phrases, knowledge text, defaults and label maps.

    Attributes:
        index: position in ``entities.json`` (the entity id of ``entity_state``/``entity_regions``).
        name: lemma (``"enlarge"``, ``"effusion"``).
        kind: ``normal``, ``abnormal`` or ``catch-all``.
        forms: inflected single-word forms of the lemma.
        synonyms: phrases meaning the entity.
        description: the project's knowledge text.
        default_regions: regions used when the report gives no location.
        chexpert: CheXpert-14 labels this entity supports.
        nih: NIH-14 labels this entity supports.
        rules: optional clause rules (``relabel``, ``absent_if``, ``normal_means_absent``,
            ``attribute_of``).
    """

    index: int
    name: str
    kind: str
    forms: tuple[str, ...]
    synonyms: tuple[str, ...]
    description: str
    default_regions: tuple[str, ...]
    chexpert: tuple[str, ...]
    nih: tuple[str, ...]
    rules: dict[str, Any]

    @property
    def phrases(self) -> tuple[str, ...]:
        """Every phrase that names this entity (name with ``_`` as space, forms, synonyms)."""
        return (self.name.replace("_", " "), *self.forms, *self.synonyms)


@lru_cache(maxsize=1)
def entities() -> tuple[Entity, ...]:
    """The observation entities in canonical order; validates regions and label names on load."""
    doc = load_vocab_file("entities.json")
    known_regions = set(region_names())
    labels = {field: set(label_set(name)) for name, field in _LABEL_FIELDS.items()}
    out = []
    for i, item in enumerate(doc["entities"]):
        name = item["name"]
        if item["kind"] not in ENTITY_KINDS:
            raise ValueError(f"entities.json: {name}: unknown kind {item['kind']!r}")
        bad = set(item["default_regions"]) - known_regions
        if bad:
            raise ValueError(f"entities.json: {name}: unknown default regions {sorted(bad)}")
        for field, valid in labels.items():
            wrong = set(item[field]) - valid
            if wrong:
                raise ValueError(
                    f"entities.json: {name}: {field} labels {sorted(wrong)} not in label_sets.json"
                )
        rules = {k: item[k] for k in _RULE_KEYS if k in item}
        out.append(
            Entity(
                index=i,
                name=name,
                kind=item["kind"],
                forms=tuple(item["forms"]),
                synonyms=tuple(item["synonyms"]),
                description=item["description"],
                default_regions=tuple(r for r in region_names() if r in item["default_regions"]),
                chexpert=tuple(item["chexpert"]),
                nih=tuple(item["nih"]),
                rules=rules,
            )
        )
    _check_attribute_rules(out)
    return tuple(out)


def _check_attribute_rules(ents: list[Entity]) -> None:
    """Validate every ``attribute_of`` rule: known host entity, known scope, window for phrase scope."""
    names = {e.name for e in ents}
    for ent in ents:
        for rule in ent.rules.get("attribute_of", []):
            where = f"entities.json: {ent.name}: attribute_of"
            if rule.get("entity") not in names or rule.get("entity") == ent.name:
                raise ValueError(f"{where}: unknown or self host entity {rule.get('entity')!r}")
            if rule.get("scope") not in ATTRIBUTE_SCOPES:
                raise ValueError(f"{where}: scope {rule.get('scope')!r} not in {ATTRIBUTE_SCOPES}")
            if rule["scope"] == "phrase" and not (
                isinstance(rule.get("window"), int) and rule["window"] >= 0
            ):
                raise ValueError(f"{where}: phrase scope needs a non-negative integer 'window'")


def entity_names(kind: str | None = None) -> list[str]:
    """Entity names in canonical order (index = entity id).

    Args:
        kind: only entities of this kind (``"normal"``, ``"abnormal"``, ...); all when ``None``.
    """
    return [e.name for e in entities() if kind is None or e.kind == kind]


def entity_descriptions() -> list[str]:
    """The knowledge description of every entity, in canonical order (the GK module's input)."""
    return [e.description for e in entities()]


def entity_index(name: str) -> int:
    """Index of an entity by name; raises ``KeyError`` naming the unknown entity."""
    lookup = {e.name: e.index for e in entities()}
    try:
        return lookup[name.strip().lower()]
    except KeyError as err:
        raise KeyError(f"unknown entity {name!r}; see gkmvlp_monai/core/vocabularies/entities.json") from err


def entity(name: str) -> Entity:
    """The :class:`Entity` called ``name``."""
    return entities()[entity_index(name)]


def entity_phrases() -> dict[tuple[str, ...], str]:
    """Token tuple of every matching phrase → entity name (first entity wins a shared phrase)."""
    out: dict[tuple[str, ...], str] = {}
    for ent in entities():
        for phrase in ent.phrases:
            out.setdefault(tuple(tokenize(phrase)), ent.name)
    return out


def entity_label_map(label_set_name: str) -> dict[str, list[str]]:
    """Entity name → labels of ``chexpert14`` or ``nih14`` it supports (entities without labels omitted)."""
    if label_set_name not in _LABEL_FIELDS:
        raise KeyError(f"no entity mapping for label set {label_set_name!r}; known: {sorted(_LABEL_FIELDS)}")
    field = _LABEL_FIELDS[label_set_name]
    return {e.name: list(getattr(e, field)) for e in entities() if getattr(e, field)}


def label_entities(label_set_name: str) -> dict[str, list[str]]:
    """Label of ``chexpert14``/``nih14`` → entity names that support it (every label listed, maybe empty)."""
    out: dict[str, list[str]] = {label: [] for label in label_set(label_set_name)}
    for name, labels in entity_label_map(label_set_name).items():
        for label in labels:
            out[label].append(name)
    return out


# ---------------------------------------------------------------------------------------------------------
# Classes of finding language (gkmvlp_monai/core/vocabularies/finding_classes.json)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntityGroup:
    """Entities that one clinical finding spans (``support_devices``: catheter, line, tube, PICC, ...).

    Attributes:
        name: group name (``"support_devices"``).
        entities: member entity names, in canonical entity order.
        label: the CheXpert-14 label the group is (every member, and no other entity, maps to it).
        description: what the group holds.
    """

    name: str
    entities: tuple[str, ...]
    label: str
    description: str


@lru_cache(maxsize=1)
def entity_groups() -> dict[str, EntityGroup]:
    """The entity groups of ``finding_classes.json``; raises ``ValueError`` for an unknown member entity
    or when the members differ from the entities that map to the group's CheXpert label."""
    doc = load_vocab_file("finding_classes.json")
    order = {n: i for i, n in enumerate(entity_names())}
    out: dict[str, EntityGroup] = {}
    for name, item in doc["groups"].items():
        unknown = sorted(set(item["entities"]) - set(order))
        if unknown:
            raise ValueError(f"finding_classes.json: group {name}: unknown entities {unknown}")
        members = tuple(sorted(set(item["entities"]), key=order.__getitem__))
        label = item["label"]
        mapped = set(label_entities("chexpert14").get(label, []))
        if label not in label_set("chexpert14") or mapped != set(members):
            raise ValueError(
                f"finding_classes.json: group {name}: members must be exactly the entities with CheXpert "
                f"label {label!r} in entities.json (missing {sorted(mapped - set(members))}, "
                f"extra {sorted(set(members) - mapped)})"
            )
        out[name] = EntityGroup(name, members, label, item["description"])
    return out


def entity_group(name: str) -> EntityGroup:
    """The :class:`EntityGroup` called ``name``; raises ``KeyError`` naming the unknown group."""
    groups = entity_groups()
    if name not in groups:
        raise KeyError(f"unknown entity group {name!r}; known: {sorted(groups)} (finding_classes.json)")
    return groups[name]


def group_of(entity_name: str) -> str | None:
    """Name of the group holding ``entity_name`` (``None`` when it is in none)."""
    return next((g.name for g in entity_groups().values() if entity_name in g.entities), None)


@lru_cache(maxsize=1)
def compound_phrases() -> dict[tuple[str, ...], tuple[str, ...]]:
    """Token tuple of a compound finding phrase → every entity it asserts (``calcified granuloma`` →
    granuloma, calcification). The first part is the entity the phrase names in ``entities.json``."""
    doc = load_vocab_file("finding_classes.json")
    names = set(entity_names())
    phrases = entity_phrases()
    out: dict[tuple[str, ...], tuple[str, ...]] = {}
    for phrase, parts in doc["compounds"].items():
        key = tuple(tokenize(phrase))
        if not parts or set(parts) - names:
            raise ValueError(f"finding_classes.json: compound {phrase!r}: unknown parts {parts}")
        if phrases.get(key) != parts[0]:
            raise ValueError(
                f"finding_classes.json: compound {phrase!r} must be a phrase of its first part {parts[0]!r}"
            )
        out[key] = tuple(dict.fromkeys(parts))
    return out


@lru_cache(maxsize=1)
def anatomical_phrases() -> dict[tuple[str, ...], str]:
    """Token tuple of an anatomical use of a device word (``septal lines``, ``tip of the scapula``) → its
    class. The report filter reads such a phrase as no entity unless a longer entity phrase covers it."""
    doc = load_vocab_file("finding_classes.json")
    out: dict[tuple[str, ...], str] = {}
    for item in doc["anatomical_uses"]:
        for head in item["heads"]:
            h = tuple(tokenize(head))
            for word in item.get("before", []):
                out[tuple(tokenize(word)) + h] = item["class"]
            for word in item.get("after", []):
                out[h + tuple(tokenize(word))] = item["class"]
    return out


# ---------------------------------------------------------------------------------------------------------
# Assertion words (gkmvlp_monai/core/vocabularies/context.json)
# ---------------------------------------------------------------------------------------------------------

TRIGGER_CATEGORIES = ("negated", "uncertain", "pseudo", "terminate")
TRIGGER_DIRECTIONS = ("forward", "backward", "both")


@dataclass(frozen=True)
class ContextVocab:
    """The parsed ``context.json``: assertion triggers, section headers and "normal" words.

    Attributes:
        triggers: ``(phrase, category, direction)`` rows; categories are :data:`TRIGGER_CATEGORIES`,
            directions :data:`TRIGGER_DIRECTIONS`.
        section_headers: token-joined header sentences that are dropped ("findings", "impression").
        normal_words: phrases that make a ``normal_means_absent`` mention absent in their clause.
    """

    triggers: tuple[tuple[str, str, str], ...]
    section_headers: frozenset[str]
    normal_words: tuple[str, ...]


@lru_cache(maxsize=1)
def context_vocab() -> ContextVocab:
    """Load ``gkmvlp_monai/core/vocabularies/context.json``; raises ``ValueError`` for an unknown category or direction, a
    phrase listed twice under one category and direction, or a phrase with no word token."""
    doc = load_vocab_file("context.json")
    rows: list[tuple[str, str, str]] = []
    for category, by_direction in doc["triggers"].items():
        if category not in TRIGGER_CATEGORIES:
            raise ValueError(
                f"context.json: unknown trigger category {category!r}; known: {TRIGGER_CATEGORIES}"
            )
        for direction, phrases in by_direction.items():
            if direction not in TRIGGER_DIRECTIONS:
                raise ValueError(
                    f"context.json: {category}: unknown direction {direction!r}; known: {TRIGGER_DIRECTIONS}"
                )
            seen: set[tuple[str, ...]] = set()
            for phrase in phrases:
                key = tuple(tokenize(phrase))
                if not key:
                    raise ValueError(f"context.json: {category}/{direction}: phrase {phrase!r} has no word")
                if key in seen:
                    raise ValueError(f"context.json: {category}/{direction}: {phrase!r} is listed twice")
                seen.add(key)
                rows.append((phrase, category, direction))
    return ContextVocab(
        triggers=tuple(rows),
        section_headers=frozenset(" ".join(tokenize(h)) for h in doc["section_headers"]),
        normal_words=tuple(doc["normal_words"]),
    )


def default_region_boxes(image_size: int) -> list[list[float]]:
    """Default ``[29, 4]`` region boxes (pixels of an ``image_size`` square image, vocabulary order).

    From ``gkmvlp_monai/core/vocabularies/region_layout.json`` (a median layout); only for images without region boxes.
    """
    layout = load_vocab_file("region_layout.json")["boxes"]
    missing = [n for n in region_names() if n not in layout]
    if missing:
        raise KeyError(f"gkmvlp_monai/core/vocabularies/region_layout.json lacks regions {missing}")
    return [[v * image_size for v in layout[n]] for n in region_names()]
