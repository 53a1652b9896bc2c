"""CheXpert (v1.0 and v1.0-small): ``train.csv`` and ``valid.csv`` with the 14 observations.

Layout (Stanford AIMI download; the ``Path`` column starts with the folder's own name)::

    <root> = CheXpert-v1.0-small/   (or CheXpert-v1.0/)
        train.csv, valid.csv   (.csv.gz/.csv.zip too)
        train/patient00001/study1/view1_frontal.jpg
        valid/patient64541/study1/view1_frontal.jpg

Split: the official ``valid.csv`` (radiologist-labelled, 234 images) is the ``test`` split; ``train.csv``
is split per patient into training/validation. Blank cells are 0 (not mentioned), -1 is kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gkmvlp_monai.data.adapters.base import (
    AdapterError,
    AdapterResult,
    parse_label_value,
    read_csv,
    require_table,
)
from gkmvlp_monai.data.datalist import SkipLog, assign_splits, relative_to
from gkmvlp_monai.core.vocab import label_set


# CheXpert's own "AP/PA" codes (blank for most laterals): LL = left lateral, RL = right lateral
CHEXPERT_VIEWS = {"AP": "AP", "PA": "PA", "LL": "LL", "RL": "LATERAL"}


def resolve_chexpert_path(root: Path, rel: str) -> Path:
    """Resolve a CSV ``Path`` (``CheXpert-v1.0-small/train/...``) against the data set folder."""
    parts = Path(rel).parts
    if parts and parts[0].startswith("CheXpert-v1.0"):
        return root.joinpath(*parts[1:])
    return root / rel


def adapt_chexpert(
    root: Path, out_dir: Path, seed: int = 0, val_ratio: float = 0.1, **_: Any
) -> AdapterResult:
    """Build the CheXpert datalist (multilabel ``chexpert14``).

    Args:
        root: the ``CheXpert-v1.0-small`` (or ``CheXpert-v1.0``) folder.
        out_dir: datalist folder.
        seed: split seed.
        val_ratio: validation share of training patients.

    Returns:
        The adapter result.

    Raises:
        AdapterError: missing CSV or column, malformed label value.
    """
    classes = label_set("chexpert14")
    cols = ["Path", "Frontal/Lateral", "AP/PA", *classes]
    skipped, notes = SkipLog(), SkipLog()
    items, official = [], {}
    for stem, split in (("train", "train"), ("valid", "test")):
        path = require_table(root, stem)
        df = read_csv(path, cols)
        for row_no, row in enumerate(df.to_dict("records"), start=2):
            rel = row["Path"].strip()
            parts = Path(rel).parts
            patient = next((p for p in parts if p.startswith("patient")), None)
            if patient is None:
                raise AdapterError(f"{path} line {row_no}: Path {rel!r} has no patientNNNNN folder")
            image = resolve_chexpert_path(root, rel)
            if not image.is_file():
                skipped.add("image file missing", rel)
                continue
            fl = row["Frontal/Lateral"].strip()
            if fl not in ("Frontal", "Lateral"):
                raise AdapterError(f"{path} line {row_no}: Frontal/Lateral is {fl!r}")
            code = row["AP/PA"].strip().upper()
            if code and code not in CHEXPERT_VIEWS:
                raise AdapterError(f"{path} line {row_no}: AP/PA is {row['AP/PA']!r}, not one of {sorted(CHEXPERT_VIEWS)}")
            view = CHEXPERT_VIEWS[code] if code else ("LATERAL" if fl == "Lateral" else "")
            if view and (view in ("AP", "PA")) != (fl == "Frontal"):
                notes.add("Frontal/Lateral and AP/PA disagree (AP/PA kept)", f"{rel}: {fl}, {code}")
            image_id = "/".join(parts[-3:])[: -len(image.suffix)] if image.suffix else "/".join(parts[-3:])
            items.append(
                {
                    "image": relative_to(image, out_dir),
                    "image_id": image_id,
                    "subject_id": patient,
                    "study_id": f"{patient}/{parts[-2]}",
                    "view": view,
                    "label": [
                        parse_label_value(row[c], f"{path} line {row_no} column {c!r}") for c in classes
                    ],
                }
            )
            official[image_id] = split
    splits = assign_splits(items, official, val_ratio=val_ratio, seed=seed)
    return AdapterResult(
        name="chexpert",
        splits=splits,
        label_names=classes,
        label_type="multilabel",
        description="CheXpert; official valid.csv = test; train.csv split per patient; -1 = uncertain kept",
        skipped=skipped,
        notes=notes,
    )
