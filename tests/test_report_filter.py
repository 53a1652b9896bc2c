"""Report filter: negation, uncertainty, pseudo-triggers, sections, grounding, datalists."""

from __future__ import annotations

import json

import pytest

from gkmvlp_monai.knowledge.context import split_sentences
from gkmvlp_monai.knowledge.report_filter import ReportFilter


@pytest.fixture(scope="module")
def rf() -> ReportFilter:
    return ReportFilter()


def state(rf: ReportFilter, text: str, name: str) -> str | None:
    return rf.annotate(text).get(name, {}).get("state")


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        ("No pleural effusion.", "effusion", "absent"),
        ("FINDINGS: No pleural effusion.", "effusion", "absent"),
        ("Without pneumothorax.", "pneumothorax", "absent"),
        ("The lungs are free of focal airspace disease.", "consolidation", "absent"),
        ("Lungs are clear of consolidation.", "consolidation", "absent"),
        ("Negative for pneumothorax.", "pneumothorax", "absent"),
        ("No evidence of pneumonia.", "pneumonia", "absent"),
        ("Effusion is not seen.", "effusion", "absent"),
        ("The previous effusion has resolved.", "effusion", "absent"),
        ("No effusion, pneumothorax, or focal consolidation.", "consolidation", "absent"),
        ("Cannot exclude small effusion.", "effusion", "uncertain"),
        ("A small effusion cannot be excluded.", "effusion", "uncertain"),
        ("Possible right lower lobe pneumonia.", "pneumonia", "uncertain"),
        ("Findings may represent atelectasis.", "atelectasis", "uncertain"),
        ("Opacity suggestive of pneumonia.", "pneumonia", "uncertain"),
        ("Atelectasis versus pneumonia.", "pneumonia", "uncertain"),
        ("Question of a small nodule.", "nodule", "uncertain"),
        ("No change in the right effusion.", "effusion", "present"),
        ("No increase in size of the effusion.", "effusion", "present"),
        ("Not only effusion but also edema.", "effusion", "present"),
        ("No pneumothorax but there is a small effusion.", "effusion", "present"),
        ("No pneumothorax; small effusion.", "effusion", "present"),
        ("No pneumothorax, however left basilar atelectasis is seen.", "atelectasis", "present"),
        ("Normal heart size.", "cardiomegaly", "absent"),
        ("Heart size is within normal limits.", "cardiomegaly", "absent"),
        ("The heart is not enlarged.", "cardiomegaly", "absent"),
        ("The heart is enlarged.", "cardiomegaly", "present"),
        ("Mild cardiomegaly.", "cardiomegaly", "present"),
        ("Lungs are clear.", "clear", "present"),
        ("No acute cardiopulmonary abnormality.", "abnormality", "absent"),
        ("Stable calcified granuloma.", "granuloma", "present"),
        ("Pulmonary vascular markings are normal.", "marking", "absent"),
    ],
)
def test_assertions(rf: ReportFilter, text: str, name: str, expected: str) -> None:
    assert state(rf, text, name) == expected


def test_section_headers_are_not_entities(rf: ReportFilter) -> None:
    out = rf.annotate("FINDINGS: No pleural effusion. IMPRESSION: Normal chest.")
    assert (
        "finding" not in out and out["effusion"]["state"] == "absent" and out["normal"]["state"] == "present"
    )
    assert split_sentences("FINDINGS: a. IMPRESSION: b") == ["a", "b"]


def test_present_wins_over_absent_across_sentences(rf: ReportFilter) -> None:
    assert state(rf, "No large effusion. Small left effusion.", "effusion") == "present"


def test_empty_and_missing_text(rf: ReportFilter) -> None:
    assert rf.annotate("") == {} and rf.annotate("   ") == {}
    assert rf.annotate_item({"findings": "", "impression": ""}) == {}
    assert rf.annotate_item({"impression": "No effusion."})["effusion"]["state"] == "absent"


def test_grounding_and_laterality(rf: ReportFilter) -> None:
    out = rf.annotate("Right lower lobe opacity and small left effusion. Bibasilar atelectasis.")
    assert out["opacity"]["regions"] == ["right lower lung zone"]
    assert out["effusion"]["regions"] == ["left costophrenic angle"]
    assert out["atelectasis"]["regions"] == ["right lower lung zone", "left lower lung zone"]
    assert rf.annotate("Opacity in the lingula.")["opacity"]["regions"] == ["left mid lung zone"]
    # no location: default regions; absent: none
    assert rf.annotate("Cardiomegaly.")["cardiomegaly"]["regions"] == ["cardiac silhouette"]
    assert rf.annotate("No right effusion.")["effusion"]["regions"] == []
    assert rf.annotate("Possible right upper lobe nodule.")["nodule"] == {
        "state": "uncertain",
        "regions": ["right upper lung zone"],
    }


def test_annotate_datalist(rf: ReportFilter, tmp_path) -> None:
    doc = {
        "name": "t",
        "training": [
            {"image": "a.png", "findings": "No effusion.", "impression": "Cardiomegaly."},
            {"image": "b.png", "findings": "", "impression": ""},
        ],
        "validation": [
            {
                "image": "c.png",
                "report": "Lungs are clear.",
                "entities": {"clear": {"state": "present", "regions": []}},
            }
        ],
    }
    src, dst = tmp_path / "in.json", tmp_path / "out.json"
    src.write_text(json.dumps(doc))
    counts = rf.annotate_datalist(src, dst)
    assert counts == {"items": 3, "annotated": 1, "no_text": 1, "kept": 1}
    out = json.loads(dst.read_text())
    assert out["training"][0]["entities"]["cardiomegaly"]["state"] == "present"
    assert out["training"][0]["entities"]["effusion"]["state"] == "absent"
    assert out["training"][1]["entities"] == {}
    assert rf.annotate_datalist(src, dst, overwrite=True)["annotated"] == 2


@pytest.mark.parametrize(
    ("text", "calcification", "host"),
    [
        # "calcified ... granuloma" is a compound finding: it states the granuloma *and* its calcification
        ("Calcified right hilar granulomas.", "present", "granuloma"),
        ("Calcified stable right midlung granulomas.", "present", "granuloma"),
        ("Granulomatous calcifications are present.", "present", "granuloma"),
        # calcification as its own noun, explained by a granulomatous process (IU: Calcinosis)
        ("Right hilar calcifications suggest a previous granulomatous process.", "present", None),
        ("Calcified lymph nodes and granuloma are noted.", "present", "granuloma"),
        ("Calcified left hilar lymph nodes/granulomas.", "present", "granuloma"),
        # vascular calcification of a report that asserts atherosclerosis is the atherosclerosis
        ("Atherosclerotic calcifications of the aorta.", None, "atherosclerosis"),
        ("Aortic calcification. This is consistent with atherosclerotic disease.", None, "atherosclerosis"),
        ("Aortic calcification.", "present", None),
        ("Calcified hilar lymph nodes. Atherosclerotic aorta.", "present", "atherosclerosis"),
        ("Aortic calcification. No atherosclerosis.", "present", None),
    ],
)
def test_calcification_attribute_rules(
    rf: ReportFilter, text: str, calcification: str | None, host: str | None
) -> None:
    out = rf.annotate(text)
    assert out.get("calcification", {}).get("state") == calcification
    if host:
        assert out[host]["state"] == "present"


def test_interstitial_prominence_is_prominence_not_marking(rf: ReportFilter) -> None:
    out = rf.annotate("Mild interstitial prominence. Prominent interstitial markings.")
    assert out["prominence"]["state"] == "present" and out["marking"]["state"] == "present"
    assert "marking" not in rf.annotate("Stable mild interstitial prominence.")


def test_annotate_sentence_matches_a_one_sentence_report(rf: ReportFilter) -> None:
    sentence = "Aorta is calcified and tortuous, compatible with atherosclerotic disease"
    names = {n for n, _, _ in rf.annotate_sentence(sentence)}
    assert names == set(rf.annotate(sentence)) and "calcification" not in names
