"""NIH ChestX-ray14: ``Data_Entry_2017*.csv``, ``BBox_List_2017.csv``, official train/test lists.

Layout (NIH box download or the Kaggle mirror ``nih-chest-xrays/data``)::

    <root>/Data_Entry_2017_v2020.csv   (or Data_Entry_2017.csv; .csv.gz/.csv.zip too)
    <root>/BBox_List_2017.csv          (optional: lesion boxes; .csv.gz/.csv.zip too)
    <root>/train_val_list.txt, test_list.txt   (optional: official split)
    <root>/images/*.png  or  <root>/images_001/images/*.png ... images_012/images/*.png
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gkmvlp_monai.data.adapters.base import (
    AdapterError,
    AdapterResult,
    optional_file,
    optional_table,
    read_csv,
    require_table,
)
from gkmvlp_monai.data.datalist import SkipLog, assign_splits, relative_to
from gkmvlp_monai.core.vocab import label_set

# BBox_List_2017 spells one class differently from Data_Entry's "Finding Labels"
BBOX_LABEL_MAP = {"Infiltrate": "Infiltration"}
NO_FINDING = "No Finding"


def nih_layout(root: Path) -> tuple[str, list[Path]]:
    """Which of the two distributed image layouts ``root`` has, and its image folders.

    Returns:
        ``(description, folders)``: ``images/`` (one folder) or ``images_001/images ... images_NNN/images``
        (the twelve-archive download and the Kaggle mirror).

    Raises:
        AdapterError: neither layout is there.
    """
    parts = sorted(p for p in root.glob("images_[0-9][0-9][0-9]/images") if p.is_dir())
    flat = root / "images"
    if flat.is_dir() and parts:
        raise AdapterError(f"{root}: both images/ and images_NNN/images/ folders exist; keep one layout")
    if flat.is_dir():
        return "images/ (one folder)", [flat]
    if parts:
        names = f"{parts[0].parent.name}/images ... {parts[-1].parent.name}/images"
        return f"{names} ({len(parts)} archive folders)", parts
    raise AdapterError(
        f"{root}: no images/ folder and no images_NNN/images/ folders; see docs/datasets.md for the layout"
    )


def index_images(folders: Sequence[Path], pattern: str = "*.png") -> dict[str, Path]:
    """Map file name -> path for every image under ``folders`` (recursive).

    Raises:
        AdapterError: two different files share a name.
    """
    found: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(folder.rglob(pattern)):
            if path.name in found and found[path.name] != path:
                raise AdapterError(
                    f"{folder}: image name {path.name} appears twice ({found[path.name]}, {path})"
                )
            found[path.name] = path
    return found


def _read_list(path: Path | None) -> set[str]:
    if path is None:
        return set()
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def read_nih_boxes(path: Path, classes: list[str]) -> dict[str, list[tuple[list[float], str]]]:
    """Read ``BBox_List_2017.csv``: image name -> [(xyxy box, class name)].

    The file's header is ``Image Index,Finding Label,Bbox [x,y,w,h],,,`` so the box occupies columns
    3-6 by position; ``w``/``h`` become ``x2 = x + w``, ``y2 = y + h``.

    Raises:
        AdapterError: wrong column count, non-numeric box or unknown class, naming file and row.
    """
    df = read_csv(path, ["Image Index", "Finding Label"])
    if df.shape[1] < 6:
        raise AdapterError(
            f"{path}: expected 'Image Index,Finding Label,Bbox [x,y,w,h]' (6 columns), found {list(df.columns)}"
        )
    out: dict[str, list[tuple[list[float], str]]] = {}
    for row_no, row in enumerate(df.itertuples(index=False), start=2):
        name, raw_label = row[0].strip(), row[1].strip()
        label = BBOX_LABEL_MAP.get(raw_label, raw_label)
        if label not in classes:
            raise AdapterError(f"{path} line {row_no}: unknown finding label {raw_label!r}")
        try:
            x, y, w, h = (float(v) for v in row[2:6])
        except ValueError as err:
            raise AdapterError(f"{path} line {row_no}: box {list(row[2:6])} is not numeric") from err
        if w < 0 or h < 0:
            raise AdapterError(f"{path} line {row_no}: negative box size {w}x{h}")
        out.setdefault(name, []).append(([x, y, x + w, y + h], label))
    return out


def adapt_nih(
    root: Path, out_dir: Path, seed: int = 0, val_ratio: float = 0.1, test_ratio: float = 0.2, **_: Any
) -> AdapterResult:
    """Build the NIH ChestX-ray14 datalist (multilabel ``nih14``, lesion boxes where BBox_List has them).

    Args:
        root: data set folder (layout in the module docstring).
        out_dir: datalist folder (image paths are written relative to it).
        seed: split seed.
        val_ratio: validation share of patients (of ``train_val_list`` when the official lists exist).
        test_ratio: test share of patients when there is no official ``test_list.txt``.

    Returns:
        The adapter result.

    Raises:
        AdapterError: missing label file or column, unknown finding label.
    """
    classes = label_set("nih14")
    entry = require_table(root, "Data_Entry_2017_v2020", "Data_Entry_2017")
    df = read_csv(entry, ["Image Index", "Finding Labels", "Patient ID", "View Position"])
    bbox_file = optional_table(root, "BBox_List_2017")
    boxes = read_nih_boxes(bbox_file, classes) if bbox_file else {}
    layout, folders = nih_layout(root)
    images = index_images(folders)
    skipped = SkipLog()
    items = []
    for row_no, row in enumerate(df.to_dict("records"), start=2):
        name = row["Image Index"].strip()
        labels = [t.strip() for t in row["Finding Labels"].split("|") if t.strip()]
        unknown = [t for t in labels if t not in classes and t != NO_FINDING]
        if unknown or not labels:
            raise AdapterError(f"{entry} line {row_no}: bad 'Finding Labels' {row['Finding Labels']!r}")
        path = images.get(name)
        if path is None:
            skipped.add("image file missing", name)
            continue
        item: dict[str, Any] = {
            "image": relative_to(path, out_dir),
            "image_id": name[:-4] if name.endswith(".png") else name,
            "subject_id": str(int(row["Patient ID"]))
            if row["Patient ID"].strip().isdigit()
            else row["Patient ID"].strip(),
            "view": row["View Position"].strip().upper()
            if row["View Position"].strip().upper() in ("PA", "AP")
            else "",
            "label": [1.0 if c in labels else 0.0 for c in classes],
        }
        if name in boxes:
            item["lesion_boxes"] = [b for b, _ in boxes[name]]
            item["lesion_labels"] = [lab for _, lab in boxes[name]]
        items.append(item)
    train_list = _read_list(optional_file(root, "train_val_list.txt"))
    test_list = _read_list(optional_file(root, "test_list.txt"))
    official = None
    warnings = []
    if not test_list:
        warnings.append(
            f"{root}: no official test_list.txt, so the split is per patient (test {test_ratio:.0%}, "
            f"validation {val_ratio:.0%}, seed {seed}); results are not comparable with the official split"
        )
    elif not train_list:
        warnings.append(f"{root}: test_list.txt but no train_val_list.txt: every other image is training/validation")
    if test_list:
        official = {n[:-4]: "test" for n in test_list}
        official.update({n[:-4]: "train" for n in train_list})
        if not train_list:
            official.update({it["image_id"]: "train" for it in items if it["image_id"] not in official})
    splits = assign_splits(items, official, val_ratio=val_ratio, test_ratio=test_ratio, seed=seed)
    return AdapterResult(
        name="nih_chestxray14",
        splits=splits,
        label_names=classes,
        label_type="multilabel",
        description="NIH ChestX-ray14; label = nih14 ('No Finding' = all zeros); lesion boxes from BBox_List_2017"
        + ("; official train_val/test lists" if official else "; patient-level split"),
        skipped=skipped,
        layout=layout,
        warnings=warnings,
    )
