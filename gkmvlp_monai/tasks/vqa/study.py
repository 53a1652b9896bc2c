"""VQA data-efficiency study: the pre-trained GK-MVLP against the same network from scratch, at several
training fractions, with the same training budget, evaluated on the test split.

Every run is the ``gkmvlp_vqa`` bundle itself (``train.json``, then ``train.json`` + ``evaluate.json``)
with overrides, so the figures are what the documented commands give. The budget is a number of optimizer
steps (``steps``, the same for every run) or, when ``epochs`` is given, that many epochs for every run.

Usage::

    python -m gkmvlp_monai.tasks.vqa.study --pretrained_ckpt bundles/gkmvlp_pretrain/models/model.pt \\
        --dataset_dir data/iu-synth --out_dir eval/vqa_study --model_size tiny --image_size 64 --steps 60
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
    pretrained_ckpt: str,
    dataset_dir: str,
    out_dir: str,
    fractions: Sequence[float] = (0.1, 1.0),
    model_size: str = "tiny",
    image_size: int = 64,
    epochs: int | None = None,
    steps: int = 60,
    batch_size: int = 32,
    questions_per_image: int = 4,
    learning_rate: float = 3e-4,
    seed: int = 0,
    num_workers: int = 0,
    generate: str = "open",
    val_max_items: int | None = 256,
    mlflow: bool = False,
) -> dict[str, Any]:
    """Train and evaluate pre-trained and from-scratch VQA models at each training fraction.

    Args:
        pretrained_ckpt: GK-MVLP pre-training checkpoint (``models/model.pt`` of the pretrain bundle).
        dataset_dir: folder of ``datalist.json`` (iu-synth or a VQA datalist).
        out_dir: output folder (runs, shared image cache, ``vqa_results.json``, ``vqa_results.md``).
        fractions: training fractions (of the training images).
        model_size: network size of the pre-training checkpoint.
        image_size: input size of the pre-training checkpoint.
        epochs: if given, every run trains this many epochs (``steps`` is ignored).
        steps: optimizer steps of every run (the budget shared by all runs) when ``epochs`` is ``None``.
        batch_size: training batch size (questions).
        questions_per_image: up to this many questions of one picture next to each other in a batch, the
            picture encoded once (the bundle's ``questions_per_image``; 1: every question its own draw).
        learning_rate: peak learning rate (warm-up then cosine).
        seed: seed of data order, subsets and initialisation.
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
    if not Path(pretrained_ckpt).is_file():
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
        for init in ("pretrained", "scratch"):
            root = out / "runs" / f"{init}_{round(fraction * 100)}pct"
            (root / "configs").mkdir(parents=True, exist_ok=True)
            over = {
                **common,
                "bundle_root": str(root),
                "pretrained_ckpt": str(Path(pretrained_ckpt).resolve()),
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
    (out / "vqa_results.json").write_text(json.dumps(results, indent=1))
    (out / "vqa_results.md").write_text(results_table(results))
    return results


def results_table(results: dict[str, Any]) -> str:
    """Markdown table of a study's results (accuracies in %)."""

    def pct(v: Any) -> str:
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"

    lines = [
        "| init | train fraction | steps | closed acc | open acc (classifier) | open acc (generation) |"
        " overall acc (classifier) | overall acc (hybrid) | test answers in vocabulary |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results["runs"]:
        m = r["metrics"]
        lines.append(
            f"| {r['init']} | {100 * r['fraction']:g} % | {r['steps']} | {pct(m['closed_acc'])} | "
            f"{pct(m['open_acc'])} | {pct(m['hybrid_open_acc'])} | {pct(m['overall_acc'])} | "
            f"{pct(m['hybrid_overall_acc'])} | {pct(r['answer_coverage'])} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import fire

    fire.Fire(run_study)
