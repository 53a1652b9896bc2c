"""IU X-ray (Open-i / NLMCXR): report XMLs and PNG images.

Layout (Open-i ``NLMCXR_reports.tgz`` and ``NLMCXR_png.tgz`` extracted into one folder)::

    <root>/ecgen-radiology/1.xml ... 3999.xml      (any *.xml under <root> is read)
    <root>/images/CXR1_1_IM-0001-3001.png ...      (<image_id>.png, image ids from <parentImage id>)

The Kaggle mirror's ``images/images_normalized/1_IM-0001-3001.dcm.png`` names are also found. Views
come, when present, from ``indiana_projections.csv`` (Kaggle: ``uid,filename,projection`` with
Frontal/Lateral; Frontal gives ``""`` because it does not say PA or AP) or from a DICOM-header table
with ``imageid`` and ``View Position`` columns (``nlmcxr_dicom_metadata.csv[.gz]``).
``subject_id`` is the report uid (``CXR1``); there is no official split, so splits are per report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gkmvlp_monai.data.adapters.base import (
    AdapterError,
    AdapterResult,
    norm_view,
    optional_file,
    optional_table,
    read_csv,
)
from gkmvlp_monai.data.datalist import SkipLog, assign_splits, relative_to
from gkmvlp_monai.knowledge.iu_xml import parse_iu_xml
from gkmvlp_monai.knowledge.sections import report_text


def _read_views(root: Path) -> dict[str, str]:
    views: dict[str, str] = {}
    proj = optional_table(root, "indiana_projections")
    if proj is not None:
        df = read_csv(proj, ["uid", "filename", "projection"])
        for r in df.to_dict("records"):
            stem = r["filename"].strip().removesuffix(".png").removesuffix(".dcm")
            views[f"CXR{stem}"] = "LATERAL" if r["projection"].strip().lower() == "lateral" else ""
    meta = optional_table(root, "nlmcxr_dicom_metadata")
    if meta is not None:
        df = read_csv(meta, ["imageid", "View Position"], low_memory=False)
        for r in df.to_dict("records"):
            views[r["imageid"].strip()] = norm_view(r["View Position"])
    return views


def adapt_iu_xray(
    root: Path,
    out_dir: Path,
    seed: int = 0,
    val_ratio: float = 0.1,
    test_ratio: float = 0.2,
    images_dir: Path | None = None,
    **_: Any,
) -> AdapterResult:
    """Build the IU X-ray datalist: one item per image with its report's sections and MeSH tags.

    Args:
        root: IU folder.
        out_dir: datalist folder.
        seed: split seed.
        val_ratio: validation share of reports.
        test_ratio: test share of reports.
        images_dir: image folder (default: searched under ``root``).

    Returns:
        The adapter result.

    Raises:
        AdapterError: no XML files, unreadable tables.
        ReportParseError: a malformed XML (names the file).
    """
    xmls = sorted(root.rglob("*.xml"))
    if not xmls:
        raise AdapterError(f"{root}: no report *.xml files (expected ecgen-radiology/*.xml)")
    images = {p.name: p for p in sorted(Path(images_dir or root).rglob("*.png"))}
    views = _read_views(root)
    skipped, notes = SkipLog(), SkipLog()
    items = []
    for xml in xmls:
        rep = parse_iu_xml(xml.read_text(encoding="utf-8"), source=str(xml))
        if not rep.image_ids:
            skipped.add("report without images", xml.name)
            continue
        if not rep.findings and not rep.impression:
            notes.add("report has neither FINDINGS nor IMPRESSION (kept, empty report text)", xml.name)
        for image_id in rep.image_ids:
            kaggle_name = image_id.removeprefix("CXR") + ".dcm.png"
            path = images.get(f"{image_id}.png") or images.get(kaggle_name)
            if path is None:
                skipped.add("image file missing", f"{image_id}.png")
                continue
            items.append(
                {
                    "image": relative_to(path, out_dir),
                    "image_id": image_id,
                    "subject_id": rep.uid,
                    "study_id": rep.uid,
                    "view": views.get(image_id, ""),
                    "findings": rep.findings,
                    "impression": rep.impression,
                    "indication": rep.indication,
                    "comparison": rep.comparison,
                    "report": report_text(rep.findings, rep.impression),
                    "mesh_major": list(rep.mesh_major),
                }
            )
    splits = assign_splits(items, None, val_ratio=val_ratio, test_ratio=test_ratio, seed=seed)
    return AdapterResult(
        name="iu_xray",
        splits=splits,
        label_names=[],
        label_type="multilabel",
        description="IU X-ray (Open-i NLMCXR); reports from XML; split per report uid",
        skipped=skipped,
        notes=notes,
    )
