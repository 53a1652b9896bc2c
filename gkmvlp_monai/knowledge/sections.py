"""Section parser for MIMIC-CXR-style free-text radiology reports.

MIMIC-CXR reports are plain text with headings such as ``FINDINGS:``, ``IMPRESSION:``, ``INDICATION:``,
``HISTORY:`` and ``COMPARISON:``. Real reports have quirks this parser handles:

- headings in any case (``Findings:``, ``IMPRESSION:``), with or without a line break after the colon;
- combined headings (``FINDINGS AND IMPRESSION:``, ``FINDINGS/IMPRESSION:``): the text goes to
  ``findings`` and ``impression`` stays empty, so ``report`` does not repeat it;
- typos seen in the corpus (``FINIDNGS:``, ``FINDNGS:``, ``IMPRESSON:``, ``CONCLUSION:`` as impression);
- text wrapped over several lines: whitespace is collapsed to single spaces;
- ``___`` de-identification placeholders: kept as ``___`` (they stand for a date, name or number, and
  removing them would change sentences such as "compared to ___");
- reports with neither findings nor impression: when ``fallback=True`` the last paragraph that is not
  under a known administrative heading becomes ``impression`` and ``used_fallback`` is set, so an
  adapter can count such reports; with ``fallback=False`` both stay empty. Never an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# heading text (upper case, single spaces) -> section; None = a heading we recognise but do not keep
_HEADINGS: dict[str, str | None] = {
    "FINDINGS": "findings",
    "FINDING": "findings",
    "FINIDNGS": "findings",
    "FINDNGS": "findings",
    "FINAL REPORT FINDINGS": "findings",
    "FINDINGS AND IMPRESSION": "findings",
    "FINDINGS/IMPRESSION": "findings",
    "FINDINGS / IMPRESSION": "findings",
    "IMPRESSION AND FINDINGS": "findings",
    "IMPRESSION": "impression",
    "IMPRESSIONS": "impression",
    "IMPRESSON": "impression",
    "CONCLUSION": "impression",
    "CONCLUSIONS": "impression",
    "SUMMARY": "impression",
    "INDICATION": "indication",
    "INDICATIONS": "indication",
    "HISTORY": "indication",
    "CLINICAL HISTORY": "indication",
    "CLINICAL INDICATION": "indication",
    "REASON FOR EXAM": "indication",
    "REASON FOR EXAMINATION": "indication",
    "COMPARISON": "comparison",
    "COMPARISONS": "comparison",
    "EXAMINATION": None,
    "EXAM": None,
    "TECHNIQUE": None,
    "PROCEDURE": None,
    "NOTIFICATION": None,
    "RECOMMENDATION": None,
    "RECOMMENDATIONS": None,
    "RECOMMENDATION(S)": None,
    "ADDENDUM": None,
    "FINAL ADDENDUM": None,
    "WET READ": None,
    "TYPE OF EXAMINATION": None,
    "REFERRING PHYSICIAN": None,
    "FINAL REPORT": None,
}

# A heading: at a line start, words from the table above, then a colon. Longest alternatives first so
# "FINDINGS AND IMPRESSION" wins over "FINDINGS".
_HEADING_RE = re.compile(
    r"(?im)^[ \t]*("
    + "|".join(re.escape(h).replace(r"\ ", r"[ \t]+") for h in sorted(_HEADINGS, key=len, reverse=True))
    + r")[ \t]*:"
)

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")

SECTION_KEYS = ("findings", "impression", "indication", "comparison")


@dataclass
class ReportSections:
    """Sections of one report; absent sections are empty strings.

    Attributes:
        findings: FINDINGS text.
        impression: IMPRESSION text.
        indication: INDICATION / HISTORY text.
        comparison: COMPARISON text.
        used_fallback: True when neither findings nor impression was found and the last paragraph was
            used as ``impression``.
    """

    findings: str = ""
    impression: str = ""
    indication: str = ""
    comparison: str = ""
    used_fallback: bool = False

    @property
    def report(self) -> str:
        """The text the model reads: findings then impression (``""`` when both are empty)."""
        return report_text(self.findings, self.impression)

    @property
    def has_findings_or_impression(self) -> bool:
        """True when the report has a findings or an impression section (fallback not counted)."""
        return bool(self.findings or self.impression) and not self.used_fallback


def _collapse(text: str) -> str:
    return " ".join(text.split())


def report_text(findings: str, impression: str) -> str:
    """Join findings then impression into the model's report text.

    Args:
        findings: findings section.
        impression: impression section.

    Returns:
        ``"<findings> <impression>"`` with empty parts left out.
    """
    return " ".join(part for part in (findings.strip(), impression.strip()) if part)


def _normalise_heading(raw: str) -> str:
    return " ".join(raw.upper().split())


def parse_report_sections(text: str, fallback: bool = True) -> ReportSections:
    """Split a MIMIC-CXR-style report into its sections.

    Args:
        text: the report as stored in the ``.txt`` file.
        fallback: when no findings and no impression are found, use the last paragraph (ignoring
            paragraphs under administrative headings such as EXAMINATION or TECHNIQUE) as impression.

    Returns:
        The sections, whitespace collapsed, ``___`` placeholders kept. Repeated headings (e.g. two
        IMPRESSION blocks after an addendum) are concatenated in order.
    """
    sections = ReportSections()
    parts: dict[str, list[str]] = {k: [] for k in SECTION_KEYS}
    matches = list(_HEADING_RE.finditer(text))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        target = _HEADINGS[_normalise_heading(m.group(1))]
        body = text[m.end() : end]
        if target not in ("findings", "impression"):
            # short sections (indication, comparison, administrative) end at the first blank line: in
            # MIMIC, un-headed report prose often follows them after an empty line
            body = _PARAGRAPH_BREAK.split(body.lstrip("\n"), maxsplit=1)[0]
        body = _collapse(body)
        if target is not None and body:
            parts[target].append(body)
    for key in SECTION_KEYS:
        setattr(sections, key, " ".join(parts[key]))
    if fallback and not sections.findings and not sections.impression:
        for paragraph in reversed(_PARAGRAPH_BREAK.split(text)):
            heading = _HEADING_RE.search(paragraph)
            prose = _collapse(paragraph[: heading.start()] if heading else paragraph)
            if not prose:
                continue
            if re.fullmatch(r"[A-Z ]+", prose):  # banners such as "FINAL REPORT" are not prose
                continue
            sections.impression = prose
            sections.used_fallback = True
            break
    return sections
