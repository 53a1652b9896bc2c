"""Helpers shared by the data set adapters: the result type, CSV reading with clear errors, lookups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gkmvlp_monai.data.datalist import SkipLog
from gkmvlp_monai.data.image_check import ImageInfo


class AdapterError(ValueError):
    """The official layout is not as expected (missing file or column, malformed row); names the file."""


@dataclass
class AdapterResult:
    """What an adapter returns; :func:`gkmvlp_monai.data.adapters.prepare_dataset` writes it.

    Attributes:
        name: datalist name (file stem).
        splits: split name -> items (paths relative to the output folder).
        label_names: class names of ``label``.
        label_type: ``"multilabel"`` or ``"multiclass"``.
        description: free text for the datalist.
        skipped: rows skipped, by reason.
        notes: rows kept but flagged (e.g. reports missing sections), by reason.
        bad_files: image files the adapter found unusable itself (and counted in ``skipped``): path ->
            reason; the other files are checked by :func:`gkmvlp_monai.data.adapters.prepare_dataset`,
            which then sets this to every bad file.
        image_info: files the adapter already checked: path -> :class:`ImageInfo` (not checked again).
        layout: which of the data set's documented layouts was found, when it has several.
        warnings: fallbacks taken (e.g. no official split file), printed by the CLI.
    """

    name: str
    splits: dict[str, list[dict[str, Any]]]
    label_names: list[str] = field(default_factory=list)
    label_type: str = "multilabel"
    description: str = ""
    skipped: SkipLog = field(default_factory=SkipLog)
    notes: SkipLog = field(default_factory=SkipLog)
    bad_files: dict[str, str] = field(default_factory=dict)
    image_info: dict[str, ImageInfo] = field(default_factory=dict)
    layout: str = ""
    warnings: list[str] = field(default_factory=list)


def require_file(root: Path, *candidates: str) -> Path:
    """First of ``candidates`` (relative to ``root``) that exists.

    Args:
        root: data set folder.
        candidates: relative paths in order of preference (e.g. ``x.csv.gz`` then ``x.csv``).

    Returns:
        The existing path.

    Raises:
        AdapterError: none exists; the message lists what was looked for.
    """
    for cand in candidates:
        path = root / cand
        if path.exists():
            return path
    raise AdapterError(
        f"{root}: none of {list(candidates)} found; see docs/datasets.md for the expected layout"
    )


TABLE_SUFFIXES = (".csv", ".csv.gz", ".csv.zip")


def optional_table(root: Path, *stems: str) -> Path | None:
    """First existing ``<stem><suffix>`` under ``root``, for each stem in order and each of
    :data:`TABLE_SUFFIXES` (the forms the data sets are distributed in), else ``None``."""
    return optional_file(root, *(stem + suffix for stem in stems for suffix in TABLE_SUFFIXES))


def require_table(root: Path, *stems: str) -> Path:
    """Like :func:`optional_table`, but raises :class:`AdapterError` listing what was looked for."""
    return require_file(root, *(stem + suffix for stem in stems for suffix in TABLE_SUFFIXES))


def optional_file(root: Path, *candidates: str) -> Path | None:
    """First of ``candidates`` that exists under ``root``, else ``None``."""
    for cand in candidates:
        if (root / cand).exists():
            return root / cand
    return None


def read_csv(path: Path, required: Sequence[str], **kwargs: Any) -> pd.DataFrame:
    """Read a CSV (``.gz``/``.zip`` fine) as strings and check its columns.

    Args:
        path: CSV file.
        required: columns that must be present (after stripping spaces from header names).
        **kwargs: passed to ``pandas.read_csv``.

    Returns:
        The table, every cell a string (``""`` for blanks).

    Raises:
        AdapterError: unreadable file or missing columns (named with the columns found).
    """
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, **kwargs)
    except Exception as err:  # pandas raises many types; report them uniformly with the file name
        raise AdapterError(f"{path}: cannot read as CSV ({err})") from err
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise AdapterError(f"{path}: missing column(s) {missing}; found {list(df.columns)}")
    return df


def norm_view(raw: str) -> str:
    """Map a view/position string to the contract's ``PA``/``AP``/``LATERAL``/``LL``/``""``."""
    v = " ".join(str(raw).upper().split())
    if v in ("PA", "AP", "LL"):
        return v
    if v in ("AP AXIAL", "AP SUPINE", "AP UPRIGHT"):
        return "AP"
    if v in ("LATERAL", "LAT", "L", "RL", "LARGE LATERAL", "RLD", "LLD", "XTABLE LATERAL"):
        return "LATERAL"
    return ""


def parse_label_value(raw: str, where: str) -> float:
    """CheXpert-style label cell: blank -> 0, ``1``/``1.0`` -> 1, ``0`` -> 0, ``-1`` -> -1.

    Raises:
        AdapterError: any other value, naming ``where``.
    """
    text = str(raw).strip()
    if text == "":
        return 0.0
    try:
        value = float(text)
    except ValueError as err:
        raise AdapterError(f"{where}: label value {raw!r} is not blank, 1, 0 or -1") from err
    if value not in (1.0, 0.0, -1.0):
        raise AdapterError(f"{where}: label value {raw!r} is not blank, 1, 0 or -1")
    return value
