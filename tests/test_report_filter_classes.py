"""Classes of finding language: the support-device group, compound findings, anatomical device words."""

from __future__ import annotations

import pytest

from gkmvlp_monai.core import vocab
from gkmvlp_monai.knowledge.mesh import mesh_entities, parse_mesh_tag
from gkmvlp_monai.knowledge.report_filter import ReportFilter
from gkmvlp_monai.tasks.report_generation.clinical import clinical_efficacy, positive_entities

DEVICES = set(vocab.entity_group("support_devices").entities)


@pytest.fixture(scope="module")
def rf() -> ReportFilter:
    return ReportFilter()


def devices(rf: ReportFilter, text: str, state: str = "present") -> set[str]:
    return {n for n, v in rf.annotate(text).items() if n in DEVICES and v["state"] == state}


def test_support_device_group_is_the_chexpert_label() -> None:
    group = vocab.entity_group("support_devices")
    assert group.label == "Support Devices"
    assert set(group.entities) == set(vocab.label_entities("chexpert14")["Support Devices"])
    assert {
        "tube",
        "line",
        "catheter",
        "picc",
        "tip",
        "pacemaker",
        "lead",
        "wire",
        "clip",
        "stent",
    } <= DEVICES
    assert {"hardware", "device"} <= DEVICES and "nodule" not in DEVICES
    assert vocab.group_of("picc") == "support_devices" and vocab.group_of("effusion") is None
    with pytest.raises(KeyError, match="unicorns"):
        vocab.entity_group("unicorns")


@pytest.mark.parametrize(
    ("text", "member"),
    [
        ("Left-sided pacemaker in place.", "pacemaker"),
        ("Dual-chamber pacer with leads in the right atrium and ventricle.", "lead"),
        ("Right PICC line tip in the SVC.", "picc"),
        ("Endotracheal tube 4 cm above the carina.", "tube"),
        ("Intact sternotomy wires.", "wire"),
        ("Median sternotomy wires and mediastinal surgical clips.", "clip"),
        ("Coronary stent.", "stent"),
        ("Cervical spine fusion hardware.", "hardware"),
        ("Prior anterior cervical fusion.", "hardware"),
        ("Bilateral breast prostheses.", "device"),
        ("VP shunt tubing is identified.", "catheter"),
    ],
)
def test_device_words_are_support_devices(rf: ReportFilter, text: str, member: str) -> None:
    found = devices(rf, text)
    assert member in found, found
    assert "support_devices" in positive_entities(rf, text, groups=True)


def test_negated_devices_are_absent(rf: ReportFilter) -> None:
    assert devices(rf, "No lines or tubes.") == set()
    assert devices(rf, "No lines or tubes.", "absent") == {"line", "tube"}


@pytest.mark.parametrize(
    "text",
    [
        "Septal lines at the bases.",
        "Kerley B lines are present.",
        "XXXX B lines demonstrated.",
        "Lung lines remain low.",
        "No visible pleural line.",
        "Density related to the scapular tip.",
        "Opacity at the tip of the scapula.",
        "Azygoesophageal line is normal.",
    ],
)
def test_anatomical_uses_of_device_words_are_not_devices(rf: ReportFilter, text: str) -> None:
    assert devices(rf, text) == set() and devices(rf, text, "absent") == set()


def test_kerley_lines_stay_edema_and_anatomical_phrases_load(rf: ReportFilter) -> None:
    # a longer (or equal) entity phrase wins over an anatomical use
    assert rf.annotate("Kerley B lines.")["edema"]["state"] == "present"
    phrases = vocab.anatomical_phrases()
    assert phrases[("septal", "lines")] == phrases[("lung", "lines")] == "anatomical or radiographic line"
    assert phrases[("tip", "of", "the", "scapula")] == "anatomical tip"


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("Calcified granuloma in the right upper lobe.", "present"),
        ("Stable calcified granulomas.", "present"),
        ("Granulomatous calcifications.", "present"),
        ("Calcified left hilar granuloma.", "present"),
        ("No calcified granuloma.", "absent"),
        ("Possible calcified granuloma.", "uncertain"),
    ],
)
def test_compound_findings_assert_each_part(rf: ReportFilter, text: str, state: str) -> None:
    out = rf.annotate(text)
    assert out["granuloma"]["state"] == state and out["calcification"]["state"] == state


def test_compound_parts_share_their_location(rf: ReportFilter) -> None:
    out = rf.annotate("Calcified granuloma in the right upper lobe.")
    assert out["granuloma"]["regions"] == out["calcification"]["regions"] == ["right upper lung zone"]
    assert vocab.compound_phrases()[("calcified", "granuloma")] == ("granuloma", "calcification")


def test_nodular_describes_an_opacity(rf: ReportFilter) -> None:
    out = rf.annotate("6 mm nodular opacity in the right upper lobe.")
    assert out["opacity"]["state"] == "present" and "nodule" not in out
    assert rf.annotate("Right upper lobe nodule.")["nodule"]["state"] == "present"


def test_clinical_correlation_is_not_an_assertion(rf: ReportFilter) -> None:
    assert rf.annotate("Correlate clinically for pneumonia.")["pneumonia"]["state"] == "uncertain"
    assert rf.annotate("Right lower lobe pneumonia.")["pneumonia"]["state"] == "present"


def test_mesh_reads_compound_terms_and_device_groups_by_meaning() -> None:
    tag = parse_mesh_tag("Calcified Granuloma/lung/base/right")
    assert tag.entities == ("granuloma",) and tag.meaning == ("granuloma", "calcification")
    assert "calcification" in mesh_entities(["Calcified Granuloma"], by_meaning=True)
    assert "calcification" not in mesh_entities(["Calcified Granuloma"])
    for term in ("Catheters, Indwelling", "Implanted Medical Device", "Surgical Instruments", "Stents"):
        assert parse_mesh_tag(term).groups == ("support_devices",), term
    assert parse_mesh_tag("Opacity").groups == ()


def test_clinical_efficacy_scores_devices_as_one_group(rf: ReportFilter) -> None:
    refs, hyps = ["Pacer leads in the right ventricle."], ["Left chest wall pacemaker."]
    grouped = clinical_efficacy(refs, hyps, report_filter=rf, kinds=("abnormal",))
    assert grouped["ce_micro_f1"] == pytest.approx(1.0)
    split = clinical_efficacy(refs, hyps, report_filter=rf, kinds=("abnormal",), groups=False)
    assert split["ce_micro_f1"] < 1.0
