"""COVIDx CXR (COVID-Net): space-separated split files and image folders.

Layout (Kaggle ``andyczhao/covidx-cxr2`` or built with the COVID-Net scripts)::

    <root>/train.txt, val.txt (optional), test.txt     or train_COVIDx9A.txt, test_COVIDx9A.txt
    <root>/train/<file>, <root>/val/<file>, <root>/test/<file>

Each line: ``<patient id> <file name> <class> <data source>``. The 3-class versions (V7A, V8A, V9A)
use ``normal``/``pneumonia``/``COVID-19``; the binary versions (``positive``/``negative``) do not fit
the 3-class ``covidx`` label set and are rejected with an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gkmvlp_monai.data.adapters.base import AdapterError, AdapterResult
from gkmvlp_monai.data.datalist import SkipLog, assign_splits, relative_to
from gkmvlp_monai.core.vocab import label_set


def _split_file(root: Path, split: str) -> Path | None:
    plain = root / f"{split}.txt"
    if plain.is_file():
        return plain
    versioned = sorted(root.glob(f"{split}_COVIDx*.txt"))
    if len(versioned) > 1:
        raise AdapterError(f"{root}: several {split} files {[p.name for p in versioned]}; keep one")
    return versioned[0] if versioned else None


def adapt_covidx(root: Path, out_dir: Path, seed: int = 0, val_ratio: float = 0.1, **_: Any) -> AdapterResult:
    """Build the COVIDx datalist (multiclass ``covidx``).

    Args:
        root: COVIDx folder.
        out_dir: datalist folder.
        seed: split seed (validation from train per patient when there is no ``val.txt``).
        val_ratio: validation share of training patients.

    Returns:
        The adapter result.

    Raises:
        AdapterError: missing split file, malformed line, unknown or binary class.
    """
    classes = label_set("covidx")
    lookup = {c.lower(): i for i, c in enumerate(classes)}
    lookup["covid"] = lookup["covid-19"]
    files = {s: _split_file(root, s) for s in ("train", "val", "test")}
    for s in ("train", "test"):
        if files[s] is None:
            raise AdapterError(f"{root}: no {s}.txt (or {s}_COVIDx*.txt) split file")
    skipped = SkipLog()
    items, official = [], {}
    for split, path in files.items():
        if path is None:
            continue
        target = {
            "train": "train" if files["val"] is None else "training",
            "val": "validation",
            "test": "test",
        }[split]
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            tokens = line.split()
            if not tokens:
                continue
            if len(tokens) < 4:
                raise AdapterError(
                    f"{path} line {line_no}: expected '<patient id> <file> <class> <source>', got {line!r}"
                )
            pid, cls, fname = tokens[0], tokens[-2], " ".join(tokens[1:-2])
            if cls.lower() in ("positive", "negative"):
                raise AdapterError(
                    f"{path} line {line_no}: binary COVIDx class {cls!r}; use a 3-class release (V9A)"
                )
            if cls.lower() not in lookup:
                raise AdapterError(f"{path} line {line_no}: unknown class {cls!r}; expected one of {classes}")
            image = root / split / fname
            if not image.is_file():
                skipped.add("image file missing", f"{split}/{fname}")
                continue
            image_id = f"{split}/{fname}"
            items.append(
                {
                    "image": relative_to(image, out_dir),
                    "image_id": image_id,
                    "subject_id": pid,
                    "label": lookup[cls.lower()],
                }
            )
            official[image_id] = target
    splits = assign_splits(items, official, val_ratio=val_ratio, seed=seed)
    return AdapterResult(
        name="covidx",
        splits=splits,
        label_names=classes,
        label_type="multiclass",
        description="COVIDx CXR; label = index into covidx classes; official train/val/test files",
        skipped=skipped,
    )
