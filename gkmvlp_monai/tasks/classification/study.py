"""Classification study: pre-trained GK-MVLP against the same network from scratch, on one data set.

For every data fraction, every mode (linear probe, fine-tuning) and both initialisations (pre-trained
checkpoint, random), the ``gkmvlp_classification`` bundle is trained and evaluated on the test split
(thresholds chosen on the validation split); zero-shot (no training) is scored for both initialisations.
Runs go in-process through ``monai.bundle.ConfigWorkflow`` with the bundle's own configs, so the figures
are exactly what ``python -m monai.bundle run`` gives with the same overrides.

Writes ``<out_dir>/classification_results.json`` (every metric of every run, plus the settings) and
``<out_dir>/classification_results.md`` (macro AUC table), and returns the results dict.

Command line::

    python -m gkmvlp_monai.tasks.classification.study --pretrained_ckpt bundles/gkmvlp_pretrain/models/model.pt \
        --dataset_dir data/iu-synth --out_dir runs/classification --model_size small --image_size 128
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gkmvlp_monai.core.paths import REPO_ROOT

logger = logging.getLogger(__name__)

BUNDLE = REPO_ROOT / "bundles" / "gkmvlp_classification"
MODES = ("linear_probe", "finetune")

__all__ = ["format_table", "run_study"]


def _workflow(configs: Sequence[str], overrides: dict[str, Any], workflow_type: str) -> Any:
    from monai.bundle import ConfigWorkflow

    files = [str(BUNDLE / "configs" / c) for c in configs]
    wf = ConfigWorkflow(
        config_file=files,
        meta_file=str(BUNDLE / "configs" / "metadata.json"),
        logging_file=False,
        workflow_type=workflow_type,
        **{"bundle_root": str(BUNDLE), **overrides},
    )
    wf.initialize()
    wf.run()
    wf.finalize()
    return wf


def _train_and_evaluate(common: dict[str, Any], run_dir: Path, zero_shot: bool) -> dict[str, Any]:
    overrides = {**common, "ckpt_dir": str(run_dir / "models"), "output_dir": str(run_dir / "eval")}
    t0 = time.time()
    if zero_shot:
        _workflow(["base.json", "train.json", "evaluate.json", "zero_shot.json"], overrides, "infer")
    else:
        _workflow(["base.json", "train.json"], overrides, "train")
        _workflow(["base.json", "train.json", "evaluate.json"], overrides, "infer")
    sub = ("zero_shot",) if zero_shot else ()
    result = json.loads(run_dir.joinpath("eval", *sub, "metrics.json").read_text())
    result["seconds"] = round(time.time() - t0, 1)
    return result


def _step_budget(datalist: str, fraction: float, seed: int, batch_size: int, steps: int) -> dict[str, Any]:
    """``max_epochs`` / ``epoch_length`` overrides giving ``steps`` updates over a training fraction."""
    from gkmvlp_monai.engine.budget import budget_overrides
    from gkmvlp_monai.tasks.classification.engine import training_items

    n_items = len(training_items(datalist, fraction, seed))
    # validation (best checkpoint) twice per run, not after each of a small fraction's many epochs
    return budget_overrides(steps, n_items, min(batch_size, n_items), validations=2)


def _fmt(value: float | None) -> str:
    return (
        "undefined" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"
    )


def format_table(results: dict[str, Any]) -> str:
    """Markdown table of test macro AUC: one row per mode, one column per initialisation x fraction."""
    fractions = results["settings"]["fractions"]
    cols = [(init, f) for f in fractions for init in ("pretrained", "scratch")]
    head = "| mode | " + " | ".join(f"{init} {round(f * 100):g} %" for init, f in cols) + " |"
    lines = [head, "|" + " --- |" * (len(cols) + 1)]
    for mode in (*results["settings"]["modes"], "zero_shot"):
        cells = []
        for init, f in cols:
            key = f"{mode}/{init}" if mode == "zero_shot" else f"{mode}/{init}/{round(f * 100):g}pct"
            run = results["runs"].get(key)
            cells.append(_fmt(run["metrics"].get("macro_AUC")) if run else "-")
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Zero-shot needs no training data: its cells repeat across fractions.")
    return "\n".join(lines)


def run_study(
    pretrained_ckpt: str,
    dataset_dir: str,
    out_dir: str,
    fractions: Sequence[float] = (0.1, 1.0),
    modes: Sequence[str] = MODES,
    model_size: str = "small",
    image_size: int = 128,
    epochs: int = 3,
    batch_size: int = 16,
    num_workers: int = 0,
    seed: int = 0,
    zero_shot: bool = True,
    extra_overrides: dict[str, Any] | None = None,
    steps: int | None = None,
) -> dict[str, Any]:
    """Train and evaluate the classification bundle for pre-trained vs scratch at each fraction and mode.

    Every run gets the same budget: ``epochs`` over its fraction or, when ``steps`` is given, that many
    optimizer updates whatever the fraction (whole epochs, rounded up, over a small fraction; part of one
    shuffled epoch over a large one), with the same batch size and schedule. The images are decoded and
    resized once into ``<out_dir>/cache`` and shared by all runs.

    Args:
        pretrained_ckpt: GK-MVLP pre-training checkpoint (``models/model.pt`` of the pretrain bundle).
        dataset_dir: folder holding ``datalist.json`` (with ``training``/``validation``/``test``).
        out_dir: output folder (runs, cache, results).
        fractions: training-data fractions.
        modes: ``linear_probe`` and/or ``finetune``.
        model_size: GK-MVLP size of the checkpoint.
        image_size: input size (the checkpoint's ``image_size`` for zero-shot to be meaningful).
        epochs: epochs per training run.
        batch_size: training batch size.
        num_workers: data-loader workers.
        seed: seed of every run.
        zero_shot: also score zero-shot (pre-trained and untrained network).
        extra_overrides: more bundle overrides for every run (e.g. ``{"learning_rate": 3e-4}``).
        steps: optimizer updates of every training run (replaces ``epochs`` when given).

    Returns:
        ``{"settings": {...}, "runs": {"<mode>/<init>/<p>pct" or "zero_shot/<init>": metrics.json}}``.
    """
    ckpt = Path(pretrained_ckpt)
    if not ckpt.is_file():
        raise FileNotFoundError(f"pre-trained checkpoint {ckpt} not found")
    datalist = Path(dataset_dir) / "datalist.json"
    if not datalist.is_file():
        raise FileNotFoundError(f"{datalist} not found (dataset_dir must hold datalist.json)")
    for m in modes:
        if m not in MODES:
            raise ValueError(f"unknown mode {m!r}; use {MODES}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    common = {
        "dataset_dir": str(Path(dataset_dir).resolve()),
        "model_size": model_size,
        "image_size": image_size,
        "max_epochs": epochs,
        "batch_size": batch_size,
        "num_workers": num_workers,
        "seed": seed,
        "mlflow": False,
        "ood#enabled": False,  # study runs are scored, never served: no OOD statistics pass
        "cache": "disk",
        "cache_dir": str((out / "cache").resolve()),
        **(extra_overrides or {}),
    }
    settings = {
        "pretrained_ckpt": str(ckpt.resolve()),
        "dataset_dir": common["dataset_dir"],
        "fractions": list(fractions),
        "modes": list(modes),
        "model_size": model_size,
        "image_size": image_size,
        "epochs": None if steps is not None else epochs,
        "steps": steps,
        "batch_size": batch_size,
        "seed": seed,
        "extra_overrides": extra_overrides or {},
    }
    results: dict[str, Any] = {"settings": settings, "runs": {}}
    t0 = time.time()
    inits = {"pretrained": str(ckpt.resolve()), "scratch": None}
    for f in fractions:
        for mode in modes:
            for init, path in inits.items():
                key = f"{mode}/{init}/{round(f * 100):g}pct"
                logger.info("study run %s", key)
                run = {**common, "mode": mode, "fraction": float(f), "pretrained_ckpt": path}
                if steps is not None:
                    run.update(_step_budget(str(datalist), float(f), seed, batch_size, steps))
                results["runs"][key] = _train_and_evaluate(run, out / key.replace("/", "_"), False)
    if zero_shot:
        for init, path in inits.items():
            key = f"zero_shot/{init}"
            run = {**common, "pretrained_ckpt": path}
            results["runs"][key] = _train_and_evaluate(run, out / key.replace("/", "_"), True)
    settings["seconds"] = round(time.time() - t0, 1)
    (out / "classification_results.json").write_text(json.dumps(results, indent=1, sort_keys=True))
    table = format_table(results)
    (out / "classification_results.md").write_text(
        f"# Classification study (test macro AUC)\n\n{table}\n\nSettings: `{json.dumps(settings)}`\n"
    )
    logger.info("classification study done in %.0f s\n%s", settings["seconds"], table)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pretrained_ckpt", required=True)
    p.add_argument("--dataset_dir", required=True)
    p.add_argument("--out_dir", required=True)
    p.add_argument("--fractions", type=float, nargs="+", default=[0.1, 1.0])
    p.add_argument("--modes", nargs="+", default=list(MODES))
    p.add_argument("--model_size", default="small")
    p.add_argument("--image_size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--steps", type=int, default=None, help="optimizer updates per run (replaces --epochs)")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--num_workers", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no_zero_shot", action="store_true")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    res = run_study(
        a.pretrained_ckpt,
        a.dataset_dir,
        a.out_dir,
        a.fractions,
        a.modes,
        a.model_size,
        a.image_size,
        a.epochs,
        a.batch_size,
        a.num_workers,
        a.seed,
        not a.no_zero_shot,
        steps=a.steps,
    )
    print(format_table(res))


if __name__ == "__main__":
    main()
