"""MIMIC-CXR-JPG and MIMIC-CXR (DICOM) with free-text reports, official split and CheXpert labels,
optionally joined with Chest ImaGenome region boxes.

MIMIC-CXR-JPG 2.0.0 layout (PhysioNet)::

    <root>/mimic-cxr-2.0.0-split.csv.gz      dicom_id,study_id,subject_id,split (train/validate/test)
    <root>/mimic-cxr-2.0.0-metadata.csv.gz   dicom_id,subject_id,study_id,...,ViewPosition,Rows,Columns,...
    <root>/mimic-cxr-2.0.0-chexpert.csv.gz   subject_id,study_id,Atelectasis,...,Support Devices
    <root>/files/p10/p10000032/s50414267/<dicom_id>.jpg

MIMIC-CXR 2.0.0 (DICOM) layout::

    <root>/cxr-record-list.csv.gz            subject_id,study_id,dicom_id,path (files/.../<dicom_id>.dcm)
    <root>/files/p10/p10000032/s50414267.txt (report)  and  .../s50414267/<dicom_id>.dcm
    (the split/metadata/chexpert CSVs of MIMIC-CXR-JPG may be copied next to it or given with --jpg-root)

Reports (``mimic-cxr-reports.zip`` from MIMIC-CXR) are ``files/pXX/p<subject>/s<study>.txt`` under
``reports_root`` (default: ``<root>`` itself, then ``<root>/mimic-cxr-reports``).

Chest ImaGenome 1.0.0: ``silver_dataset/scene_graph/<dicom_id>_SceneGraph.json``; each object in
``objects`` has ``bbox_name`` and ``original_x1``/``original_y1``/``original_x2``/``original_y2`` in
pixels of the original MIMIC image (``x1``... are in a 224 x 224 resized frame and are not used).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gkmvlp_monai.core.vocab import label_set, region_names
from gkmvlp_monai.data.adapters.base import (
    AdapterError,
    AdapterResult,
    norm_view,
    optional_file,
    parse_label_value,
    read_csv,
    require_file,
)
from gkmvlp_monai.data.datalist import SkipLog, assign_splits, relative_to
from gkmvlp_monai.knowledge.sections import parse_report_sections

OFFICIAL_SPLIT = {"train": "training", "validate": "validation", "test": "test"}

# Chest ImaGenome bbox names -> our region names. Names equal to a region name (case-insensitive) map to
# it; these 7 Chest ImaGenome regions are outside the 29-region vocabulary and are dropped (counted).
IMAGENOME_DROPPED = frozenset(
    {
        "left cardiac silhouette",
        "right cardiac silhouette",
        "left cardiophrenic angle",
        "right cardiophrenic angle",
        "descending aorta",
        "left upper abdomen",
        "right upper abdomen",
    }
)
IMAGENOME_RENAMED: dict[str, str] = {}  # no renames are needed for Chest ImaGenome 1.0.0


def mimic_study_dir(subject_id: str, study_id: str) -> Path:
    """``files/p10/p10000032/s50414267`` for subject ``10000032`` and study ``50414267``."""
    return Path("files") / f"p{subject_id[:2]}" / f"p{subject_id}" / f"s{study_id}"


def _find_reports_root(root: Path, reports_root: Path | None) -> Path | None:
    if reports_root is not None:
        if not Path(reports_root).is_dir():
            raise AdapterError(f"reports folder {reports_root} not found")
        return Path(reports_root)
    for cand in (root, root / "mimic-cxr-reports"):
        if (cand / "files").is_dir() and next((cand / "files").glob("p*/p*/s*.txt"), None) is not None:
            return cand
    return None


def load_scene_graph_boxes(
    path: Path, image_size: list[int] | None, notes: SkipLog
) -> dict[str, list[float]]:
    """Region boxes of one Chest ImaGenome scene graph, named by ``region_names()``.

    Boxes are clipped to the image when its size is known; boxes empty after clipping are dropped and
    counted in ``notes``, as are the Chest ImaGenome regions outside the vocabulary.

    Args:
        path: ``<dicom_id>_SceneGraph.json``.
        image_size: ``[width, height]`` of the original image, or ``None``.
        notes: where dropped boxes are counted.

    Returns:
        region name -> [x1, y1, x2, y2].

    Raises:
        AdapterError: unreadable JSON, missing keys or an unknown region name, naming the file.
    """
    from gkmvlp_monai.core.boxes import clip_boxes

    canonical = {n.lower(): n for n in region_names()}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise AdapterError(f"{path}: cannot read scene graph JSON ({err})") from err
    if not isinstance(doc.get("objects"), list):
        raise AdapterError(f"{path}: no 'objects' list; not a Chest ImaGenome scene graph")
    out: dict[str, list[float]] = {}
    for obj in doc["objects"]:
        raw = str(obj.get("bbox_name", "")).strip().lower()
        if raw in IMAGENOME_DROPPED:
            notes.add("Chest ImaGenome region outside the 29-region vocabulary (dropped)", raw)
            continue
        name = canonical.get(IMAGENOME_RENAMED.get(raw, raw))
        if name is None:
            raise AdapterError(f"{path}: unknown Chest ImaGenome region {obj.get('bbox_name')!r}")
        try:
            x1, y1, x2, y2 = (
                float(obj[k]) for k in ("original_x1", "original_y1", "original_x2", "original_y2")
            )
        except (KeyError, TypeError, ValueError) as err:
            raise AdapterError(f"{path}: region {name!r} lacks numeric original_x1/y1/x2/y2") from err
        if image_size is not None:
            x1, y1, x2, y2 = clip_boxes([x1, y1, x2, y2], image_size).tolist()
        if x2 <= x1 or y2 <= y1:
            notes.add(
                "Chest ImaGenome box empty (after clipping to the image), dropped", f"{path.name}:{name}"
            )
            continue
        out[name] = [x1, y1, x2, y2]
    return out


def _scene_graph_dir(imagenome_root: Path) -> Path:
    for cand in (
        imagenome_root / "silver_dataset" / "scene_graph",
        imagenome_root / "scene_graph",
        imagenome_root,
    ):
        if cand.is_dir() and next(cand.glob("*_SceneGraph.json"), None) is not None:
            return cand
    raise AdapterError(
        f"{imagenome_root}: no *_SceneGraph.json under silver_dataset/scene_graph/ or scene_graph/"
    )


def _adapt_mimic(
    root: Path,
    out_dir: Path,
    dicom: bool,
    seed: int,
    val_ratio: float,
    test_ratio: float,
    reports_root: Path | None,
    jpg_root: Path | None,
    imagenome_root: Path | None,
    require_imagenome: bool,
) -> AdapterResult:
    csv_root = Path(jpg_root) if jpg_root else root
    classes = label_set("chexpert14")
    skipped, notes = SkipLog(), SkipLog()
    if dicom:
        rec_csv = require_file(root, "cxr-record-list.csv.gz", "cxr-record-list.csv")
        records = read_csv(rec_csv, ["subject_id", "study_id", "dicom_id", "path"])
    else:
        rec_csv = require_file(csv_root, "mimic-cxr-2.0.0-metadata.csv.gz", "mimic-cxr-2.0.0-metadata.csv")
        records = read_csv(rec_csv, ["dicom_id", "subject_id", "study_id"])
    meta_csv = optional_file(csv_root, "mimic-cxr-2.0.0-metadata.csv.gz", "mimic-cxr-2.0.0-metadata.csv")
    meta = {}
    if meta_csv is not None:
        mdf = read_csv(meta_csv, ["dicom_id", "ViewPosition", "Rows", "Columns"])
        meta = {r["dicom_id"]: r for r in mdf.to_dict("records")}
    split_csv = optional_file(csv_root, "mimic-cxr-2.0.0-split.csv.gz", "mimic-cxr-2.0.0-split.csv")
    official: dict[str, str] | None = None
    if split_csv is not None:
        sdf = read_csv(split_csv, ["dicom_id", "split"])
        official = {}
        for row_no, r in enumerate(sdf.to_dict("records"), start=2):
            if r["split"] not in OFFICIAL_SPLIT:
                raise AdapterError(f"{split_csv} line {row_no}: split {r['split']!r} not train/validate/test")
            official[r["dicom_id"]] = OFFICIAL_SPLIT[r["split"]]
    label_csv = optional_file(csv_root, "mimic-cxr-2.0.0-chexpert.csv.gz", "mimic-cxr-2.0.0-chexpert.csv")
    labels: dict[tuple[str, str], list[float]] = {}
    if label_csv is not None:
        ldf = read_csv(label_csv, ["subject_id", "study_id", *classes])
        for row_no, r in enumerate(ldf.to_dict("records"), start=2):
            labels[(r["subject_id"], r["study_id"])] = [
                parse_label_value(r[c], f"{label_csv} line {row_no} column {c!r}") for c in classes
            ]
    rep_root = _find_reports_root(root, reports_root)
    sg_dir = _scene_graph_dir(Path(imagenome_root)) if imagenome_root else None
    report_cache: dict[Path, dict[str, str] | None] = {}
    items = []
    for row_no, r in enumerate(records.to_dict("records"), start=2):
        sid, stid, did = r["subject_id"].strip(), r["study_id"].strip(), r["dicom_id"].strip()
        if not (sid.isdigit() and stid.isdigit() and did):
            raise AdapterError(
                f"{rec_csv} line {row_no}: malformed ids subject={sid!r} study={stid!r} dicom={did!r}"
            )
        study_dir = mimic_study_dir(sid, stid)
        image = root / r["path"] if dicom else root / study_dir / f"{did}.jpg"
        if not image.is_file():
            skipped.add("image file missing", str(image.relative_to(root)))
            continue
        item: dict[str, Any] = {
            "image": relative_to(image, out_dir),
            "subject_id": sid,
            "study_id": stid,
            "image_id": did,
            "view": "",
        }
        m = meta.get(did)
        if m is not None:
            item["view"] = norm_view(m["ViewPosition"])
            if m["Rows"].strip().isdigit() and m["Columns"].strip().isdigit():
                item["image_size"] = [int(m["Columns"]), int(m["Rows"])]
        if rep_root is not None:
            rpath = rep_root / f"{study_dir}.txt"
            if rpath not in report_cache:
                if rpath.is_file():
                    sec = parse_report_sections(rpath.read_text(encoding="utf-8", errors="replace"))
                    if sec.used_fallback:
                        notes.add(
                            "report has neither FINDINGS nor IMPRESSION (last paragraph used)", rpath.name
                        )
                    elif not sec.report:
                        notes.add(
                            "report has neither FINDINGS nor IMPRESSION (empty report text)", rpath.name
                        )
                    report_cache[rpath] = {
                        "findings": sec.findings,
                        "impression": sec.impression,
                        "indication": sec.indication,
                        "comparison": sec.comparison,
                        "report": sec.report,
                    }
                else:
                    report_cache[rpath] = None
            rep = report_cache[rpath]
            if rep is None:
                skipped.add("report file missing", f"{study_dir}.txt")
                continue
            item.update(rep)
        if labels:
            lab = labels.get((sid, stid))
            if lab is None:
                notes.add("study not in the CheXpert label CSV (no 'label' key)", f"s{stid}")
            else:
                item["label"] = lab
        if sg_dir is not None:
            sg = sg_dir / f"{did}_SceneGraph.json"
            if sg.is_file():
                item["region_boxes"] = load_scene_graph_boxes(sg, item.get("image_size"), notes)
            elif require_imagenome:
                skipped.add("no Chest ImaGenome scene graph", sg.name)
                continue
        items.append(item)
    splits = assign_splits(items, official, val_ratio=val_ratio, test_ratio=test_ratio, seed=seed)
    name = ("chest_imagenome" if require_imagenome else "mimic_cxr") + ("_dicom" if dicom else "_jpg")
    return AdapterResult(
        name=name,
        splits=splits,
        label_names=classes if labels else [],
        label_type="multilabel",
        description=("MIMIC-CXR (DICOM)" if dicom else "MIMIC-CXR-JPG")
        + (" with reports" if rep_root else "")
        + (" and Chest ImaGenome region boxes" if sg_dir else "")
        + ("; official split" if official is not None else "; patient-level split"),
        skipped=skipped,
        notes=notes,
        warnings=[]
        if official is not None
        else [
            f"{csv_root}: no mimic-cxr-2.0.0-split.csv[.gz], so the split is per patient (test "
            f"{test_ratio:.0%}, validation {val_ratio:.0%}, seed {seed}); not comparable with the official split"
        ],
    )


def adapt_mimic_cxr_jpg(
    root: Path,
    out_dir: Path,
    seed: int = 0,
    val_ratio: float = 0.1,
    test_ratio: float = 0.1,
    reports_root: Path | None = None,
    imagenome_root: Path | None = None,
    **_: Any,
) -> AdapterResult:
    """Build the MIMIC-CXR-JPG datalist (reports, official split, CheXpert labels, optional region boxes).

    Args:
        root: MIMIC-CXR-JPG folder (``2.0.0``).
        out_dir: datalist folder.
        seed: split seed (used only for images absent from the official split CSV).
        val_ratio: validation share for such images.
        test_ratio: test share for such images.
        reports_root: folder holding ``files/pXX/pNNN/sNNN.txt`` (default: found under ``root``).
        imagenome_root: Chest ImaGenome folder; adds ``region_boxes`` where a scene graph exists.

    Returns:
        The adapter result.

    Raises:
        AdapterError: missing CSV or column, malformed row or label, bad scene graph.
    """
    return _adapt_mimic(
        root, out_dir, False, seed, val_ratio, test_ratio, reports_root, None, imagenome_root, False
    )


def adapt_mimic_cxr_dicom(
    root: Path,
    out_dir: Path,
    seed: int = 0,
    val_ratio: float = 0.1,
    test_ratio: float = 0.1,
    reports_root: Path | None = None,
    jpg_root: Path | None = None,
    imagenome_root: Path | None = None,
    **_: Any,
) -> AdapterResult:
    """Build the MIMIC-CXR (DICOM) datalist; split/labels/metadata CSVs from ``jpg_root`` or ``root``.

    Args:
        root: MIMIC-CXR folder (``2.0.0``) with ``cxr-record-list.csv.gz`` and ``files/``.
        out_dir: datalist folder.
        seed: split seed (patient-level split when no split CSV is found).
        val_ratio: validation share of patients without an official split.
        test_ratio: test share of patients without an official split.
        reports_root: report folder (default: ``root``, which holds the reports in this release).
        jpg_root: MIMIC-CXR-JPG folder holding the split/metadata/CheXpert CSVs.
        imagenome_root: Chest ImaGenome folder; adds ``region_boxes``.

    Returns:
        The adapter result.

    Raises:
        AdapterError: missing CSV or column, malformed row or label, bad scene graph.
    """
    return _adapt_mimic(
        root, out_dir, True, seed, val_ratio, test_ratio, reports_root, jpg_root, imagenome_root, False
    )


def adapt_chest_imagenome(
    root: Path,
    out_dir: Path,
    seed: int = 0,
    val_ratio: float = 0.1,
    test_ratio: float = 0.1,
    reports_root: Path | None = None,
    imagenome_root: Path | None = None,
    **_: Any,
) -> AdapterResult:
    """MIMIC-CXR-JPG images that have a Chest ImaGenome scene graph, with their region boxes.

    Args:
        root: MIMIC-CXR-JPG folder.
        out_dir: datalist folder.
        seed: split seed.
        val_ratio: validation share for images without an official split.
        test_ratio: test share for images without an official split.
        reports_root: report folder.
        imagenome_root: Chest ImaGenome folder (required).

    Returns:
        The adapter result; images without a scene graph are skipped and counted.

    Raises:
        AdapterError: no ``imagenome_root``, or the errors of :func:`adapt_mimic_cxr_jpg`.
    """
    if imagenome_root is None:
        raise AdapterError("chest-imagenome needs --imagenome <Chest ImaGenome folder>")
    return _adapt_mimic(
        root, out_dir, False, seed, val_ratio, test_ratio, reports_root, None, imagenome_root, True
    )
