"""RSNA Pneumonia Detection Challenge (Kaggle, stage 2): DICOM images and lung-opacity boxes.

Layout::

    <root>/stage_2_train_labels.csv        patientId,x,y,width,height,Target (one row per box)
    <root>/stage_2_train_images/<patientId>.dcm

Each patient has one image; rows with ``Target`` 1 carry one box each ([x, y, width, height] in
pixels, converted to [x1, y1, x2, y2]); ``Target`` 0 rows have empty box cells. The official test
images have no labels, so splits are per patient.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom

from gkmvlp_monai.data.adapters.base import AdapterError, AdapterResult, norm_view, read_csv, require_file
from gkmvlp_monai.data.datalist import SkipLog, assign_splits, relative_to
from gkmvlp_monai.knowledge.vocab import label_set


def read_dicom_header(path: Path) -> tuple[str, list[int]]:
    """``(view, [width, height])`` from a DICOM header (pixels are not read).

    Raises:
        AdapterError: unreadable DICOM or no Rows/Columns, naming the file.
    """
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as err:  # pydicom raises several types for broken files
        raise AdapterError(f"{path}: not a readable DICOM file ({err})") from err
    if "Rows" not in ds or "Columns" not in ds:
        raise AdapterError(f"{path}: DICOM header has no Rows/Columns")
    return norm_view(str(ds.get("ViewPosition", ""))), [int(ds.Columns), int(ds.Rows)]


def adapt_rsna(
    root: Path, out_dir: Path, seed: int = 0, val_ratio: float = 0.1, test_ratio: float = 0.1, **_: Any
) -> AdapterResult:
    """Build the RSNA Pneumonia datalist (multilabel ``rsna_pneumonia``, lesion boxes).

    Args:
        root: competition folder.
        out_dir: datalist folder.
        seed: split seed.
        val_ratio: validation share of patients.
        test_ratio: test share of patients.

    Returns:
        The adapter result.

    Raises:
        AdapterError: missing file or column, malformed box, conflicting ``Target`` values.
    """
    classes = label_set("rsna_pneumonia")
    labels_csv = require_file(root, "stage_2_train_labels.csv", "stage_1_train_labels.csv")
    image_dir = require_file(root, "stage_2_train_images", "stage_1_train_images")
    df = read_csv(labels_csv, ["patientId", "x", "y", "width", "height", "Target"])
    per_patient: dict[str, dict[str, Any]] = {}
    for row_no, row in enumerate(df.to_dict("records"), start=2):
        pid, target = row["patientId"].strip(), row["Target"].strip()
        if target not in ("0", "1"):
            raise AdapterError(f"{labels_csv} line {row_no}: Target {target!r} is not 0 or 1")
        entry = per_patient.setdefault(pid, {"target": target, "boxes": []})
        if entry["target"] != target:
            raise AdapterError(f"{labels_csv} line {row_no}: patient {pid} has both Target 0 and 1 rows")
        if target == "1":
            try:
                x, y, w, h = (float(row[k]) for k in ("x", "y", "width", "height"))
            except ValueError as err:
                raise AdapterError(f"{labels_csv} line {row_no}: Target 1 row with non-numeric box") from err
            if w < 0 or h < 0:
                raise AdapterError(f"{labels_csv} line {row_no}: negative box size")
            entry["boxes"].append([x, y, x + w, y + h])
    skipped = SkipLog()
    items = []
    for pid, entry in per_patient.items():
        path = image_dir / f"{pid}.dcm"
        if not path.is_file():
            skipped.add("image file missing", path.name)
            continue
        view, size = read_dicom_header(path)
        items.append(
            {
                "image": relative_to(path, out_dir),
                "image_id": pid,
                "subject_id": pid,
                "view": view,
                "image_size": size,
                "label": [float(entry["target"] == "1")],
                "lesion_boxes": entry["boxes"],
                "lesion_labels": [classes[0]] * len(entry["boxes"]),
            }
        )
    splits = assign_splits(items, None, val_ratio=val_ratio, test_ratio=test_ratio, seed=seed)
    return AdapterResult(
        name="rsna_pneumonia",
        splits=splits,
        label_names=classes,
        label_type="multilabel",
        description="RSNA Pneumonia Detection (stage 2 train); boxes xyxy in DICOM pixels; patient-level split",
        skipped=skipped,
    )
