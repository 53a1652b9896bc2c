"""Parser for Indiana University chest X-ray (NLMCXR / OpenI) report XML files."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field


class ReportParseError(ValueError):
    """A report file could not be parsed; the message names the file."""


@dataclass
class IUReport:
    """One IU X-ray report.

    Attributes:
        uid: report id, e.g. ``"CXR1002"``.
        findings, impression, indication, comparison: section texts ("" when absent).
        mesh_major: MeSH major tags, e.g. ``["Opacity/lung/base/right", "Cardiomegaly/mild"]``.
        mesh_automatic: automatically extracted MeSH terms.
        image_ids: ids of the report's images, e.g. ``["CXR1002_IM-0004-1001"]``.
        captions: caption per image id (PA / lateral hints live there).
    """

    uid: str
    findings: str = ""
    impression: str = ""
    indication: str = ""
    comparison: str = ""
    mesh_major: list[str] = field(default_factory=list)
    mesh_automatic: list[str] = field(default_factory=list)
    image_ids: list[str] = field(default_factory=list)
    captions: dict[str, str] = field(default_factory=dict)

    @property
    def is_normal(self) -> bool:
        """True when the only MeSH major tag is ``normal``."""
        return [t.lower() for t in self.mesh_major] == ["normal"]


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def parse_iu_xml(xml_text: str, source: str = "<string>") -> IUReport:
    """Parse one NLMCXR report XML document.

    Args:
        xml_text: the XML document.
        source: file name used in error messages.

    Returns:
        The parsed report; missing sections are empty strings.

    Raises:
        ReportParseError: malformed XML or no report id.
    """
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as err:
        raise ReportParseError(f"{source}: not well-formed XML ({err})") from err
    uid_el = root.find("uId")
    if uid_el is None or not uid_el.get("id"):
        raise ReportParseError(f"{source}: no <uId id=...> element; not an NLMCXR report")
    report = IUReport(uid=uid_el.get("id", ""))
    for el in root.iter("AbstractText"):
        label = (el.get("Label") or "").strip().lower()
        if label in ("findings", "impression", "indication", "comparison"):
            setattr(report, label, _clean(el.text))
    mesh = root.find("MeSH")
    if mesh is not None:
        report.mesh_major = [_clean(e.text) for e in mesh.findall("major") if _clean(e.text)]
        report.mesh_automatic = [_clean(e.text) for e in mesh.findall("automatic") if _clean(e.text)]
    for img in root.findall("parentImage"):
        image_id = img.get("id")
        if image_id:
            report.image_ids.append(image_id)
            report.captions[image_id] = _clean(img.findtext("caption"))
    return report
