"""Data set adapters: official layouts -> MONAI datalists (see ``docs/datasets.md``).

Each adapter is ``adapt_<name>(root, out_dir, seed=0, val_ratio=..., **options) -> AdapterResult``;
:func:`prepare_dataset` runs one and writes the datalist and split files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gkmvlp_monai.data.adapters.base import AdapterError, AdapterResult
from gkmvlp_monai.data.adapters.chexpert import adapt_chexpert
from gkmvlp_monai.data.adapters.covidx import adapt_covidx
from gkmvlp_monai.data.adapters.iu_xray import adapt_iu_xray
from gkmvlp_monai.data.adapters.mimic_cxr import (
    adapt_chest_imagenome,
    adapt_mimic_cxr_dicom,
    adapt_mimic_cxr_jpg,
)
from gkmvlp_monai.data.adapters.nih import adapt_nih
from gkmvlp_monai.data.adapters.rsna import adapt_rsna
from gkmvlp_monai.data.adapters.siim import adapt_siim
from gkmvlp_monai.data.adapters.vqa import adapt_slake, adapt_vqa_rad
from gkmvlp_monai.data.datalist import DEFAULT_FRACTIONS, write_datalist

ADAPTERS: dict[str, Callable[..., AdapterResult]] = {
    "mimic-cxr-jpg": adapt_mimic_cxr_jpg,
    "mimic-cxr": adapt_mimic_cxr_dicom,
    "chest-imagenome": adapt_chest_imagenome,
    "chexpert": adapt_chexpert,
    "nih": adapt_nih,
    "rsna": adapt_rsna,
    "siim": adapt_siim,
    "covidx": adapt_covidx,
    "iu-xray": adapt_iu_xray,
    "vqa-rad": adapt_vqa_rad,
    "slake": adapt_slake,
}

__all__ = ["ADAPTERS", "AdapterError", "AdapterResult", "get_adapter", "prepare_dataset"]


def get_adapter(name: str) -> Callable[..., AdapterResult]:
    """The adapter registered as ``name``.

    Raises:
        KeyError: unknown name, listing the known ones.
    """
    if name not in ADAPTERS:
        raise KeyError(f"unknown data set {name!r}; known: {sorted(ADAPTERS)}")
    return ADAPTERS[name]


def prepare_dataset(
    name: str,
    root: str | Path,
    out_dir: str | Path,
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    **options: Any,
) -> tuple[Path, AdapterResult]:
    """Run an adapter and write ``<out_dir>/<datalist name>.json`` plus its split CSV.

    Args:
        name: registry name (see :data:`ADAPTERS`).
        root: the data set's official folder.
        out_dir: output folder (created).
        seed: seed of splits and fractions.
        fractions: training fractions written next to the full training split.
        **options: adapter options (``val_ratio``, ``test_ratio``, ``reports_root``, ...).

    Returns:
        ``(datalist path, adapter result)``.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        AdapterError: the layout is not as documented.
    """
    root, out_dir = Path(root), Path(out_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"data set folder {root} not found")
    out_dir.mkdir(parents=True, exist_ok=True)
    result = get_adapter(name)(root, out_dir, seed=seed, **options)
    extra = {
        "skipped": dict(result.skipped.counts),
        "notes": dict(result.notes.counts),
        "source": str(root.resolve()),
    }
    path = write_datalist(
        out_dir,
        result.name,
        result.splits,
        result.label_names,
        result.label_type,
        result.description,
        fractions=fractions,
        seed=seed,
        extra=extra,
    )
    return path, result
