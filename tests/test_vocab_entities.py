"""Integrity of gkmvlp_monai/core/vocabularies/entities.json and its loaders."""

from __future__ import annotations

from collections import Counter

import pytest

from gkmvlp_monai.core import vocab
from gkmvlp_monai.knowledge.mesh import mesh_map

MEDKLIP_SAMPLE = [
    "normal",
    "clear",
    "free",
    "effusion",
    "opacity",
    "enlarge",
    "tip",
    "hyperinflate",
    "chf",
    "aspiration",
    "tail_abnorm_obs",
    "excluded_obs",
]


def test_entities_cover_medklip_and_kinds() -> None:
    ents = vocab.entities()
    kinds = Counter(e.kind for e in ents)
    assert kinds["normal"] == 8 and kinds["catch-all"] == 2 and kinds["abnormal"] >= 65
    assert set(MEDKLIP_SAMPLE) <= set(vocab.entity_names())
    assert len(set(vocab.entity_names())) == len(ents)


def test_every_entity_has_description_phrases_and_valid_maps() -> None:
    regions = set(vocab.region_names())
    chex, nih = set(vocab.label_set("chexpert14")), set(vocab.label_set("nih14"))
    for e in vocab.entities():
        assert len(e.description) > 40, e.name
        assert e.phrases and all(vocab.tokenize(p) for p in e.phrases), e.name
        assert set(e.default_regions) <= regions
        assert set(e.chexpert) <= chex and set(e.nih) <= nih
    # every NIH label except none is reachable from some entity
    assert all(vocab.label_entities("nih14").values())
    assert vocab.entity_label_map("chexpert14")["cardiomegaly"] == ["Cardiomegaly"]
    with pytest.raises(KeyError):
        vocab.entity_label_map("covidx")


def test_no_phrase_is_shared_between_entities() -> None:
    seen: dict[tuple[str, ...], str] = {}
    for e in vocab.entities():
        for p in e.phrases:
            key = tuple(vocab.tokenize(p))
            assert seen.setdefault(key, e.name) == e.name, f"{p!r}: {seen[key]} and {e.name}"


def test_entity_index_and_rules() -> None:
    assert vocab.entity_index("Effusion") == vocab.entity_names().index("effusion")
    with pytest.raises(KeyError, match="unicorn"):
        vocab.entity_index("unicorn")
    assert vocab.entity("cardiomegaly").rules["relabel"]["from"] == ["enlarge", "prominence"]


def test_mesh_map_names_only_known_entities() -> None:
    names = set(vocab.entity_names())
    doc = mesh_map()
    for term, entry in doc["terms"].items():
        assert set(entry["entities"]) <= names, term
        for ents in entry.get("qualifier_entities", {}).values():
            assert set(ents) <= names, term
    for word, entry in doc["qualifiers"].items():
        assert set(entry.get("entities", [])) <= names, word
