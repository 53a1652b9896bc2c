"""RSNA Pneumonia Detection Challenge (Kaggle, stage 2): DICOM images and lung-opacity boxes.

Layout::

    <root>/stage_2_train_labels.csv        patientId,x,y,width,height,Target (one row per box;
                                           .csv.zip as distributed, or .csv.gz)
    <root>/stage_2_train_images/<patientId>.dcm

Each patient has one image; rows with ``Target`` 1 carry one box each ([x, y, width, height] in
pixels, converted to [x1, y1, x2, y2]); ``Target`` 0 rows have empty box cells. The official test
images have no labels, so splits are per patient.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gkmvlp_monai.data.adapters.base import AdapterError, AdapterResult, norm_view, read_csv, require_file, require_table
from gkmvlp_monai.data.datalist import SkipLog, assign_splits, relative_to
from gkmvlp_monai.data.image_check import inspect_images
from gkmvlp_monai.core.vocab import label_set


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
    labels_csv = require_table(root, "stage_2_train_labels", "stage_1_train_labels")
    image_dir = require_file(root, "stage_2_train_images", "stage_1_train_images")
    df = read_csv(labels_csv, ["patientId", "x", "y", "width", "height", "Target"])
    per_patient: dict[str, dict[str, Any]] = {}
    for row_no, row in enumerate(df.to_dict("records"), start=2):
        pid, target = row["patientId"].strip(), row["Target"].strip()
        if target not in ("0", "1"):
            raise AdapterError(f"{labels_csv} line {row_no}: Target {target!r} is not 0 or 1")
        entry = per_patient.setdefault(pid, {"target": target, "boxes": [], "rows": 0})
        entry["rows"] += 1
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
    paths = {pid: image_dir / f"{pid}.dcm" for pid in per_patient}
    for pid, path in paths.items():
        if not path.is_file():
            skipped.add("image file missing", path.name, n=per_patient[pid]["rows"])
    good, bad = inspect_images([str(p) for p in paths.values() if p.is_file()], desc="reading DICOM headers")
    items = []
    for pid, entry in per_patient.items():
        info = good.get(str(paths[pid]))
        if info is None:
            if str(paths[pid]) in bad:
                reason = bad[str(paths[pid])]
                skipped.add("image file unreadable", f"{paths[pid].name}: {reason}", n=entry["rows"])
            continue
        items.append(
            {
                "image": relative_to(paths[pid], out_dir),
                "image_id": pid,
                "subject_id": pid,
                "view": norm_view(info.view),
                "image_size": [info.width, info.height],
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
        bad_files=bad,
        image_info=good,
    )
