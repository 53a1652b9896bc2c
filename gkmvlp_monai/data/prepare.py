"""Prepare a data set's MONAI datalist from its official layout.

Usage::

    python -m gkmvlp_monai.data.prepare <dataset> --root <official folder> --out <folder> [--seed 0]
        [--val-ratio 0.1] [--test-ratio 0.1] [--fractions 0.01 0.1] [--reports <dir>] [--imagenome <dir>]
        [--jpg-root <dir>] [--images <dir>] [--chest-only] [--strict] [--workers N]

Every image the datalist will reference is opened and checked first (in parallel, with a progress
line); bad files are left out and listed in ``<out>/prepare_report.json`` (``--strict`` stops instead,
exit status 1). Prints the layout found, warnings (fallbacks taken), the items per split, skipped rows
with reasons and flagged rows (e.g. reports missing sections). ``docs/datasets.md`` gives the command
for each data set.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from gkmvlp_monai.data.adapters import ADAPTERS, AdapterError, StrictCheckError, prepare_dataset
from gkmvlp_monai.data.datalist import DEFAULT_FRACTIONS, SPLITS, fraction_key


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``python -m gkmvlp_monai.data.prepare``."""
    p = argparse.ArgumentParser(
        prog="python -m gkmvlp_monai.data.prepare", description=__doc__.split("\n")[0]
    )
    p.add_argument("dataset", choices=sorted(ADAPTERS))
    p.add_argument("--root", required=True, type=Path, help="the data set's official folder")
    p.add_argument("--out", required=True, type=Path, help="output folder for the datalist and split files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-ratio", type=float, default=None, help="validation share where no official split")
    p.add_argument("--test-ratio", type=float, default=None, help="test share where no official split")
    p.add_argument(
        "--fractions",
        type=float,
        nargs="*",
        default=list(DEFAULT_FRACTIONS),
        help="training fractions written as training_<p>pct (nested)",
    )
    p.add_argument("--reports", type=Path, default=None, help="MIMIC: folder with files/pXX/pNNN/sNNN.txt")
    p.add_argument("--imagenome", type=Path, default=None, help="MIMIC: Chest ImaGenome folder")
    p.add_argument(
        "--jpg-root", type=Path, default=None, help="MIMIC DICOM: MIMIC-CXR-JPG folder with the CSVs"
    )
    p.add_argument("--images", type=Path, default=None, help="IU X-ray: image folder")
    p.add_argument("--chest-only", action="store_true", help="VQA-RAD/SLAKE: chest X-ray questions only")
    p.add_argument("--strict", action="store_true", help="stop (exit 1) when any image file is bad")
    p.add_argument("--workers", type=int, default=None, help="image-check processes (default: CPU count)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        Exit status: 0 on success (bad image files are skipped and listed), 1 when ``--strict`` found a
        bad image file, 2 when the layout is wrong or the folder is missing.
    """
    args = build_parser().parse_args(argv)
    options = {
        "val_ratio": args.val_ratio,
        "test_ratio": args.test_ratio,
        "reports_root": args.reports,
        "imagenome_root": args.imagenome,
        "jpg_root": args.jpg_root,
        "images_dir": args.images,
        "chest_only": args.chest_only,
    }
    options = {k: v for k, v in options.items() if v is not None}
    try:
        path, result = prepare_dataset(
            args.dataset,
            args.root,
            args.out,
            seed=args.seed,
            fractions=args.fractions,
            strict=args.strict,
            workers=args.workers,
            **options,
        )
    except StrictCheckError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (AdapterError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if result.layout:
        print(f"layout: {result.layout}")
    for text in result.warnings:
        print(f"warning: {text}", file=sys.stderr)
    print(f"wrote {path}")
    for split in SPLITS:
        print(f"  {split:<12}{len(result.splits.get(split, [])):8d} items")
    doc = json.loads(path.read_text(encoding="utf-8"))
    for f in args.fractions:
        if f < 1.0:
            print(f"  {fraction_key(f):<16}{len(doc.get(fraction_key(f), [])):4d} items")
    print(f"skipped rows ({result.skipped.total}):\n{result.skipped.summary()}")
    print(f"flagged rows ({result.notes.total}):\n{result.notes.summary()}")
    print(f"bad image files: {len(result.bad_files)} (listed in {args.out / 'prepare_report.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
