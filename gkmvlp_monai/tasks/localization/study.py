"""Localization study: pre-trained vs from-scratch, zero-shot and fine-tuned, at several data fractions.

Runs the ``bundles/gkmvlp_localization`` configs themselves (so the figures come from the documented
bundle path), with the same network and the same optimizer-step budget for both initialisations:

- zero-shot (``train.json + evaluate.json + zero_shot.json``): GK attention heat maps of the pre-trained
  network, and of the same network untrained (the chance reference of "from scratch");
- fine-tuned (``train.json`` then ``train.json + evaluate.json``) at each training fraction, encoder
  initialised from the pre-trained checkpoint or at random.

Every evaluation chooses its threshold on the validation split and reports the test split. Writes
``<out_dir>/localization_results.json`` (``bench/pretrain_ablation.py`` reads it). The study runner
(:mod:`gkmvlp_monai.studies.runner`) calls :func:`run_study` and turns its result into rows with
:func:`to_rows`::

    python -m gkmvlp_monai.studies --task localization \\
        --pretrained bundles/gkmvlp_pretrain/models/model.pt \\
        --dataset-dir data/iu-synth --out runs/studies --steps 120 --set model_size=tiny --set image_size=128
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gkmvlp_monai.core.paths import REPO_ROOT

__all__ = ["run_study", "to_rows"]

logger = logging.getLogger(__name__)

BUNDLE_DIR = REPO_ROOT / "bundles" / "gkmvlp_localization"
METRICS = ("pointing_game", "iou", "dice")
INITS = ("pretrained", "scratch")
#: what the summary shows of this study: its table's metrics and the plotted figure (variant, metric, label)
SUMMARY_METRICS = (*METRICS, "threshold")
SUMMARY_FIGURE = ("fine-tuned", "dice", "fine-tuned Dice")


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
    pretrained_ckpt: str | Path | None,
    dataset_dir: str | Path,
    out_dir: str | Path,
    fractions: Sequence[float] = (0.1, 1.0),
    steps: int = 120,
    seed: int = 0,
    inits: Sequence[str] = INITS,
    *,
    model_size: str = "tiny",
    image_size: int = 128,
    batch_size: int = 8,
    learning_rate: float = 5e-4,
    val_evals: int = 2,
    target_findings: Sequence[str] | None = None,
    num_workers: int = 0,
    zero_shot: bool = True,
) -> dict[str, Any]:
    """Run the study and write its results.

    Args:
        pretrained_ckpt: GK-MVLP pre-training checkpoint (``models/model.pt`` of the pretrain bundle);
            ``None`` only when ``inits`` has no ``"pretrained"``.
        dataset_dir: folder of ``datalist.json`` (iu-synth).
        out_dir: output folder (one sub-folder per run, ``cache/`` shared).
        fractions: training fractions (1.0 = the whole training split).
        steps: optimizer steps of every fine-tuning run (same budget for both initialisations and all
            fractions: smaller fractions get more epochs, whole epochs rounded up; a fraction with more
            than ``steps`` batches trains ``steps`` of them).
        seed: seed of every run and of the data fractions.
        inits: initialisations to run, of ``("pretrained", "scratch")``.
        model_size: GK-MVLP size the checkpoint was trained with.
        image_size: input size.
        batch_size: training batch size.
        learning_rate: AdamW learning rate.
        val_evals: validations per fine-tuning run (best checkpoint by validation Dice at 0.5).
        target_findings: override the bundle's target findings.
        num_workers: DataLoader workers.
        zero_shot: also evaluate zero-shot heat maps.

    Returns:
        ``{"settings": ..., "results": [{"variant", "init", "fraction", pointing_game, iou, dice,
        threshold, n_findings, seconds}], "pretrained_beats_scratch": {fraction: {metric: bool}}}``
        (the comparison where both initialisations ran).

    Raises:
        FileNotFoundError: the checkpoint is missing.
    """
    from gkmvlp_monai.engine.budget import budget_overrides
    from gkmvlp_monai.tasks.localization.engine import localization_items

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    datalist = Path(dataset_dir).resolve() / "datalist.json"
    ckpt = None if pretrained_ckpt is None else str(Path(pretrained_ckpt).resolve())
    if "pretrained" in inits and (ckpt is None or not Path(ckpt).is_file()):
        raise FileNotFoundError(f"pre-trained checkpoint {pretrained_ckpt} not found")
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
    if ckpt is not None:  # a scratch run never loads it (``from_scratch``); without one the default stays
        common["pretrained_ckpt"] = ckpt
    scratch_of = {"pretrained": False, "scratch": True}
    t_all = time.time()
    for init, scratch in ((i, flag) for i, flag in scratch_of.items() if i in inits):
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
    compared = fractions if set(INITS) <= set(inits) else ()  # the verdict needs both initialisations
    for fraction in compared:
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
    return report


def to_rows(report: dict[str, Any], **fields: Any) -> list[dict[str, Any]]:
    """One row per figure of a :func:`run_study` report: pointing game, IoU, Dice, the threshold chosen
    on validation and the number of findings scored, per run.

    Args:
        report: what :func:`run_study` returned.
        fields: the fields every row shares (the runner's ``task``, ``method``, ``seed``, ``command``,
            ``commit``).

    Returns:
        ``{**fields, "variant", "init", "fraction", "metric", "value"}`` per figure (zero-shot:
        ``fraction`` ``None``, no training data).
    """
    return [
        {
            **fields,
            "variant": r["variant"],
            "init": r["init"],
            "fraction": r["fraction"],
            "metric": metric,
            "value": r[metric],
        }
        for r in report["results"]
        for metric in (*METRICS, "threshold", "n_findings")
    ]
