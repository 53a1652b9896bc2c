"""The study runner: one signature for every task's study and one result format, JSON rows.

A study compares initialisations (the pre-trained checkpoint against the same network from scratch)
across training fractions under one budget. :func:`run_study` runs the task's own study
(``gkmvlp_monai/tasks/<task>/study.py``: which bundle configs run, which metrics are read) and turns its
result into rows, one per figure, written to ``<out_dir>/<task>/rows.json``:

``task``, ``method`` (the pre-training method), ``variant`` (e.g. ``linear_probe``, ``zero_shot``,
``fine-tuned``, ``hybrid``), ``init`` (``pretrained``, ``scratch`` or ``baseline``), ``fraction`` (of
the training split; ``None`` for a variant that trains on nothing), ``metric``, ``value`` (a float),
``seed``, ``command`` (the command line that regenerates the row) and ``commit`` (the checkout's git HEAD,
or the package version outside a git checkout).

Command line: ``python -m gkmvlp_monai.studies --help``.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import gkmvlp_monai
from gkmvlp_monai.tasks.classification import study as classification_study
from gkmvlp_monai.tasks.localization import study as localization_study
from gkmvlp_monai.tasks.report_generation import study as report_generation_study
from gkmvlp_monai.tasks.vqa import study as vqa_study

__all__ = [
    "INITS",
    "METHOD",
    "ROW_FIELDS",
    "STUDIES",
    "check_settings",
    "format_setting",
    "parse_setting",
    "run_study",
    "source_commit",
    "study_command",
]

logger = logging.getLogger(__name__)

#: every task with a study, in the order the demo and the summary show them
STUDIES: dict[str, ModuleType] = {
    "classification": classification_study,
    "localization": localization_study,
    "report_generation": report_generation_study,
    "vqa": vqa_study,
}
#: the pre-training method of the checkpoint a study starts from
METHOD = "gkmvlp"
INITS = ("pretrained", "scratch")
#: the fields of every result row, in this order
ROW_FIELDS = ("task", "method", "variant", "init", "fraction", "metric", "value", "seed", "command", "commit")
#: the file the runner writes under ``<out_dir>/<task>/``
ROWS_FILE = "rows.json"


def source_commit() -> str:
    """The git HEAD of the checkout this package is imported from, or ``gkmvlp-monai==<version>`` when it
    is not imported from a git checkout (an installed wheel)."""
    package = Path(gkmvlp_monai.__file__).resolve().parent
    try:
        proc = subprocess.run(
            ["git", "-C", str(package), "rev-parse", "--show-toplevel", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        proc = None
    lines = proc.stdout.split() if proc is not None and proc.returncode == 0 else []
    # a wheel installed into a virtual environment that sits inside some git checkout is not that checkout
    if len(lines) == 2 and (Path(lines[0]) / "gkmvlp_monai").resolve() == package:
        return lines[1]
    return f"gkmvlp-monai=={gkmvlp_monai.__version__}"


def format_setting(key: str, value: Any) -> str:
    """``key=value`` for ``--set``: JSON, except a string that does not read as JSON, written bare."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return f"{key}={value}"
    return f"{key}={json.dumps(value)}"


def parse_setting(text: str) -> tuple[str, Any]:
    """The inverse of :func:`format_setting`: ``"lr=1e-3"`` -> ``("lr", 0.001)``, ``"size=tiny"`` ->
    ``("size", "tiny")``, ``'modes=["finetune"]'`` -> ``("modes", ["finetune"])``.

    Raises:
        ValueError: no ``=`` or an empty key.
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set {text!r}: expected key=value (value JSON or a bare string)")
    try:
        return key.strip(), json.loads(raw)
    except ValueError:
        return key.strip(), raw


def study_command(
    task: str,
    pretrained_ckpt: str | None,
    dataset_dir: str,
    out_dir: str,
    fractions: Sequence[float],
    steps: int | None,
    seed: int,
    inits: Sequence[str],
    settings: dict[str, Any],
) -> str:
    """The ``python -m gkmvlp_monai.studies`` command line of one :func:`run_study` call."""
    args = ["python", "-m", "gkmvlp_monai.studies", "--task", task]
    args += ["--pretrained", "scratch" if pretrained_ckpt is None else str(pretrained_ckpt)]
    args += ["--dataset-dir", str(dataset_dir), "--out", str(out_dir)]
    args += ["--fractions", ",".join(f"{f:g}" for f in fractions)]
    if steps is not None:
        args += ["--steps", str(steps)]
    args += ["--seed", str(seed)]
    if tuple(inits) != INITS:
        args += ["--inits", ",".join(inits)]
    for key, value in settings.items():
        args += ["--set", format_setting(key, value)]
    return shlex.join(args)


def check_settings(task: str, module: ModuleType, settings: dict[str, Any]) -> None:
    """Refuse a setting the task's study does not take (its ``run_study``'s keyword-only parameters).

    Raises:
        ValueError: naming the unknown settings and the study's own.
    """
    params = inspect.signature(module.run_study).parameters
    taken = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(settings) - set(taken))
    if unknown:
        raise ValueError(
            f"the {task} study ({module.__name__}) has no setting {', '.join(unknown)}; "
            f"its settings: {', '.join(taken)}"
        )


def _figure_rows(task: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows in field order, ``value`` a float and ``fraction`` a float or ``None``; a figure a study
    could not compute (``None``, NaN) gives no row."""
    out = []
    for row in rows:
        missing = [f for f in ROW_FIELDS if f not in row]
        if missing:
            raise ValueError(f"the {task} study's to_rows gave a row without {missing}: {row}")
        value = row["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        fraction = None if row["fraction"] is None else float(row["fraction"])
        out.append({**{f: row[f] for f in ROW_FIELDS}, "fraction": fraction, "value": float(value)})
    return out


def run_study(
    task: str,
    pretrained_ckpt: str | Path | None,
    dataset_dir: str | Path,
    out_dir: str | Path,
    fractions: Sequence[float] = (0.1, 1.0),
    steps: int | None = None,
    seed: int = 0,
    inits: Sequence[str] = INITS,
    **settings: Any,
) -> list[dict[str, Any]]:
    """Run one task's study and write its result rows to ``<out_dir>/<task>/rows.json``.

    Args:
        task: the study's task, a key of :data:`STUDIES` (its bundle is ``bundles/gkmvlp_<task>``).
        pretrained_ckpt: the pre-training checkpoint (``models/model.pt`` of ``gkmvlp_pretrain``), or
            ``None`` / ``"scratch"`` for none: then only the ``scratch`` initialisation runs.
        dataset_dir: the data set folder holding ``datalist.json``.
        out_dir: the studies' folder; this study's runs and rows go to ``<out_dir>/<task>/``.
        fractions: training fractions, each in (0, 1].
        steps: optimizer updates of every training run, whatever its fraction; ``None``: the study's own
            budget (its ``epochs`` or ``steps`` default).
        seed: seed of every run and of the fraction subsets.
        inits: initialisations to compare, of ``("pretrained", "scratch")``.
        **settings: the task's own settings, passed to its study (``model_size``, ``image_size``,
            ``epochs``, ``batch_size``, ``learning_rate``, ``modes``, ...: the keyword-only parameters of
            ``gkmvlp_monai.tasks.<task>.study.run_study``).

    Returns:
        the rows (see the module docstring), also written to ``<out_dir>/<task>/rows.json``.

    Raises:
        ValueError: an unknown task, initialisation or setting, or a fraction outside (0, 1].
    """
    if task not in STUDIES:
        raise ValueError(f"unknown study task {task!r}; choose from {', '.join(STUDIES)}")
    module = STUDIES[task]
    ckpt = None if pretrained_ckpt is None or str(pretrained_ckpt) == "scratch" else str(pretrained_ckpt)
    inits = tuple(inits)
    unknown = [i for i in inits if i not in INITS]
    if unknown or not inits:
        raise ValueError(f"initialisations {list(inits)}: choose from {INITS}")
    if ckpt is None:
        inits = tuple(i for i in inits if i != "pretrained")
        if not inits:
            raise ValueError("no pre-trained checkpoint and no 'scratch' initialisation: nothing to run")
    bad = [f for f in fractions if not 0 < float(f) <= 1]
    if bad:
        raise ValueError(f"training fractions {bad} outside (0, 1]")
    fractions = tuple(float(f) for f in fractions)
    check_settings(task, module, settings)
    command = study_command(
        task, ckpt, str(dataset_dir), str(out_dir), fractions, steps, seed, inits, settings
    )
    logger.info("study: %s", command)
    task_out = Path(out_dir) / task
    budget = {} if steps is None else {"steps": steps}
    result = module.run_study(
        ckpt,
        str(dataset_dir),
        str(task_out),
        fractions=fractions,
        seed=seed,
        inits=inits,
        **budget,
        **settings,
    )
    common = {"task": task, "method": METHOD, "seed": seed, "command": command, "commit": source_commit()}
    rows = _figure_rows(task, module.to_rows(result, **common))
    task_out.mkdir(parents=True, exist_ok=True)
    (task_out / ROWS_FILE).write_text(json.dumps(rows, indent=1) + "\n")
    return rows
