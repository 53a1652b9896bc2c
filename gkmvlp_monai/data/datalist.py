"""Shared machinery of the data set adapters: item validation, patient-level splits, training
fractions, datalist and split files, and the loader.

A datalist follows the data contract of ``docs/design.md``: a JSON object with split keys
(``training``, ``validation``, ``test``), metadata (``name``, ``label_names``, ``label_type``,
``description``) and items whose paths are relative to the datalist's folder. :func:`write_datalist`
also writes, next to the datalist:

- ``training_<p>pct`` keys in the same JSON (nested, deterministic training subsets, e.g. 1 % and 10 %);
- ``<name>_splits.csv``: one row per item with its id, subject, split and fraction membership.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

SPLITS = ("training", "validation", "test")
LABEL_TYPES = ("multilabel", "multiclass")
VIEWS = ("PA", "AP", "LATERAL", "LL", "")
DEFAULT_FRACTIONS = (0.01, 0.1)
_STR_KEYS = (
    "image",
    "subject_id",
    "study_id",
    "image_id",
    "view",
    "findings",
    "impression",
    "indication",
    "comparison",
    "report",
    "mask",
    "question",
    "answer",
    "answer_type",
    "question_type",
)
_PATH_KEYS = ("image", "mask")


class DatalistError(ValueError):
    """An item or a datalist does not follow the data contract; the message names the item."""


@dataclass
class SkipLog:
    """Counts rows an adapter skipped or flagged, by reason, with a few examples each.

    Attributes:
        counts: reason -> number of rows.
        examples: reason -> up to ``max_examples`` row descriptions.
        max_examples: how many examples to keep per reason.
    """

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    max_examples: int = 3

    def add(self, reason: str, example: str = "", n: int = 1) -> None:
        """Record ``n`` rows (default one) under ``reason``.

        Args:
            reason: short, stable description (e.g. ``"image file missing"``).
            example: row description (file and id) shown in the summary.
            n: number of rows this example stands for (e.g. all label rows of one missing image).
        """
        self.counts[reason] += n
        if example and len(self.examples.setdefault(reason, [])) < self.max_examples:
            self.examples[reason].append(example)

    @property
    def total(self) -> int:
        """Number of rows recorded, all reasons together."""
        return sum(self.counts.values())

    def summary(self) -> str:
        """One line per reason: count, reason and examples (``"none"`` when empty)."""
        if not self.counts:
            return "none"
        lines = []
        for reason, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])):
            ex = self.examples.get(reason)
            lines.append(f"{n:8d}  {reason}" + (f"  (e.g. {'; '.join(ex)})" if ex else ""))
        return "\n".join(lines)


def validate_item(
    item: Mapping[str, Any], label_names: Sequence[str], label_type: str, where: str = "item"
) -> None:
    """Check one datalist item against the data contract.

    Args:
        item: the item.
        label_names: class names of ``label`` (empty when the data set has no class labels).
        label_type: ``"multilabel"`` or ``"multiclass"``.
        where: description of the item used in error messages.

    Raises:
        DatalistError: naming the item and the offending key.
    """
    from gkmvlp_monai.core.boxes import is_box
    from gkmvlp_monai.core.vocab import region_names

    if not isinstance(item.get("image"), str) or not item["image"]:
        raise DatalistError(f"{where}: 'image' must be a non-empty string")
    for key in _STR_KEYS:
        if key in item and not isinstance(item[key], str):
            raise DatalistError(f"{where}: {key!r} must be a string, got {type(item[key]).__name__}")
    if item.get("view", "") not in VIEWS:
        raise DatalistError(f"{where}: view {item['view']!r} not one of {VIEWS}")
    if "answer_type" in item and item["answer_type"] not in ("CLOSED", "OPEN"):
        raise DatalistError(f"{where}: answer_type {item['answer_type']!r} must be CLOSED or OPEN")
    if "label" in item:
        label = item["label"]
        if label_type == "multiclass":
            if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < len(label_names):
                raise DatalistError(
                    f"{where}: multiclass label {label!r} not an index into {len(label_names)} classes"
                )
        elif label_type == "multilabel":
            if not isinstance(label, list) or len(label) != len(label_names):
                raise DatalistError(f"{where}: multilabel label must be a list of {len(label_names)} values")
            if any(v not in (-1.0, 0.0, 1.0) for v in label):
                raise DatalistError(f"{where}: multilabel values must be 1, 0 or -1, got {label}")
        else:
            raise DatalistError(f"{where}: unknown label_type {label_type!r}; use one of {LABEL_TYPES}")
    if "region_boxes" in item:
        known = set(region_names())
        boxes = item["region_boxes"]
        if not isinstance(boxes, dict):
            raise DatalistError(f"{where}: region_boxes must be a mapping region name -> box")
        for name, box in boxes.items():
            if name not in known:
                raise DatalistError(
                    f"{where}: region {name!r} not in gkmvlp_monai/core/vocabularies/regions.json"
                )
            if not is_box(box):
                raise DatalistError(
                    f"{where}: region box {name!r} = {box} is not [x1, y1, x2, y2] with x1<=x2, y1<=y2"
                )
    if "lesion_boxes" in item or "lesion_labels" in item:
        boxes, labels = item.get("lesion_boxes", []), item.get("lesion_labels", [])
        if len(boxes) != len(labels):
            raise DatalistError(f"{where}: {len(boxes)} lesion_boxes but {len(labels)} lesion_labels")
        for box in boxes:
            if not is_box(box):
                raise DatalistError(f"{where}: lesion box {box} is not [x1, y1, x2, y2] with x1<=x2, y1<=y2")
    if "image_size" in item:
        size = item["image_size"]
        if not (
            isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)
        ):
            raise DatalistError(f"{where}: image_size must be [width, height] positive integers, got {size}")


def subject_unit(subject_id: str, seed: int = 0, purpose: str = "split") -> float:
    """A subject's fixed position in [0, 1): a seeded SHA-256 hash of its id.

    The value depends on the subject id, the seed and the purpose only, never on which other subjects
    exist, so a data set that lost one download assigns every other subject exactly as before.

    Args:
        subject_id: subject (patient) id.
        seed: seed mixed into the hash.
        purpose: separates independent draws of one subject (``"split"``, ``"fraction"``).

    Returns:
        A float in [0, 1).
    """
    digest = hashlib.sha256(f"gkmvlp:{purpose}:{seed}:{subject_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_subjects(subject_ids: Iterable[str], ratios: Mapping[str, float], seed: int = 0) -> dict[str, str]:
    """Assign subjects to splits by :func:`subject_unit`, each subject on its own.

    A subject goes to the first split whose cumulative ratio exceeds its hash position, so the split
    sizes match the ratios only in expectation, and removing or adding a subject moves no other one.

    Args:
        subject_ids: subject ids (duplicates are fine).
        ratios: split name -> ratio, in the order the cuts are made (e.g. ``{"training": 0.8,
            "validation": 0.1, "test": 0.1}``); ratios must be >= 0 and sum to 1.
        seed: hash seed.

    Returns:
        subject id -> split name.

    Raises:
        ValueError: when the ratios are negative or do not sum to 1.
    """
    if any(r < 0 for r in ratios.values()) or not math.isclose(sum(ratios.values()), 1.0, abs_tol=1e-6):
        raise ValueError(f"split ratios {dict(ratios)} must be >= 0 and sum to 1")
    names = list(ratios)
    bounds = np.cumsum([ratios[n] for n in names])
    out: dict[str, str] = {}
    for subject in set(subject_ids):
        k = int(np.searchsorted(bounds, subject_unit(subject, seed, "split"), side="right"))
        out[subject] = names[min(k, len(names) - 1)]
    return dict(sorted(out.items()))


def subject_of(item: Mapping[str, Any]) -> str:
    """The subject an item belongs to: ``subject_id``, else ``image_id``, else ``image``."""
    return str(item.get("subject_id") or item.get("image_id") or item["image"])


def assign_splits(
    items: Sequence[dict[str, Any]],
    official: Mapping[str, str] | None = None,
    val_ratio: float = 0.1,
    test_ratio: float = 0.1,
    seed: int = 0,
    split_key: str = "image_id",
) -> dict[str, list[dict[str, Any]]]:
    """Group items by split: the official split where the data set has one, else patient-level.

    Args:
        items: items with ``subject_id`` (falls back to ``image``).
        official: ``item[split_key]`` -> split name for data sets with official splits. Items absent
            from it are split per subject. The value ``"train"`` (official training pool without an
            official validation set) is split per subject into training/validation with ``val_ratio``.
        val_ratio: validation share of subjects for patient-level splits.
        test_ratio: test share of subjects for patient-level splits (ignored for the ``"train"`` pool).
        seed: random seed.
        split_key: item key looked up in ``official``.

    Returns:
        ``{"training": [...], "validation": [...], "test": [...]}``.
    """
    out: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    free, pool = [], []
    for item in items:
        split = official.get(str(item.get(split_key, ""))) if official else None
        if split in SPLITS:
            out[split].append(item)
        elif split == "train":
            pool.append(item)
        else:
            free.append(item)

    if free:
        ratios = {"training": 1.0 - val_ratio - test_ratio, "validation": val_ratio, "test": test_ratio}
        by_subject = split_subjects((subject_of(it) for it in free), ratios, seed)
        for it in free:
            out[by_subject[subject_of(it)]].append(it)
    if pool:
        by_subject = split_subjects(
            (subject_of(it) for it in pool), {"training": 1.0 - val_ratio, "validation": val_ratio}, seed
        )
        for it in pool:
            out[by_subject[subject_of(it)]].append(it)
    return out


def fraction_key(fraction: float) -> str:
    """Datalist key of a training fraction, e.g. ``0.01 -> "training_1pct"``."""
    pct = fraction * 100
    return f"training_{int(round(pct))}pct" if math.isclose(pct, round(pct)) else f"training_{pct:g}pct"


def training_fractions(
    subjects: Sequence[str], fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0
) -> dict[float, list[int]]:
    """Nested training subsets that depend on each subject alone.

    Item ``i`` is in the subset for fraction ``f`` when its subject's :func:`subject_unit` (purpose
    ``"fraction"``) is below ``f``: smaller fractions are inside larger ones, a patient's images are in
    or out together, and a subject keeps its membership when other subjects go missing. A fraction that
    would select nobody takes the subject with the lowest position, so no subset is empty.

    Args:
        subjects: the subject id of each training item, in item order (see :func:`subject_of`).
        fractions: fractions in (0, 1].
        seed: hash seed.

    Returns:
        fraction -> sorted item indices.

    Raises:
        ValueError: for a fraction outside (0, 1].
    """
    for f in fractions:
        if not 0 < f <= 1:
            raise ValueError(f"training fraction {f} must be in (0, 1]")
    unit = {s: subject_unit(s, seed, "fraction") for s in set(subjects)}
    out = {}
    for f in fractions:
        idx = [i for i, s in enumerate(subjects) if unit[s] < f]
        if not idx and unit:
            first = min(unit, key=unit.__getitem__)
            idx = [i for i, s in enumerate(subjects) if s == first]
        out[f] = idx
    return out


def _item_id(item: Mapping[str, Any]) -> str:
    if "question" in item:
        return f"{item.get('image_id') or item['image']}#{item.get('question_id', '')}"
    return str(item.get("image_id") or item["image"])


def write_datalist(
    out_dir: str | Path,
    name: str,
    splits: Mapping[str, Sequence[dict[str, Any]]],
    label_names: Sequence[str] = (),
    label_type: str = "multilabel",
    description: str = "",
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Validate items and write ``<out_dir>/<name>.json`` and ``<out_dir>/<name>_splits.csv``.

    Args:
        out_dir: folder of the datalist; item paths must already be relative to it (or absolute).
        name: data set name (file stem).
        splits: split name (``training``/``validation``/``test``) -> items.
        label_names: class names of ``label``.
        label_type: ``"multilabel"`` or ``"multiclass"``.
        description: free text stored in the datalist.
        fractions: training fractions written as ``training_<p>pct`` keys (1.0 is ``training`` itself).
        seed: seed of the fraction subsets.
        extra: additional top-level metadata (e.g. counts of skipped rows).

    Returns:
        Path of the datalist JSON.

    Raises:
        DatalistError: unknown split names or an item breaking the contract.
    """
    if label_type not in LABEL_TYPES:
        raise DatalistError(f"{name}: unknown label_type {label_type!r}; use one of {LABEL_TYPES}")
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise DatalistError(f"{name}: unknown split names {sorted(unknown)}; use {SPLITS}")
    for split, items in splits.items():
        for i, item in enumerate(items):
            validate_item(item, label_names, label_type, where=f"{name} {split}[{i}] ({item.get('image')})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "name": name,
        "description": description,
        "label_names": list(label_names),
        "label_type": label_type,
        "seed": seed,
    }
    if extra:
        doc.update(extra)
    for split in SPLITS:
        doc[split] = [dict(it) for it in splits.get(split, [])]
    subsets = training_fractions(
        [subject_of(it) for it in doc["training"]], [f for f in fractions if f < 1.0], seed
    )
    membership: dict[int, list[str]] = {}
    for f, idx in subsets.items():
        key = fraction_key(f)
        doc[key] = [doc["training"][i] for i in idx]
        for i in idx:
            membership.setdefault(i, []).append(key)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    frac_keys = [fraction_key(f) for f in subsets]
    with open(out_dir / f"{name}_splits.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "subject_id", "image", "split", *frac_keys])
        for split in SPLITS:
            for i, item in enumerate(doc[split]):
                member = membership.get(i, []) if split == "training" else []
                writer.writerow(
                    [
                        _item_id(item),
                        item.get("subject_id", ""),
                        item["image"],
                        split,
                        *(int(k in member) for k in frac_keys),
                    ]
                )
    return path


def load_datalist(
    path: str | Path, split: str = "training", fraction: float | None = None, seed: int = 0
) -> list[dict[str, Any]]:
    """Load one split of a datalist with absolute paths (``image`` and ``mask``).

    Same semantics as ``monai.data.load_decathlon_datalist(path, data_list_key=split)``: paths are
    resolved against the datalist's folder.

    Args:
        path: datalist JSON.
        split: ``training``, ``validation``, ``test`` or a fraction key such as ``training_1pct``.
        fraction: a training fraction in (0, 1]: the datalist's ``training_<p>pct`` key when it has one,
            else the same nested subset :func:`write_datalist` would have written
            (:func:`training_fractions` over the items' subjects); ``1.0`` is ``training`` itself.
        seed: seed of a drawn fraction when the datalist records no ``seed`` of its own.

    Returns:
        The items, copies with absolute paths.

    Raises:
        FileNotFoundError: the datalist does not exist.
        KeyError: the split is not in the datalist.
        ValueError: a fraction outside (0, 1], or a fraction of a split other than ``training``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"datalist {path} not found")
    doc = json.loads(path.read_text(encoding="utf-8"))
    if fraction is not None and not 0 < fraction <= 1:
        raise ValueError(f"{path}: training fraction {fraction} must be in (0, 1]")
    if fraction is not None and fraction < 1.0 and split != "training":
        raise ValueError(f"{path}: a training fraction applies to the training split, not {split!r}")
    key = fraction_key(fraction) if fraction is not None and fraction < 1.0 else split
    if key in doc:
        items = doc[key]
    elif key != split and split in doc:
        draw_seed = int(doc.get("seed", seed))
        idx = training_fractions([subject_of(it) for it in doc[split]], [fraction], draw_seed)[fraction]
        items = [doc[split][i] for i in idx]
        logger.info("%s has no %s key: drew the %d-item subset (seed %d)", path, key, len(items), draw_seed)
    else:
        keys = [k for k in doc if k in SPLITS or k.startswith("training_")]
        raise KeyError(f"{path}: no split {key!r}; it has {keys}")
    base = path.parent.resolve()
    out = []
    for item in items:
        item = dict(item)
        for k in _PATH_KEYS:
            if isinstance(item.get(k), str) and item[k]:
                item[k] = str((base / item[k]).resolve()) if not Path(item[k]).is_absolute() else item[k]
        out.append(item)
    return out


def relative_to(path: str | Path, out_dir: str | Path) -> str:
    """Path of ``path`` relative to ``out_dir`` (with ``..`` where needed), as a POSIX string.

    Args:
        path: file path.
        out_dir: datalist folder.

    Returns:
        The relative path.
    """
    import os

    return Path(os.path.relpath(Path(path).resolve(), Path(out_dir).resolve())).as_posix()
