"""Classification study: pre-trained GK-MVLP against the same network from scratch, on one data set.

For every data fraction, every mode (linear probe, fine-tuning) and each initialisation (pre-trained
checkpoint, random), the ``gkmvlp_classification`` bundle is trained and evaluated on the test split
(thresholds chosen on the validation split); zero-shot (no training) is scored for each initialisation.
Runs go in-process through ``monai.bundle.ConfigWorkflow`` with the bundle's own configs, so the figures
are exactly what ``python -m monai.bundle run`` gives with the same overrides.

The study runner (:mod:`gkmvlp_monai.studies.runner`) calls :func:`run_study` and turns its result into
rows with :func:`to_rows`::

    python -m gkmvlp_monai.studies --task classification \\
        --pretrained bundles/gkmvlp_pretrain/models/model.pt \\
        --dataset-dir data/iu-synth --out runs/studies --set model_size=small --set image_size=128
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gkmvlp_monai.core.paths import REPO_ROOT

logger = logging.getLogger(__name__)

BUNDLE = REPO_ROOT / "bundles" / "gkmvlp_classification"
MODES = ("linear_probe", "finetune")
INITS = ("pretrained", "scratch")
#: what the summary shows of this study: its table's metrics and the plotted figure (variant, metric, label)
SUMMARY_METRICS = ("macro_AUC", "macro_F1", "mean_accuracy")
SUMMARY_FIGURE = ("finetune", "macro_AUC", "fine-tune macro AUC")

__all__ = ["run_study", "to_rows"]


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


def run_study(
    pretrained_ckpt: str | None,
    dataset_dir: str,
    out_dir: str,
    fractions: Sequence[float] = (0.1, 1.0),
    steps: int | None = None,
    seed: int = 0,
    inits: Sequence[str] = INITS,
    *,
    modes: Sequence[str] = MODES,
    model_size: str = "small",
    image_size: int = 128,
    epochs: int = 3,
    batch_size: int = 16,
    num_workers: int = 0,
    zero_shot: bool = True,
    extra_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train and evaluate the classification bundle for each initialisation at each fraction and mode.

    Every run gets the same budget: ``epochs`` over its fraction or, when ``steps`` is given, that many
    optimizer updates whatever the fraction (whole epochs, rounded up, over a small fraction; part of one
    shuffled epoch over a large one), with the same batch size and schedule. The images are decoded and
    resized once into ``<out_dir>/cache`` and shared by all runs.

    Args:
        pretrained_ckpt: GK-MVLP pre-training checkpoint (``models/model.pt`` of the pretrain bundle);
            ``None`` only when ``inits`` has no ``"pretrained"``.
        dataset_dir: folder holding ``datalist.json`` (with ``training``/``validation``/``test``).
        out_dir: output folder (runs, cache).
        fractions: training-data fractions.
        steps: optimizer updates of every training run (replaces ``epochs`` when given).
        seed: seed of every run.
        inits: initialisations to run, of ``("pretrained", "scratch")``.
        modes: ``linear_probe`` and/or ``finetune``.
        model_size: GK-MVLP size of the checkpoint.
        image_size: input size (the checkpoint's ``image_size`` for zero-shot to be meaningful).
        epochs: epochs per training run.
        batch_size: training batch size.
        num_workers: data-loader workers.
        zero_shot: also score zero-shot (pre-trained and untrained network).
        extra_overrides: more bundle overrides for every run (e.g. ``{"learning_rate": 3e-4}``).

    Returns:
        ``{"settings": {...}, "runs": {"<mode>/<init>/<p>pct" or "zero_shot/<init>": metrics.json}}``,
        each run also naming its ``variant`` (mode or ``zero_shot``), ``init`` and ``fraction``.

    Raises:
        FileNotFoundError: the checkpoint or the datalist is missing.
        ValueError: an unknown mode.
    """
    ckpt = None if pretrained_ckpt is None else Path(pretrained_ckpt).resolve()
    if "pretrained" in inits and (ckpt is None or not ckpt.is_file()):
        raise FileNotFoundError(f"pre-trained checkpoint {pretrained_ckpt} not found")
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
        "pretrained_ckpt": None if ckpt is None else str(ckpt),
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
    paths = {"pretrained": None if ckpt is None else str(ckpt), "scratch": None}
    paths = {init: path for init, path in paths.items() if init in inits}
    for f in fractions:
        for mode in modes:
            for init, path in paths.items():
                key = f"{mode}/{init}/{round(f * 100):g}pct"
                logger.info("study run %s", key)
                run = {**common, "mode": mode, "fraction": float(f), "pretrained_ckpt": path}
                if steps is not None:
                    run.update(_step_budget(str(datalist), float(f), seed, batch_size, steps))
                result = _train_and_evaluate(run, out / key.replace("/", "_"), False)
                results["runs"][key] = {**result, "variant": mode, "init": init, "fraction": float(f)}
    if zero_shot:
        for init, path in paths.items():
            key = f"zero_shot/{init}"
            run = {**common, "pretrained_ckpt": path}
            result = _train_and_evaluate(run, out / key.replace("/", "_"), True)
            results["runs"][key] = {**result, "variant": "zero_shot", "init": init, "fraction": None}
    settings["seconds"] = round(time.time() - t0, 1)
    logger.info("classification study done in %.0f s", settings["seconds"])
    return results


def to_rows(result: dict[str, Any], **fields: Any) -> list[dict[str, Any]]:
    """One row per figure of a :func:`run_study` result: every test metric of every run.

    Args:
        result: what :func:`run_study` returned.
        fields: the fields every row shares (the runner's ``task``, ``method``, ``seed``, ``command``,
            ``commit``).

    Returns:
        ``{**fields, "variant", "init", "fraction", "metric", "value"}`` per metric of each run (zero-shot:
        ``fraction`` ``None``, no training data).
    """
    return [
        {
            **fields,
            "variant": run["variant"],
            "init": run["init"],
            "fraction": run["fraction"],
            "metric": metric,
            "value": value,
        }
        for run in result["runs"].values()
        for metric, value in sorted(run["metrics"].items())
    ]
