"""VQA data-efficiency study: the pre-trained GK-MVLP against the same network from scratch, at several
training fractions, with the same training budget, evaluated on the test split.

Every run is the ``gkmvlp_vqa`` bundle itself (``train.json``, then ``train.json`` + ``evaluate.json``)
with overrides, so the figures are what the documented commands give. The budget is a number of optimizer
steps (``steps``, the same for every run) or, when ``epochs`` is given, that many epochs for every run.
The study runner (:mod:`gkmvlp_monai.studies.runner`) calls :func:`run_study` and turns its result into
rows with :func:`to_rows`::

    python -m gkmvlp_monai.studies --task vqa \\
        --pretrained bundles/gkmvlp_pretrain/models/model.pt \\
        --dataset-dir data/iu-synth --out runs/studies --steps 60 --set model_size=tiny --set image_size=64
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BUNDLE = Path(__file__).resolve().parents[3] / "bundles" / "gkmvlp_vqa"
_FIGURES = ("closed_acc", "open_acc", "hybrid_open_acc", "overall_acc", "hybrid_overall_acc")
INITS = ("pretrained", "scratch")
#: the answerers scored, as row variants: (variant, {row metric: figure of the run}); the classifier
#: answers every question from the answer vocabulary (``answer_coverage``: the test answers it holds), the
#: hybrid answers closed questions with the classifier and open ones by generation
VARIANTS = (
    (
        "classifier",
        {
            "closed_acc": "closed_acc",
            "open_acc": "open_acc",
            "overall_acc": "overall_acc",
            "answer_coverage": "answer_coverage",
        },
    ),
    ("hybrid", {"open_acc": "hybrid_open_acc", "overall_acc": "hybrid_overall_acc"}),
)
#: what the summary shows of this study: its table's metrics and the plotted figure (variant, metric, label)
SUMMARY_METRICS = ("closed_acc", "open_acc", "overall_acc", "answer_coverage")
SUMMARY_FIGURE = ("classifier", "overall_acc", "overall accuracy")


def _run_bundle(configs: Sequence[str], overrides: dict[str, Any]) -> None:
    from monai.bundle import ConfigWorkflow

    wf = ConfigWorkflow(
        config_file=[str(BUNDLE / "configs" / c) for c in configs],
        meta_file=str(BUNDLE / "configs" / "metadata.json"),
        logging_file=str(BUNDLE / "configs" / "logging.conf"),
        workflow_type=None,
        **overrides,
    )
    wf.initialize()
    wf.run()
    wf.finalize()


def _num_batches(dataset_dir: str, fraction: float, batch_size: int, seed: int) -> int:
    from gkmvlp_monai.tasks.vqa.data import load_vqa_split

    n = len(load_vqa_split(str(Path(dataset_dir) / "datalist.json"), "training", fraction, seed))
    return max(1, math.ceil(n / batch_size))


def run_study(
    pretrained_ckpt: str | None,
    dataset_dir: str,
    out_dir: str,
    fractions: Sequence[float] = (0.1, 1.0),
    steps: int = 60,
    seed: int = 0,
    inits: Sequence[str] = INITS,
    *,
    model_size: str = "tiny",
    image_size: int = 64,
    epochs: int | None = None,
    batch_size: int = 32,
    questions_per_image: int = 4,
    learning_rate: float = 3e-4,
    num_workers: int = 0,
    generate: str = "open",
    val_max_items: int | None = 256,
    mlflow: bool = False,
) -> dict[str, Any]:
    """Train and evaluate pre-trained and from-scratch VQA models at each training fraction.

    Args:
        pretrained_ckpt: GK-MVLP pre-training checkpoint (``models/model.pt`` of the pretrain bundle);
            ``None`` only when ``inits`` has no ``"pretrained"``.
        dataset_dir: folder of ``datalist.json`` (iu-synth or a VQA datalist).
        out_dir: output folder (runs, shared image cache).
        fractions: training fractions (of the training images).
        steps: optimizer steps of every run (the budget shared by all runs) when ``epochs`` is ``None``.
        seed: seed of data order, subsets and initialisation.
        inits: initialisations to run, of ``("pretrained", "scratch")``.
        model_size: network size of the pre-training checkpoint.
        image_size: input size of the pre-training checkpoint.
        epochs: if given, every run trains this many epochs (``steps`` is ignored).
        batch_size: training batch size (questions).
        questions_per_image: up to this many questions of one picture next to each other in a batch, the
            picture encoded once (the bundle's ``questions_per_image``; 1: every question its own draw).
        learning_rate: peak learning rate (warm-up then cosine).
        num_workers: data-loader workers.
        generate: answers generated at evaluation (``"open"``, ``"all"`` or ``"none"``).
        val_max_items: validation questions scored during training (the first ones of the split; ``None``:
            all). Each run validates once, after its last epoch, which only writes ``models/model.pt`` (the
            final model), so a few suffice; the test evaluation always scores the whole test split.
        mlflow: log every run to MLflow (``<run>/eval/mlruns.db``).

    Returns:
        the results: ``{"setting": {...}, "runs": [{"init", "fraction", "metrics", ...}, ...]}``.

    Raises:
        FileNotFoundError: the checkpoint or the datalist is missing.
    """
    if "pretrained" in inits and (pretrained_ckpt is None or not Path(pretrained_ckpt).is_file()):
        raise FileNotFoundError(f"pre-trained checkpoint {pretrained_ckpt} not found")
    if not (Path(dataset_dir) / "datalist.json").is_file():
        raise FileNotFoundError(f"{dataset_dir}/datalist.json not found")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    common = {
        "dataset_dir": str(Path(dataset_dir).resolve()),
        "model_size": model_size,
        "image_size": image_size,
        "batch_size": batch_size,
        "questions_per_image": questions_per_image,
        "learning_rate": learning_rate,
        "seed": seed,
        "num_workers": num_workers,
        "cache": "disk",
        "cache_dir": str(out / "cache"),
        "val_max_items": val_max_items,
        "mlflow": mlflow,
    }
    runs = []
    for fraction in fractions:
        nb = _num_batches(dataset_dir, fraction, batch_size, seed)
        if epochs is not None:
            max_epochs, epoch_length = int(epochs), None
        else:
            # whole epochs when the data allow, else shorter epochs (the sampler reshuffles each one), so that
            # every run makes max_epochs * epoch_length == steps updates when nb divides evenly
            max_epochs = math.ceil(steps / nb)
            epoch_length = math.ceil(steps / max_epochs)
        for init in (i for i in INITS if i in inits):
            root = out / "runs" / f"{init}_{round(fraction * 100)}pct"
            (root / "configs").mkdir(parents=True, exist_ok=True)
            over = {
                **common,
                "bundle_root": str(root),
                # a scratch run never loads it (``from_scratch``); without one the bundle default stays
                **(
                    {}
                    if pretrained_ckpt is None
                    else {"pretrained_ckpt": str(Path(pretrained_ckpt).resolve())}
                ),
                "from_scratch": init == "scratch",  # the bundle's switch (same network, no weights loaded)
                "train_fraction": float(fraction),
                "max_epochs": max_epochs,
                "epoch_length": epoch_length,
                "val_interval": max_epochs,
            }
            t0 = time.time()
            _run_bundle(["base.json", "train.json"], over)
            t1 = time.time()
            _run_bundle(["base.json", "train.json", "evaluate.json"], {**over, "validate#generate": generate})
            t2 = time.time()
            doc = json.loads((root / "eval" / "metrics.json").read_text())
            runs.append(
                {
                    "init": init,
                    "fraction": float(fraction),
                    "steps": max_epochs * (epoch_length or nb),
                    "epochs": max_epochs
                    if epoch_length in (None, nb)
                    else round(max_epochs * epoch_length / nb, 2),
                    "train_s": round(t1 - t0, 1),
                    "eval_s": round(t2 - t1, 1),
                    "answer_coverage": doc.get("answer_coverage"),
                    "metrics": {k: doc["metrics"].get(k) for k in _FIGURES},
                }
            )
    results = {
        "setting": {
            "pretrained_ckpt": str(pretrained_ckpt),
            "fractions": list(fractions),
            "epochs": epochs,
            "steps": None if epochs is not None else steps,
            **{k: v for k, v in common.items() if k not in ("cache", "cache_dir")},
        },
        "runs": runs,
    }
    return results


def to_rows(result: dict[str, Any], **fields: Any) -> list[dict[str, Any]]:
    """One row per figure of a :func:`run_study` result: the accuracies of each answerer
    (:data:`VARIANTS`) and the answer vocabulary's coverage of the test answers, per run.

    Args:
        result: what :func:`run_study` returned.
        fields: the fields every row shares (the runner's ``task``, ``method``, ``seed``, ``command``,
            ``commit``).

    Returns:
        ``{**fields, "variant", "init", "fraction", "metric", "value"}`` per figure.
    """
    return [
        {
            **fields,
            "variant": variant,
            "init": run["init"],
            "fraction": run["fraction"],
            "metric": metric,
            "value": {**run["metrics"], "answer_coverage": run["answer_coverage"]}[figure],
        }
        for run in result["runs"]
        for variant, figures in VARIANTS
        for metric, figure in figures.items()
    ]
