"""Tests of the MIMIC-CXR report section parser."""

from __future__ import annotations

from gkmvlp_monai.knowledge.sections import parse_report_sections, report_text

MIMIC_REPORT = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  ___F with new onset ascites  // eval for infection

 TECHNIQUE:  Chest PA and lateral

 COMPARISON:  ___.

 Findings:  There is no focal consolidation, pleural effusion or pneumothorax.  Bilateral
 nodular opacities that most likely represent nipple shadows.

 IMPRESSION:

 No acute cardiopulmonary process.
"""


def test_standard_report_sections_and_wrapping() -> None:
    sec = parse_report_sections(MIMIC_REPORT)
    assert sec.findings == (
        "There is no focal consolidation, pleural effusion or pneumothorax. Bilateral "
        "nodular opacities that most likely represent nipple shadows."
    )
    assert sec.impression == "No acute cardiopulmonary process."
    assert sec.indication == "___F with new onset ascites // eval for infection"
    assert sec.comparison == "___."
    assert not sec.used_fallback and sec.has_findings_or_impression
    assert sec.report == sec.findings + " " + sec.impression


def test_combined_heading_goes_to_findings_only() -> None:
    sec = parse_report_sections("FINDINGS AND IMPRESSION: Lungs are clear.\nRECOMMENDATION(S): None.")
    assert sec.findings == "Lungs are clear." and sec.impression == ""
    assert sec.report == "Lungs are clear."


def test_history_and_typo_headings() -> None:
    sec = parse_report_sections("HISTORY: cough.\n\nFINDNGS: Heart normal.\nIMPRESSON: No pneumonia.")
    assert (sec.indication, sec.findings, sec.impression) == ("cough.", "Heart normal.", "No pneumonia.")


def test_no_findings_no_impression_uses_last_paragraph() -> None:
    text = (
        " FINAL REPORT\n INDICATION: eval\n COMPARISON: ___.\n\n Heart size is normal. Lungs\n are clear.\n"
    )
    sec = parse_report_sections(text)
    assert sec.used_fallback and not sec.has_findings_or_impression
    assert sec.impression == "Heart size is normal. Lungs are clear."
    assert sec.comparison == "___."
    assert parse_report_sections(text, fallback=False).report == ""


def test_empty_and_heading_only_reports_do_not_crash() -> None:
    assert parse_report_sections("").report == ""
    sec = parse_report_sections("FINAL REPORT\nEXAMINATION: CHEST\n")
    assert sec.report == "" and not sec.used_fallback


def test_report_text_skips_empty_parts() -> None:
    assert report_text("", "Impression.") == "Impression."
    assert report_text("A.", "") == "A."
