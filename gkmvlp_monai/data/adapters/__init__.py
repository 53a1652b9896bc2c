"""Data set adapters: official layouts -> MONAI datalists (see ``docs/datasets.md``).

Each adapter is ``adapt_<name>(root, out_dir, seed=0, val_ratio=..., **options) -> AdapterResult``;
:func:`prepare_dataset` runs one and writes the datalist and split files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gkmvlp_monai.data.adapters.base import AdapterError, AdapterResult, norm_view
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
from gkmvlp_monai.data.image_check import inspect_images

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

__all__ = ["ADAPTERS", "AdapterError", "AdapterResult", "StrictCheckError", "check_items", "get_adapter", "prepare_dataset"]


class StrictCheckError(AdapterError):
    """``strict`` preparation found bad image files (all are listed in ``prepare_report.json``)."""


def get_adapter(name: str) -> Callable[..., AdapterResult]:
    """The adapter registered as ``name``.

    Raises:
        KeyError: unknown name, listing the known ones.
    """
    if name not in ADAPTERS:
        raise KeyError(f"unknown data set {name!r}; known: {sorted(ADAPTERS)}")
    return ADAPTERS[name]


def check_items(
    result: AdapterResult, out_dir: Path, workers: int | None = None
) -> dict[str, str]:
    """Open every image the result's items reference; drop the items whose file is unusable.

    Each remaining item gets ``image_size`` = the stored size of its file, and a DICOM's view position
    where the adapter found none. Dropped items are counted in ``result.skipped`` under
    ``"image file unreadable"`` (the adapter has counted its own ``bad_files`` already).

    Args:
        result: adapter result (changed in place).
        out_dir: the datalist folder item paths are relative to.
        workers: check processes (default: the CPU count).

    Returns:
        Every bad file (the adapter's own ``bad_files`` and those found here): path -> reason.
    """
    def path_of(item: dict[str, Any]) -> str:
        return str((out_dir / item["image"]).resolve())

    known = {str(Path(p).resolve()): info for p, info in result.image_info.items()}
    todo = [path_of(it) for items in result.splits.values() for it in items]
    good, bad = inspect_images([p for p in todo if p not in known], workers)
    good.update(known)
    for split, items in result.splits.items():
        kept = []
        for item in items:
            path = path_of(item)
            if path in bad:
                result.skipped.add("image file unreadable", f"{item['image']}: {bad[path]}")
                continue
            info = good[path]
            item["image_size"] = [info.width, info.height]
            if not item.get("view") and norm_view(info.view):
                item["view"] = norm_view(info.view)
            kept.append(item)
        result.splits[split] = kept
    return {**{str(Path(p).resolve()): r for p, r in result.bad_files.items()}, **bad}


def prepare_dataset(
    name: str,
    root: str | Path,
    out_dir: str | Path,
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    strict: bool = False,
    workers: int | None = None,
    **options: Any,
) -> tuple[Path, AdapterResult]:
    """Run an adapter, check every image, write ``<out_dir>/<datalist name>.json`` and its split CSV.

    Every referenced image is opened (:func:`check_items`); the bad ones are left out and listed with
    their reasons, with the adapter's warnings and the counts, in ``<out_dir>/prepare_report.json``;
    the returned result's ``bad_files`` then holds all of them.

    Args:
        name: registry name (see :data:`ADAPTERS`).
        root: the data set's official folder.
        out_dir: output folder (created).
        seed: seed of splits and fractions.
        fractions: training fractions written next to the full training split.
        strict: stop (raise :class:`AdapterError`) when any image file is bad, writing no datalist.
        workers: image-check processes (default: the CPU count).
        **options: adapter options (``val_ratio``, ``test_ratio``, ``reports_root``, ...).

    Returns:
        ``(datalist path, adapter result)``.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        AdapterError: the layout is not as documented.
        StrictCheckError: ``strict`` and a bad image file (the report is written first).
    """
    root, out_dir = Path(root), Path(out_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"data set folder {root} not found")
    out_dir.mkdir(parents=True, exist_ok=True)
    result = get_adapter(name)(root, out_dir, seed=seed, **options)
    bad = result.bad_files = check_items(result, out_dir, workers)
    report = {
        "dataset": name,
        "source": str(root.resolve()),
        "layout": result.layout,
        "warnings": result.warnings,
        "items": {split: len(items) for split, items in result.splits.items()},
        "skipped": dict(result.skipped.counts),
        "bad_files": [{"file": f, "reason": r} for f, r in sorted(bad.items())],
        "strict": strict,
    }
    (out_dir / "prepare_report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    if strict and bad:
        first = next(iter(sorted(bad.items())))
        raise StrictCheckError(
            f"{len(bad)} bad image file(s) with --strict, e.g. {first[0]}: {first[1]}; "
            f"all are listed in {out_dir / 'prepare_report.json'}"
        )
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
