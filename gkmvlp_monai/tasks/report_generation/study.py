"""Report generation data-efficiency study: the pre-trained GK-MVLP model against the same network trained
from scratch with the same budget, at fractions of the training split, scored on the test split.

Each run is the ``gkmvlp_report_generation`` bundle itself (``configs/train.json``, then
``configs/train.json`` + ``configs/evaluate.json``), driven in-process through ``ConfigWorkflow`` with
overrides, so the study measures exactly what the bundle's documented commands do. The study runner
(:mod:`gkmvlp_monai.studies.runner`) calls :func:`run_study` and turns its result into rows with
:func:`to_rows`::

    python -m gkmvlp_monai.studies --task report_generation \\
        --pretrained bundles/gkmvlp_pretrain/models/model.pt \\
        --dataset-dir data/iu-synth --out runs/studies --set model_size=tiny --set image_size=64
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

BUNDLE = Path(__file__).resolve().parents[3] / "bundles" / "gkmvlp_report_generation"
INITS = ("pretrained", "scratch")
#: the one variant of this study: every run is fine-tuned
VARIANT = "fine-tuned"
#: what the summary shows of this study: its table's metrics and the plotted figure (variant, metric, label)
SUMMARY_METRICS = ("bleu1", "bleu4", "meteor", "rouge_l", "cider", "ce_micro_f1", "ce_macro_f1")
SUMMARY_FIGURE = (VARIANT, "ce_micro_f1", "clinical F1 (micro)")


def _workflow(config: str | list[str], workflow_type: str, **overrides: Any):
    from monai.bundle import ConfigWorkflow

    files = [str(BUNDLE / "configs" / c) for c in ([config] if isinstance(config, str) else config)]
    wf = ConfigWorkflow(
        config_file=files if len(files) > 1 else files[0],
        meta_file=str(BUNDLE / "configs" / "metadata.json"),
        logging_file=str(BUNDLE / "configs" / "logging.conf"),
        workflow_type=workflow_type,
        **overrides,
    )
    wf.initialize()
    return wf


def run_one(
    init: str,
    fraction: float,
    pretrained_ckpt: str | None,
    datalist_file: str,
    run_dir: Path,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Fine-tune one model (``init`` ``"pretrained"`` or ``"scratch"``) on ``fraction`` of the training
    split with the bundle's train config, then evaluate it on the test split; returns its test metrics."""
    common = {
        "bundle_root": str(BUNDLE),
        "datalist_file": datalist_file,
        "ckpt_dir": str(run_dir / "models"),
        "output_dir": str(run_dir / "eval"),
        "cache_dir": str(run_dir.parent / "cache"),
        "mlflow": False,
        **{k: v for k, v in settings.items() if k not in ("test_max_items",)},
    }
    ckpt = pretrained_ckpt if init == "pretrained" else None
    t0 = time.time()
    train = _workflow(
        ["base.json", "train.json"],
        "train",
        pretrained_ckpt=ckpt,
        train_fraction=None if fraction >= 1 else fraction,
        **common,
    )
    n_train = len(train.parser.get_parsed_content("train#items"))
    train.run()
    train.finalize()
    t1 = time.time()
    evaluate = _workflow(
        ["base.json", "train.json", "evaluate.json"],
        "train",
        **{**common, "pretrained_ckpt": None, "validate#max_items": settings.get("test_max_items")},
    )
    evaluate.run()
    evaluate.finalize()
    t2 = time.time()
    doc = json.loads((run_dir / "eval" / "metrics.json").read_text())
    metrics = {k[len("val_") :] if k.startswith("val_") else k: v for k, v in doc["metrics"].items()}
    return {
        "init": init,
        "fraction": fraction,
        "train_items": n_train,
        "updates": settings["max_epochs"]
        * (settings.get("epoch_length") or n_train // settings["batch_size"]),
        "metrics": metrics,
        "meteor_status": doc.get("meteor_status"),
        "train_seconds": round(t1 - t0, 1),
        "eval_seconds": round(t2 - t1, 1),
    }


def run_study(
    pretrained_ckpt: str | None,
    dataset_dir: str,
    out_dir: str,
    fractions: Sequence[float] = (0.1, 1.0),
    steps: int | None = None,
    seed: int = 0,
    inits: Sequence[str] = INITS,
    *,
    model_size: str = "tiny",
    image_size: int = 64,
    epochs: int = 4,
    batch_size: int = 8,
    learning_rate: float = 3e-4,
    max_length: int = 31,
    num_beams: int = 1,
    test_max_items: int | None = None,
    num_threads: int | None = 1,
    datalist_file: str | None = None,
) -> dict[str, Any]:
    """Fine-tune pre-trained vs from-scratch at each training fraction and evaluate on the test split.

    Both initialisations get the same budget (``epochs`` over the fraction's items, or ``steps`` updates
    whatever the fraction; same batch size, learning rate and schedule, same seed). Validation runs once,
    after the last epoch (on 8 validation items; it only picks ``models/model.pt``), so ``model.pt`` is
    the final model.

    Args:
        pretrained_ckpt: GK-MVLP pre-training checkpoint (``models/model.pt`` of ``gkmvlp_pretrain``);
            ``None`` only when ``inits`` has no ``"pretrained"``.
        dataset_dir: data set folder holding ``datalist.json``.
        out_dir: study folder (runs and cache).
        fractions: training fractions.
        steps: if given, optimizer updates of every run whatever its fraction
            (:func:`~gkmvlp_monai.engine.budget.step_budget`: whole epochs over a small fraction, part of
            one epoch over a large one); ``epochs`` is then ignored.
        seed: seed of the runs and of the fraction subsets.
        inits: initialisations to run, of ``("pretrained", "scratch")``.
        model_size: network size (the checkpoint's).
        image_size: input size (the checkpoint's).
        epochs: epochs per run (when ``steps`` is ``None``).
        batch_size: training batch size.
        learning_rate: peak learning rate (warm-up cosine schedule).
        max_length: generated tokens at most.
        num_beams: 1 greedy, else beam search.
        test_max_items: score only the first N test items (``None``: all).
        num_threads: torch CPU threads (1 is fastest on a shared CPU).
        datalist_file: datalist (default ``dataset_dir/datalist.json``).

    Returns:
        ``{"settings", "runs": [{"init", "fraction", "train_items", "updates", "metrics", ...}], "seconds"}``.

    Raises:
        FileNotFoundError: the datalist or the pre-trained checkpoint is missing.
    """
    datalist = Path(datalist_file or Path(dataset_dir) / "datalist.json").resolve()
    if not datalist.is_file():
        raise FileNotFoundError(f"datalist {datalist} not found")
    if "pretrained" in inits and (pretrained_ckpt is None or not Path(pretrained_ckpt).is_file()):
        raise FileNotFoundError(f"pre-trained checkpoint {pretrained_ckpt} not found")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    settings = {
        "model_size": model_size,
        "image_size": image_size,
        "max_epochs": epochs,
        "batch_size": batch_size,
        "val_batch_size": 32,
        "learning_rate": learning_rate,
        "generation#max_length": max_length,
        "generation#num_beams": num_beams,
        "val_interval": epochs,
        "val_max_items": 8,
        "num_workers": 0,
        "cache": "disk",
        "num_threads": num_threads,
        "seed": seed,
        "ckpt_interval": 10**6,
        "log_every": 10**6,
        "test_max_items": test_max_items,
    }
    runs = []
    t0 = time.time()
    for fraction in fractions:
        from gkmvlp_monai.engine.budget import budget_overrides
        from gkmvlp_monai.tasks.report_generation.engine import training_items

        n_items = len(training_items(str(datalist), None if fraction >= 1 else fraction, seed))
        # a fraction smaller than one batch would give no batch at all (drop_last): shrink the batch, as
        # the classification and localization studies do
        run_batch = max(1, min(batch_size, n_items))
        budget: dict[str, Any] = {"batch_size": run_batch}
        if steps is not None:
            budget.update(budget_overrides(steps, n_items, run_batch))  # one validation, after the last epoch
        for init in (i for i in INITS if i in inits):
            run_dir = out / f"{init}_{fraction:g}"
            logger.info("study run: %s, %g of the training split", init, fraction)
            runs.append(
                run_one(
                    init,
                    fraction,
                    None if pretrained_ckpt is None else str(Path(pretrained_ckpt).resolve()),
                    str(datalist),
                    run_dir,
                    {**settings, **budget},
                )
            )
    results = {
        "settings": {
            **settings,
            **({"max_epochs": None, "val_interval": None} if steps is not None else {}),  # per run: "updates"
            "steps": steps,
            "fractions": list(fractions),
            "pretrained_ckpt": pretrained_ckpt,
            "datalist": str(datalist),
        },
        "runs": runs,
        "seconds": round(time.time() - t0, 1),
    }
    return results


def to_rows(result: dict[str, Any], **fields: Any) -> list[dict[str, Any]]:
    """One row per figure of a :func:`run_study` result: every test metric of every run.

    Args:
        result: what :func:`run_study` returned.
        fields: the fields every row shares (the runner's ``task``, ``method``, ``seed``, ``command``,
            ``commit``).

    Returns:
        ``{**fields, "variant", "init", "fraction", "metric", "value"}`` per metric of each run.
    """
    return [
        {
            **fields,
            "variant": VARIANT,
            "init": run["init"],
            "fraction": run["fraction"],
            "metric": metric,
            "value": value,
        }
        for run in result["runs"]
        for metric, value in sorted(run["metrics"].items())
    ]
