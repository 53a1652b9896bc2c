"""One-page summary of a demo run: ``<out>/summary.md`` and ``<out>/summary.png``.

Reads what the stages wrote: ``pretrain/eval/metrics.json`` and the result rows of every study,
``<task>/rows.json`` (:mod:`gkmvlp_monai.studies.runner`). Per task one table, each metric of each
variant by initialisation and training fraction, every figure beside its from-scratch counterpart (and
beside a trivial baseline's, where the study reports one); per task one bar chart of its headline figure.
A study that did not run is shown as such.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gkmvlp_monai.studies.runner import ROWS_FILE, STUDIES

__all__ = ["load_rows", "summary_hints", "task_table", "write_summary"]

#: the order of the initialisations in a table: each figure beside its from-scratch counterpart
INIT_ORDER = ("pretrained", "scratch", "baseline")

Key = tuple[str, str, str, float | None]  # (variant, metric, init, fraction)


def _load(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def load_rows(out: str | Path) -> dict[str, list[dict[str, Any]]]:
    """The rows of every study under ``out`` (``<out>/<task>/rows.json``), by task: the tasks of
    :data:`~gkmvlp_monai.studies.runner.STUDIES` first, in their order, then any other folder's."""
    found = {p.parent.name: p for p in Path(out).glob(f"*/{ROWS_FILE}")}
    order = [t for t in STUDIES if t in found] + sorted(set(found) - set(STUDIES))
    rows = {}
    for task in order:
        doc = json.loads(found[task].read_text())
        if not isinstance(doc, list):
            raise ValueError(f"{found[task]}: expected a list of result rows, found {type(doc).__name__}")
        rows[task] = doc
    return rows


def summary_hints(task: str) -> tuple[Sequence[str] | None, tuple[str, str, str] | None]:
    """What the summary shows of a task's study: the metrics of its table (``None``: all) and its plotted
    figure ``(variant, metric, label)`` (``None``: the first row's), from ``tasks/<task>/study.py``."""
    module = STUDIES.get(task)
    return getattr(module, "SUMMARY_METRICS", None), getattr(module, "SUMMARY_FIGURE", None)


def _ordered(values: Sequence[Any], first: Sequence[Any] = ()) -> list[Any]:
    """Distinct ``values`` in the order of ``first``, then in order of appearance."""
    seen = list(dict.fromkeys(values))
    return [v for v in first if v in seen] + [v for v in seen if v not in first]


def _columns(rows: list[dict[str, Any]]) -> list[tuple[str, float | None]]:
    """``(init, fraction)`` columns: per training fraction, the initialisations side by side."""
    fractions = sorted({r["fraction"] for r in rows if r["fraction"] is not None}) or [None]
    inits = _ordered([r["init"] for r in rows], INIT_ORDER)
    return [(init, f) for f in fractions for init in inits]


def _lookup(rows: list[dict[str, Any]]) -> dict[Key, float]:
    return {(r["variant"], r["metric"], r["init"], r["fraction"]): r["value"] for r in rows}


def _value(values: dict[Key, float], variant: str, metric: str, init: str, fraction: float | None) -> Any:
    """The figure of one cell; a variant without training data (fraction ``None``) fills every fraction."""
    value = values.get((variant, metric, init, fraction))
    return values.get((variant, metric, init, None)) if value is None else value


def _fmt(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3f}"


def _fraction_label(fraction: float | None) -> str:
    return "no training" if fraction is None else f"{fraction * 100:g} %"


def task_table(rows: list[dict[str, Any]], metrics: Sequence[str] | None = None) -> str:
    """Markdown table of one study's rows: one line per variant and metric, one column per
    initialisation and training fraction (``metrics``: the metrics shown, in order; ``None``: all)."""
    if not rows:
        return "(no figures)"
    columns = _columns(rows)
    values = _lookup(rows)
    shown = _ordered([r["metric"] for r in rows]) if metrics is None else list(metrics)
    head = "| variant | metric | " + " | ".join(f"{i} {_fraction_label(f)}" for i, f in columns) + " |"
    lines = [head, "|" + " --- |" * (len(columns) + 2)]
    untrained = False
    for variant in _ordered([r["variant"] for r in rows]):
        present = {r["metric"] for r in rows if r["variant"] == variant}
        untrained |= any(r["fraction"] is None for r in rows if r["variant"] == variant)
        for metric in (m for m in shown if m in present):
            cells = [_fmt(_value(values, variant, metric, init, f)) for init, f in columns]
            lines.append(f"| {variant} | {metric} | " + " | ".join(cells) + " |")
    if untrained and any(f is not None for _, f in columns):
        lines += [
            "",
            "A variant that trains on nothing (zero-shot) repeats its figures under every fraction.",
        ]
    return "\n".join(lines)


def _plot(ax: Any, task: str, rows: list[dict[str, Any]] | None) -> None:
    """Bars of the task's headline figure by initialisation and training fraction."""
    title = task.replace("_", " ")
    if not rows:
        ax.set_title(title)
        ax.text(0.5, 0.5, "not run", ha="center", va="center")
        ax.set_axis_off()
        return
    _, figure = summary_hints(task)
    variant, metric, label = figure or (rows[0]["variant"], rows[0]["metric"], rows[0]["metric"])
    picked = [r for r in rows if r["variant"] == variant and r["metric"] == metric]
    ax.set_title(f"{title}: {label}")
    if not picked:
        ax.text(0.5, 0.5, f"no {variant} {metric}", ha="center", va="center")
        return
    values = _lookup(picked)
    fractions = sorted({f for f in (r["fraction"] for r in picked) if f is not None}) or [None]
    inits = _ordered([r["init"] for r in picked], INIT_ORDER)
    width = 0.8 / len(inits)
    for i, init in enumerate(inits):
        ys = [_value(values, variant, metric, init, f) for f in fractions]
        xs = [j + (i - (len(inits) - 1) / 2) * width for j in range(len(fractions))]
        ax.bar(xs, [float("nan") if y is None else y for y in ys], width=width, label=init)
    ax.set_xticks(range(len(fractions)), [f"{_fraction_label(f)} data" for f in fractions])
    ax.legend(fontsize=8)


def _pretrain_section(out: Path) -> tuple[list[str], dict[str, Any] | None]:
    pre = _load(out / "pretrain" / "eval" / "metrics.json")
    params = _load(out / "pretrain" / "eval" / "params.json") or {}
    lines = ["## Pre-training (iu-synth test split)", ""]
    if pre is None:
        return [*lines, "not run", ""], None
    m = pre["metrics"]
    setting = ", ".join(
        f"{k} {params[k]}" for k in ("model_size", "image_size", "batch_size", "max_epochs") if k in params
    )
    lines += [f"Setting: {setting}.", ""]
    lines += ["| metric | value |", "| --- | --- |"]
    lines += [
        f"| zero-shot macro AUC, 8 most frequent drawn findings | {m.get('zs_macro_AUC', float('nan')):.3f} |"
    ]
    for k in ("i2t_R1", "i2t_R5", "i2t_R10", "t2i_R1", "t2i_R5", "t2i_R10"):
        if k in m:
            lines.append(f"| {k} | {m[k]:.3f} |")
    return [*lines, ""], m


def write_summary(out: str | Path) -> tuple[Path, Path]:
    """Write ``summary.md`` and ``summary.png`` for the demo run in ``out``.

    Returns:
        the two paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    lines, pretrain = _pretrain_section(out)
    lines = ["# GK-MVLP demo: summary", "", *lines]
    found = load_rows(out)
    tasks = list(STUDIES) + [t for t in found if t not in STUDIES]
    ncols = 2
    nrows = max(1, math.ceil(len(tasks) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(10, 3.5 * nrows), squeeze=False)
    for ax in axes.flat[len(tasks) :]:
        ax.set_axis_off()
    for ax, task in zip(axes.flat, tasks):
        rows = found.get(task)
        lines += [f"## {task.replace('_', ' ')}", ""]
        _plot(ax, task, rows)
        if rows is None:
            lines += ["not run", ""]
            continue
        metrics, _ = summary_hints(task)
        lines += [task_table(rows, metrics), ""]
        commits = sorted({r["commit"] for r in rows})
        commands = sorted({r["command"] for r in rows})
        lines += [
            f"{len(rows)} figures in `{task}/{ROWS_FILE}` (commit {', '.join(commits)}); regenerate them with",
            "",
            *(f"    {c}" for c in commands),
            "",
        ]
    if pretrain is not None:
        fig.suptitle(
            f"GK-MVLP on iu-synth: pre-training zero-shot AUC {pretrain.get('zs_macro_AUC', float('nan')):.3f}, "
            f"i2t R@10 {pretrain.get('i2t_R10', float('nan')):.3f}"
        )
    fig.tight_layout()
    png = out / "summary.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    md = out / "summary.md"
    md.write_text("\n".join(lines) + "\n")
    return md, png
