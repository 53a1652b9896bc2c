"""One-page summary of a demo run: ``<out>/summary.md`` and ``<out>/summary.png``.

Reads what the stages wrote: ``pretrain/eval/metrics.json`` and, per downstream task,
``<task>/<task>_results.json`` with the Markdown table beside it. A stage that did not run is shown as such.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

# per task: (headline metric label, extractor -> {(init, fraction): value})
Headline = tuple[str, Callable[[dict[str, Any]], dict[tuple[str, float], float]]]


def _classification(d: dict[str, Any]) -> dict[tuple[str, float], float]:
    out = {}
    for key, run in d.get("runs", {}).items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == "finetune" and run.get("metrics", {}).get("macro_AUC") is not None:
            out[(parts[1], float(run.get("fraction", 0)))] = float(run["metrics"]["macro_AUC"])
    return out


def _localization(d: dict[str, Any]) -> dict[tuple[str, float], float]:
    return {
        (r["init"], float(r["fraction"])): float(r["dice"])
        for r in d.get("results", [])
        if r.get("variant") == "fine-tuned" and r.get("dice") is not None
    }


def _report_generation(d: dict[str, Any]) -> dict[tuple[str, float], float]:
    return {
        (r["init"], float(r["fraction"])): float(r["metrics"]["ce_micro_f1"])
        for r in d.get("runs", [])
        if r.get("metrics", {}).get("ce_micro_f1") is not None
    }


def _vqa(d: dict[str, Any]) -> dict[tuple[str, float], float]:
    return {
        (r["init"], float(r["fraction"])): float(r["metrics"]["overall_acc"])
        for r in d.get("runs", [])
        if r.get("metrics", {}).get("overall_acc") is not None
    }


HEADLINES: dict[str, Headline] = {
    "classification": ("fine-tune macro AUC", _classification),
    "localization": ("fine-tuned Dice", _localization),
    "report_generation": ("clinical F1 (micro)", _report_generation),
    "vqa": ("overall accuracy", _vqa),
}


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def write_summary(out: str | Path) -> tuple[Path, Path]:
    """Write ``summary.md`` and ``summary.png`` for the demo run in ``out``.

    Returns:
        the two paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    lines = ["# GK-MVLP demo: summary", ""]
    pre = _load(out / "pretrain" / "eval" / "metrics.json")
    params = _load(out / "pretrain" / "eval" / "params.json") or {}
    lines += ["## Pre-training (iu-synth test split)", ""]
    if pre is None:
        lines += ["not run", ""]
    else:
        m = pre["metrics"]
        setting = ", ".join(
            f"{k} {params[k]}"
            for k in ("model_size", "image_size", "batch_size", "max_epochs")
            if k in params
        )
        lines += [f"Setting: {setting}.", ""]
        lines += ["| metric | value |", "| --- | --- |"]
        lines += [
            f"| zero-shot macro AUC, 8 most frequent drawn findings | {m.get('zs_macro_AUC', float('nan')):.3f} |"
        ]
        for k in ("i2t_R1", "i2t_R5", "i2t_R10", "t2i_R1", "t2i_R5", "t2i_R10"):
            if k in m:
                lines.append(f"| {k} | {m[k]:.3f} |")
        lines.append("")
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for ax, (task, (label, extract)) in zip(axes.flat, HEADLINES.items()):
        data = _load(out / task / f"{task}_results.json")
        table = out / task / f"{task}_results.md"
        lines += [f"## {task.replace('_', ' ')}", ""]
        ax.set_title(f"{task.replace('_', ' ')}: {label}")
        if data is None:
            lines += ["not run", ""]
            ax.text(0.5, 0.5, "not run", ha="center", va="center")
            ax.set_axis_off()
            continue
        lines += [table.read_text().strip() if table.is_file() else "(no table)", ""]
        values = extract(data)
        fractions = sorted({f for _, f in values})
        for i, init in enumerate(("pretrained", "scratch")):
            ys = [values.get((init, f), float("nan")) for f in fractions]
            xs = [j + (i - 0.5) * 0.35 for j in range(len(fractions))]
            ax.bar(xs, ys, width=0.35, label=init)
        ax.set_xticks(range(len(fractions)), [f"{f:.0%} data" for f in fractions])
        ax.legend(fontsize=8)
    if pre is not None:
        fig.suptitle(
            f"GK-MVLP on iu-synth: pre-training zero-shot AUC {pre['metrics'].get('zs_macro_AUC', float('nan')):.3f}, "
            f"i2t R@10 {pre['metrics'].get('i2t_R10', float('nan')):.3f}"
        )
    fig.tight_layout()
    png = out / "summary.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    md = out / "summary.md"
    md.write_text("\n".join(lines) + "\n")
    return md, png
