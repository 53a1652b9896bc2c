"""Pre-training ablation: the demo pre-training with all objectives, then with each objective switched off.

Every run trains through the ``gkmvlp_pretrain`` bundle exactly as the README's demo does
(``configs/base.json`` + ``configs/train.json`` + ``configs/demo_cpu.json``, ``loss_weights#<objective>`` set to 0 for the ablated
objective, every other setting equal), then scores the test split with ``configs/evaluate.json``:
zero-shot macro AUC over the 8 abnormal findings drawn most often, image->report and report->image
R@1/5/10 against all test reports, and the LM loss. With ``--localization`` it also scores each
variant's zero-shot grounding maps with the localization bundle (pointing game, IoU and Dice on the test
split, threshold chosen on validation: what the grounding objective is for). Runs whose results exist
are reused, so an interrupted ablation resumes where it stopped.

Usage (repository root; one run takes the time of the demo pre-training at the same ``--epochs``)::

    python bench/pretrain_ablation.py --data data/iu-synth --out runs/ablation --epochs 5 --localization

Prints a Markdown table and writes it to ``<out>/ablation.md`` (and ``ablation.json``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from gkmvlp_monai.apps.demo import PRETRAIN_BUNDLE, run_pretrain_bundle

OBJECTIVES = ("itc", "itm", "lm", "ecls", "grounding")
COLUMNS = (
    ("zs_macro_AUC", "zero-shot macro AUC (8)"),
    ("i2t_R1", "i2t R@1"),
    ("i2t_R5", "i2t R@5"),
    ("i2t_R10", "i2t R@10"),
    ("t2i_R1", "t2i R@1"),
    ("t2i_R5", "t2i R@5"),
    ("t2i_R10", "t2i R@10"),
    ("val_loss_lm", "LM loss"),
)
LOCALIZATION_COLUMNS = (("pointing_game", "ZS pointing game"), ("iou", "ZS IoU"), ("dice", "ZS Dice"))


def run_variant(name: str, off: str | None, datalist: Path, out: Path, epochs: int) -> dict[str, Any]:
    """Train and evaluate one variant (``off``: the objective whose weight is 0, or ``None``)."""
    run = out / name
    metrics_file = run / "eval" / "metrics.json"
    if metrics_file.is_file():
        return json.loads(metrics_file.read_text())
    overrides: dict[str, Any] = {
        "datalist_file": str(datalist.resolve()),
        "ckpt_dir": str((run / "models").resolve()),
        "output_dir": str((run / "eval").resolve()),
        "max_epochs": epochs,
        "val_interval": epochs,
        "mlflow": False,
        "ood#enabled": False,  # variants are scored, never served: no OOD statistics pass
    }
    if off is not None:
        overrides[f"loss_weights#{off}"] = 0.0
    configs = ["configs/base.json", "configs/train.json", "configs/demo_cpu.json"]
    start = time.time()
    if not (run / "models" / "checkpoint_final.pt").is_file():
        run_pretrain_bundle(configs, overrides, run / "train.log")
    train_s = time.time() - start
    run_pretrain_bundle([*configs, "configs/evaluate.json"], overrides, run / "evaluate.log")
    result = json.loads(metrics_file.read_text())
    result["train_seconds"] = round(train_s, 1)
    metrics_file.write_text(json.dumps(result, indent=1))
    return result


def zero_shot_localization(run: Path, datalist: Path) -> dict[str, Any]:
    """Zero-shot grounding figures of a variant's ``models/model.pt`` (localization bundle, test split)."""
    from gkmvlp_monai.tasks.localization.study import run_study

    out = run / "zero_shot_localization"
    done = out / "localization_results.json"
    if not done.is_file():
        demo = json.loads((PRETRAIN_BUNDLE / "configs" / "demo_cpu.json").read_text())
        run_study(
            run / "models" / "model.pt",
            datalist.parent,
            out,
            fractions=(),
            model_size=demo["model_size"],
            image_size=demo["image_size"],
            zero_shot=True,
        )
    rows = json.loads(done.read_text())["results"]
    row = next(r for r in rows if r["variant"] == "zero-shot" and r["init"] == "pretrained")
    return {k: row[k] for k, _ in LOCALIZATION_COLUMNS}


def markdown(results: dict[str, dict[str, Any]], epochs: int) -> str:
    """The ablation table."""
    columns = list(COLUMNS)
    if any("localization" in res for res in results.values()):
        columns += LOCALIZATION_COLUMNS
    head = "| variant | " + " | ".join(label for _, label in columns) + " | train min |"
    rows = [head, "| --- " * (len(columns) + 2) + "|"]
    for name, res in results.items():
        m = {**res["metrics"], **res.get("localization", {})}
        cells = [f"{m[k]:.3f}" if m.get(k) is not None else "n/a" for k, _ in columns]
        minutes = f"{res['train_seconds'] / 60:.1f}" if "train_seconds" in res else "n/a"
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {minutes} |")
    rows.append("")
    rows.append(f"Each variant: `configs/demo_cpu.json` with `max_epochs` {epochs}; test split of iu-synth.")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="data/iu-synth", help="demo set folder holding datalist.json")
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument(
        "--objectives", default=",".join(OBJECTIVES), help="objectives to switch off, one run each"
    )
    p.add_argument(
        "--localization", action="store_true", help="also score each variant's zero-shot grounding maps"
    )
    a = p.parse_args(argv)
    datalist = Path(a.data) / "datalist.json"
    if not datalist.is_file():
        raise SystemExit(f"{datalist} not found: build the demo set first (python -m gkmvlp_monai.apps.demo)")
    out = Path(a.out)
    variants: dict[str, str | None] = {"all objectives": None}
    for obj in [o for o in a.objectives.split(",") if o]:
        if obj not in OBJECTIVES:
            raise SystemExit(f"unknown objective {obj!r}; known: {OBJECTIVES}")
        variants[f"without {obj.upper()}"] = obj
    results = {}
    for name, off in variants.items():
        print(f"== {name}", flush=True)
        results[name] = run_variant(name.replace(" ", "_"), off, datalist, out, a.epochs)
        if a.localization:
            results[name]["localization"] = zero_shot_localization(out / name.replace(" ", "_"), datalist)
    table = markdown(results, a.epochs)
    (out / "ablation.md").write_text(table)
    (out / "ablation.json").write_text(json.dumps(results, indent=1))
    print(table)
    return results


if __name__ == "__main__":
    main()
