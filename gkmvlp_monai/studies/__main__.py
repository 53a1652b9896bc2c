"""Run one task's study: ``python -m gkmvlp_monai.studies --task <task> --pretrained <ckpt or scratch> ...``.

Example (the pre-trained checkpoint against scratch, 10 % and 100 % of the training split, 100 updates
per run)::

    python -m gkmvlp_monai.studies --task classification \\
        --pretrained bundles/gkmvlp_pretrain/models/model.pt --dataset-dir data/iu-synth \\
        --out runs/studies --fractions 0.1,1.0 --steps 100 --seed 0 --set model_size=tiny --set image_size=64

Writes ``<out>/<task>/rows.json`` (one row per figure, each with the command that regenerates it) and
prints the figures as a table.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from typing import Any

from gkmvlp_monai.studies.runner import INITS, ROWS_FILE, STUDIES, parse_setting, run_study


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(f) for f in text.split(",") if f.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated numbers, e.g. 0.1,1.0") from err


def _setting(text: str) -> tuple[str, Any]:
    try:
        return parse_setting(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def parser() -> argparse.ArgumentParser:
    """The command line's parser."""
    p = argparse.ArgumentParser(
        prog="python -m gkmvlp_monai.studies",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--task", required=True, choices=list(STUDIES), help="the study's task (its bundle)")
    p.add_argument(
        "--pretrained", required=True, help="pre-training checkpoint (models/model.pt), or 'scratch' for none"
    )
    p.add_argument("--dataset-dir", required=True, help="data set folder holding datalist.json")
    p.add_argument("--out", required=True, help="studies folder; this study writes <out>/<task>/")
    p.add_argument(
        "--fractions", type=_floats, default=(0.1, 1.0), help="training fractions (default 0.1,1.0)"
    )
    p.add_argument(
        "--steps", type=int, default=None, help="updates per training run (default: the study's own budget)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of every run (default 0)")
    p.add_argument(
        "--inits",
        default=",".join(INITS),
        help=f"initialisations to compare (default {','.join(INITS)})",
    )
    p.add_argument(
        "--set",
        dest="settings",
        type=_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a task setting (model_size, image_size, epochs, learning_rate, ...); VALUE is JSON or a string",
    )
    return p


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Run the study the arguments name, print its table and return its rows."""
    from gkmvlp_monai.studies.summary import summary_hints, task_table

    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    rows = run_study(
        args.task,
        args.pretrained,
        args.dataset_dir,
        args.out,
        fractions=args.fractions,
        steps=args.steps,
        seed=args.seed,
        inits=tuple(i.strip() for i in args.inits.split(",") if i.strip()),
        **dict(args.settings),
    )
    print(task_table(rows, summary_hints(args.task)[0]))
    print(f"\n{len(rows)} rows in {os.path.join(args.out, args.task, ROWS_FILE)}")
    return rows


if __name__ == "__main__":
    main()
