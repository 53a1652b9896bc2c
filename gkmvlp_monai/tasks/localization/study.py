"""Localization study: pre-trained vs from-scratch, zero-shot and fine-tuned, at several data fractions.

Runs the ``bundles/gkmvlp_localization`` configs themselves (so the figures come from the documented
bundle path), with the same network and the same optimizer-step budget for both initialisations:

- zero-shot (``train.json + evaluate.json + zero_shot.json``): GK attention heat maps of the pre-trained
  network, and of the same network untrained (the chance reference of "from scratch");
- fine-tuned (``train.json`` then ``train.json + evaluate.json``) at each training fraction, encoder
  initialised from the pre-trained checkpoint or at random.

Every evaluation chooses its threshold on the validation split and reports the test split. Writes
``<out_dir>/localization_results.json`` and ``<out_dir>/localization_results.md``.

Command::

    python -m gkmvlp_monai.tasks.localization.study --pretrained_ckpt bundles/gkmvlp_pretrain/models/model.pt \
        --dataset_dir data/iu-synth --out_dir runs/localization_study --model_size tiny --image_size 128
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gkmvlp_monai.core.paths import REPO_ROOT

__all__ = ["run_study", "results_table", "main"]

logger = logging.getLogger(__name__)

BUNDLE_DIR = REPO_ROOT / "bundles" / "gkmvlp_localization"
METRICS = ("pointing_game", "iou", "dice")


def _run_bundle(config_files: Sequence[str], overrides: dict[str, Any]) -> None:
    from monai.bundle import ConfigWorkflow

    configs = [str(BUNDLE_DIR / "configs" / f) for f in config_files]
    workflow = ConfigWorkflow(
        config_file=configs,
        meta_file=str(BUNDLE_DIR / "configs" / "metadata.json"),
        logging_file=str(BUNDLE_DIR / "configs" / "logging.conf"),
        workflow_type=None,
        **overrides,
    )
    workflow.initialize()
    workflow.run()
    workflow.finalize()


def _read_metrics(path: Path, prefix: str = "test_") -> dict[str, float | None]:
    if not path.is_file():
        raise FileNotFoundError(f"evaluation wrote no metrics file {path}")
    metrics = json.loads(path.read_text())["metrics"]
    out = {k: metrics.get(prefix + k) for k in (*METRICS, "threshold", "n_findings")}
    return out


def run_study(
    pretrained_ckpt: str | Path,
    dataset_dir: str | Path,
    out_dir: str | Path,
    fractions: Sequence[float] = (0.1, 1.0),
    model_size: str = "tiny",
    image_size: int = 128,
    steps: int = 120,
    batch_size: int = 8,
    learning_rate: float = 5e-4,
    val_evals: int = 2,
    target_findings: Sequence[str] | None = None,
    num_workers: int = 0,
    seed: int = 0,
    zero_shot: bool = True,
) -> dict[str, Any]:
    """Run the study and write its results.

    Args:
        pretrained_ckpt: GK-MVLP pre-training checkpoint (``models/model.pt`` of the pretrain bundle).
        dataset_dir: folder of ``datalist.json`` (iu-synth).
        out_dir: output folder (one sub-folder per run, ``cache/`` shared).
        fractions: training fractions (1.0 = the whole training split).
        model_size: GK-MVLP size the checkpoint was trained with.
        image_size: input size.
        steps: optimizer steps of every fine-tuning run (same budget for both initialisations and all
            fractions: smaller fractions get more epochs, whole epochs rounded up; a fraction with more
            than ``steps`` batches trains ``steps`` of them).
        batch_size: training batch size.
        learning_rate: AdamW learning rate.
        val_evals: validations per fine-tuning run (best checkpoint by validation Dice at 0.5).
        target_findings: override the bundle's target findings.
        num_workers: DataLoader workers.
        seed: seed of every run and of the data fractions.
        zero_shot: also evaluate zero-shot heat maps.

    Returns:
        ``{"settings": ..., "results": [{"variant", "init", "fraction", pointing_game, iou, dice,
        threshold, n_findings, seconds}], "pretrained_beats_scratch": {fraction: {metric: bool}}}``.
    """
    from gkmvlp_monai.engine.budget import budget_overrides
    from gkmvlp_monai.tasks.localization.engine import localization_items

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    datalist = Path(dataset_dir).resolve() / "datalist.json"
    ckpt = str(Path(pretrained_ckpt).resolve())
    if not Path(ckpt).is_file():
        raise FileNotFoundError(f"pre-trained checkpoint {ckpt} not found")
    common: dict[str, Any] = {
        "bundle_root": str(BUNDLE_DIR),
        "dataset_dir": str(Path(dataset_dir).resolve()),
        "model_size": model_size,
        "image_size": image_size,
        "num_workers": num_workers,
        "mlflow": False,
        "seed": seed,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "cache_dir": str(out / "cache" / f"{model_size}_{image_size}"),
    }
    if target_findings:
        common["target_findings"] = list(target_findings)
    results: list[dict[str, Any]] = []
    common["pretrained_ckpt"] = ckpt
    inits = {"pretrained": False, "scratch": True}
    t_all = time.time()
    for init, scratch in inits.items():
        if zero_shot:
            t0 = time.time()
            run_dir = out / f"zero_shot_{init}"
            _run_bundle(
                ["base.json", "train.json", "evaluate.json", "zero_shot.json"],
                {**common, "from_scratch": scratch, "output_dir": str(run_dir)},
            )
            row = _read_metrics(run_dir / "zero_shot_metrics.json")
            results.append(
                {"variant": "zero-shot", "init": init, "fraction": None, **row, "seconds": time.time() - t0}
            )
        for fraction in fractions:
            t0 = time.time()
            frac = None if fraction >= 1.0 else float(fraction)
            n_items = len(localization_items(datalist, "training", frac, seed))
            # a fraction smaller than one batch would give no batch at all (drop_last): shrink the batch
            run_batch = max(1, min(batch_size, n_items))
            budget = budget_overrides(steps, n_items, run_batch, val_evals)
            run_dir = out / f"finetune_{init}_{int(round(fraction * 100))}pct"
            overrides = {
                **common,
                "from_scratch": scratch,
                "train_fraction": frac,
                **budget,
                "batch_size": run_batch,
                "output_dir": str(run_dir / "eval"),
                "ckpt_dir": str(run_dir / "models"),
            }
            _run_bundle(["base.json", "train.json"], overrides)
            _run_bundle(["base.json", "train.json", "evaluate.json"], overrides)
            row = _read_metrics(run_dir / "eval" / "metrics.json")
            results.append(
                {
                    "variant": "fine-tuned",
                    "init": init,
                    "fraction": fraction,
                    "train_items": n_items,
                    "epochs": budget["max_epochs"],
                    "steps": budget["max_epochs"] * (budget["epoch_length"] or n_items // run_batch),
                    **row,
                    "seconds": time.time() - t0,
                }
            )
    beats: dict[str, dict[str, bool | None]] = {}
    for fraction in fractions:
        pre = next(r for r in results if r["init"] == "pretrained" and r["fraction"] == fraction)
        scr = next(r for r in results if r["init"] == "scratch" and r["fraction"] == fraction)
        beats[f"{fraction:g}"] = {
            m: (None if pre[m] is None or scr[m] is None else bool(pre[m] > scr[m])) for m in METRICS
        }
    report = {
        "settings": {
            "pretrained_ckpt": ckpt,
            "datalist": str(datalist),
            "fractions": list(fractions),
            "model_size": model_size,
            "image_size": image_size,
            "steps": steps,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "seed": seed,
            "split": "test (threshold chosen on validation)",
            "total_seconds": time.time() - t_all,
        },
        "results": results,
        "pretrained_beats_scratch": beats,
    }
    (out / "localization_results.json").write_text(json.dumps(report, indent=1))
    (out / "localization_results.md").write_text(results_table(report))
    return report


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def results_table(report: dict[str, Any]) -> str:
    """Markdown table of a :func:`run_study` report."""
    s = report["settings"]
    lines = [
        f"Localization on `{s['datalist']}` (test split, threshold chosen on validation); "
        f"model `{s['model_size']}`, {s['image_size']} px, {s['steps']} steps per fine-tuning run.",
        "",
        "| variant | init | training fraction | pointing game | IoU | Dice | threshold | findings |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["results"]:
        frac = "-" if r["fraction"] is None else f"{r['fraction']:.0%}"
        lines.append(
            f"| {r['variant']} | {r['init']} | {frac} | {_fmt(r['pointing_game'])} | {_fmt(r['iou'])} | "
            f"{_fmt(r['dice'])} | {_fmt(r['threshold'])} | {r['n_findings']} |"
        )
    lines.append("")
    for frac, flags in report["pretrained_beats_scratch"].items():
        lines.append(
            f"- pre-trained beats scratch at {float(frac):.0%}: "
            + ", ".join(f"{k} {v}" for k, v in flags.items())
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line entry point (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pretrained_ckpt", required=True)
    p.add_argument("--dataset_dir", required=True)
    p.add_argument("--out_dir", required=True)
    p.add_argument("--fractions", type=float, nargs="+", default=[0.1, 1.0])
    p.add_argument("--model_size", default="tiny")
    p.add_argument("--image_size", type=int, default=128)
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--learning_rate", type=float, default=5e-4)
    p.add_argument("--num_workers", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    report = run_study(**vars(args))
    print(results_table(report))
    return report


if __name__ == "__main__":
    main()
