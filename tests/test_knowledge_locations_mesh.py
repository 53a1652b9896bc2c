"""Location words → regions, and IU MeSH tags → entities/regions."""

from __future__ import annotations

import pytest

from gkmvlp_monai.core import vocab
from gkmvlp_monai.knowledge.mesh import UnknownMeshTermError, mesh_entities, parse_mesh_tag


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("right lower lobe", ["right lower lung zone"]),
        ("lung/base/right", ["right lower lung zone"]),
        ("left upper lobe", ["left upper lung zone"]),
        ("bilateral bases", ["right lower lung zone", "left lower lung zone"]),
        ("base", ["right lower lung zone", "left lower lung zone"]),
        ("bibasilar", ["right lower lung zone", "left lower lung zone"]),
        ("right apex", ["right apical zone"]),
        ("left perihilar", ["left hilar structures"]),
        ("lingula", ["left mid lung zone"]),
        ("right lingula", ["left mid lung zone"]),
        ("retrocardiac", ["left lower lung zone"]),
        ("left costophrenic angle", ["left costophrenic angle"]),
        ("right hemidiaphragm", ["right hemidiaphragm"]),
        ("right", ["right lung"]),
        ("left lung", ["left lung"]),
        ("right upper and middle lobes", ["right upper lung zone", "right mid lung zone"]),
        ("lower thoracic spine", ["spine"]),
        ("cardiac silhouette", ["cardiac silhouette"]),
        ("aortic arch", ["aortic arch"]),
        ("SVC", ["svc"]),
        ("carina", ["carina"]),
        ("right atrium", ["right atrium"]),
        ("upper abdomen", ["abdomen"]),
        ("left clavicle", ["left clavicle"]),
        ("trachea", ["trachea"]),
        ("", []),
    ],
)
def test_location_regions(phrase: str, expected: list[str]) -> None:
    assert vocab.location_regions(phrase) == expected


def test_every_location_word_maps_to_existing_regions() -> None:
    names = set(vocab.region_names())
    words = vocab.location_words()
    assert len(words) > 150
    for word in words:
        regs = vocab.location_regions([word])
        assert set(regs) <= names, word
        # words needing a lung word after them resolve only in context
        if vocab.location_lexicon().zones.get(tuple(vocab.tokenize(word)), {}).get("needs_lung_context"):
            assert regs == [] and vocab.location_regions([word + " zone"]), word
        else:
            assert regs, word


def test_laterality_keeps_sides_apart() -> None:
    for side in ("right", "left"):
        regs = vocab.location_regions(f"{side} lower lobe and apex")
        assert regs and all(r.startswith(side) for r in regs)


def test_parse_mesh_finding_tag() -> None:
    tag = parse_mesh_tag("Opacity/lung/base/right")
    assert tag.term == "Opacity" and tag.entities == ("opacity",) and tag.kind == "finding"
    assert tag.regions == ("right lower lung zone",)
    assert tag.qualifiers == {"location": ["lung", "base", "right"]}


def test_parse_mesh_structure_tags() -> None:
    assert parse_mesh_tag("Lung/hypoinflation/mild").entities == ("low",)
    assert parse_mesh_tag("Lung/hypoinflation/mild").qualifiers["severity"] == ["mild"]
    assert parse_mesh_tag("Aorta/tortuous").entities == ("tortuous",)
    assert parse_mesh_tag("Aorta/tortuous").regions == ("aortic arch",)
    assert parse_mesh_tag("Cardiac Shadow/enlarged").entities == ("cardiomegaly",)
    assert parse_mesh_tag("Diaphragm/elevated/left").regions == ("left hemidiaphragm",)
    # a finding qualifier on a finding term is only a descriptor
    assert parse_mesh_tag("Opacity/prominent").entities == ("opacity",)


def test_parse_mesh_non_findings_and_unknowns() -> None:
    assert parse_mesh_tag("Thoracic Vertebrae").entities == ()
    assert parse_mesh_tag("Technical Quality of Image Unsatisfactory").kind == "none"
    assert parse_mesh_tag("thoracic vertebrae/degenerative").entities == ("degenerative",)
    with pytest.raises(UnknownMeshTermError, match="Made Up"):
        parse_mesh_tag("Made Up/right", strict=True)
    assert parse_mesh_tag("Made Up/right").entities == ()
    with pytest.raises(ValueError):
        parse_mesh_tag(" / ")


def test_mesh_entities_unions_regions() -> None:
    out = mesh_entities(["Opacity/lung/base/right", "Opacity/lung/apex/left", "Thoracic Vertebrae"])
    assert out == {"opacity": ["right lower lung zone", "left apical zone"]}
