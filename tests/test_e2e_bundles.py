"""End-to-end tier: each bundle run by subprocess exactly as its model card tells a user to, on tiny settings.

For each of the six bundles: ``python -m monai.bundle run`` of ``train.json`` (then ``--resume True`` to a
second epoch for classification, report generation, VQA and cxr_anatomy; pre-training's resume has its
own tests in ``test_pretrain_bundle.py``), then the evaluation (and ``zero_shot.json`` for classification
and localization), then ``inference.json`` on the trained checkpoint, then
``ckpt_export`` of the inference network, whose TorchScript output is compared with the eager network
built from the same config and checkpoint. Every checkpoint and output goes to ``tmp_path``, never into
the repository. Each subprocess step prints ``[e2e] <bundle> <step>: <seconds> s``; run with ``-s`` to see
them. The demo's quick run is ``tests/test_demo_quick.py``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from bundle_helpers import REPO, RESUME_MARK, bundle_cmd, mark_resume_point, overrides, resumed_steps

pytestmark = pytest.mark.slow

TRAIN = "['configs/base.json','configs/train.json']"
EVALUATE = "['configs/base.json','configs/train.json','configs/evaluate.json']"
# every step's common settings: the smallest networks, 64 px, data in the main process, no MLflow
TINY = dict(model_size="tiny", image_size=64, num_workers=0, mlflow=False)


def _run_outputs() -> set[Path]:
    """Files under the bundle folders other than their configs and model cards (what a run could write)."""
    return {
        p
        for p in (REPO / "bundles").rglob("*")
        if p.is_file()
        and p.relative_to(REPO / "bundles").parts[1] not in ("configs", "docs")
        and "__pycache__" not in p.parts
        and p.name != ".gitkeep"
    }


@pytest.fixture(autouse=True)
def _nothing_written_into_the_repository():
    before = _run_outputs()
    yield
    assert _run_outputs() <= before, sorted(map(str, _run_outputs() - before))


def _run_args(tmp: Path, datalist: str, **kw: object) -> list[str]:
    """Overrides of a train/evaluate run: tiny settings, the datalist, outputs under ``tmp``."""
    settings = dict(TINY, cache="memory", batch_size=4, val_batch_size=8, ckpt_interval=2)
    settings.update(datalist_file=datalist, ckpt_dir=str(tmp / "models"), output_dir=str(tmp / "eval"))
    return overrides(**{**settings, **kw})


def _infer(bundle: str, tmp: Path, datalist: str, *extra: str, **kw: object) -> None:
    """``inference.json`` alone on the trained ``tmp/models``, writing to ``tmp/infer``."""
    settings = dict(model_size="tiny", image_size=64, num_workers=0, datalist_file=datalist)
    settings.update(ckpt_dir=str(tmp / "models"), output_dir=str(tmp / "infer"), **kw)
    _step(
        bundle,
        "inference",
        ["run", "--config_file", "configs/inference.json", *overrides(**settings), *extra],
    )


def _step(bundle: str, label: str, args: list[str]) -> str:
    return bundle_cmd(bundle, args, label=label, tail=3000)


def _metrics(path: Path, keys: tuple[str, ...]) -> dict:
    """The ``metrics`` of a ``MetricsJSONWriter`` file, every listed key present and finite."""
    doc = json.loads(path.read_text())
    values = doc["metrics"]
    for key in keys:
        assert isinstance(values.get(key), (int, float)) and math.isfinite(values[key]), (
            key,
            values.get(key),
        )
    assert all(v is None or math.isfinite(v) for v in values.values() if isinstance(v, (int, float)))
    return doc


def _trained_epochs(models: Path) -> int:
    """Epochs completed in ``checkpoint_final.pt`` (Ignite's state holds the iteration and epoch_length)."""
    return resumed_steps(models)[2]


def _train_and_resume(bundle: str, run: list[str], models: Path) -> str:
    """Train one epoch, then ``--resume True`` to two; check the second run continued the first one's
    saved state (its optimizer counts carry the mark) instead of starting again. Returns the first log."""
    log = _step(bundle, "train", ["run", "--config_file", TRAIN, *run, "--max_epochs", "1"])
    first = mark_resume_point(models)
    _step(
        bundle,
        "train --resume",
        ["run", "--config_file", TRAIN, *run, "--max_epochs", "2", "--resume", "True"],
    )
    steps, iterations, epochs = resumed_steps(models)
    assert (iterations, epochs) == (2 * first, 2)
    assert max(steps) == RESUME_MARK + 2 * first, steps
    return log


def _export_and_compare(
    bundle: str,
    tmp: Path,
    settings: dict,
    config_files: tuple[str, ...] = ("configs/inference.json",),
    net_id: str = "network_def",
    input_shape: tuple[int, ...] = (1, 1, 64, 64),
    cli_only: tuple[str, ...] = (),
    trace: bool = True,
) -> None:
    """``ckpt_export`` the trained ``models/model.pt`` as the model card does (traced, or with
    ``trace=False`` scripted: the model-zoo's default), then check that the TorchScript module gives the
    eager network's output (same config, same checkpoint) on one input."""
    from monai.bundle import ConfigParser

    ckpt, ts = tmp / "models" / "model.pt", tmp / "model.ts"
    config_arg = config_files[0] if len(config_files) == 1 else repr(list(config_files))
    _step(
        bundle,
        "ckpt_export",
        [
            "ckpt_export",
            net_id,
            "--filepath",
            str(ts),
            "--ckpt_file",
            str(ckpt),
            "--meta_file",
            "configs/metadata.json",
            "--config_file",
            config_arg,
            *(["--use_trace", "True", "--input_shape", str(list(input_shape))] if trace else []),
            *overrides(**settings),
            *cli_only,
        ],
    )
    bundle_dir = REPO / "bundles" / bundle
    parser = ConfigParser()
    parser.read_config([str(bundle_dir / f) for f in config_files])
    parser.update({"bundle_root": str(bundle_dir), **settings})
    torch.manual_seed(1234)  # a fresh init different from the export's: the weights must come from ckpt
    eager = parser.get_parsed_content(net_id)
    eager.load_state_dict(torch.load(ckpt, weights_only=True))
    eager.eval()
    x = torch.rand(input_shape, generator=torch.Generator().manual_seed(0))
    traced = torch.jit.load(str(ts))
    with torch.no_grad():
        torch.testing.assert_close(traced(x), eager(x), atol=1e-5, rtol=1e-4)


def test_pretrain(tmp_path, iu_synth_tiny):
    bundle = "gkmvlp_pretrain"
    models = tmp_path / "models"
    run = _run_args(tmp_path, iu_synth_tiny, max_epochs=1)
    # MLflow on, the default: the metric names must be ones MLflow accepts (no "@")
    with_mlflow = _run_args(tmp_path, iu_synth_tiny, max_epochs=1, mlflow=True)
    _step(bundle, "train", ["run", "--config_file", TRAIN, *with_mlflow])
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'eval' / 'mlruns.db'}")
    runs = client.search_runs([client.get_experiment_by_name(bundle).experiment_id])
    logged = runs[0].data.metrics
    assert {"i2t_R1", "t2i_R10", "zs_macro_AUC", "train_loss_itc"} <= set(logged), sorted(logged)
    assert runs[0].data.params["model_size"] == "tiny"
    for name in ("model.pt", "best_checkpoint.pt", "checkpoint_final.pt"):
        assert (models / name).is_file(), name
    assert list(models.glob("checkpoint_iteration=*.pt")), "no interval checkpoint"
    assert list((tmp_path / "eval" / "overlays").glob("*.png")), "no attention overlays"

    _step(bundle, "evaluate", ["run", "--config_file", EVALUATE, *run])
    doc = _metrics(tmp_path / "eval" / "metrics.json", ("i2t_R1", "t2i_R10", "val_loss_lm"))
    assert doc["split"] == "test" and "zs_macro_AUC" in doc["metrics"]

    _infer(bundle, tmp_path, iu_synth_tiny, batch_size=4)
    test_items = json.loads(Path(iu_synth_tiny).read_text())["test"]
    pred = json.loads((tmp_path / "infer" / "predictions.json").read_text())
    assert len(pred["images"]) == len(test_items) and pred["images"][0]["top_entities"]
    assert len(list((tmp_path / "infer").glob("*.npz"))) == len(test_items)

    _export_and_compare(bundle, tmp_path, dict(model_size="tiny", image_size=64))


def test_classification(tmp_path, chexpert_datalist, pretrained_tiny_ckpt):
    bundle = "gkmvlp_classification"
    models = tmp_path / "models"
    common = dict(model_size="tiny", image_size=64, mode="linear_probe", datalist_file=chexpert_datalist)
    run = _run_args(tmp_path, chexpert_datalist, mode="linear_probe", pretrained_ckpt=pretrained_tiny_ckpt)
    _train_and_resume(bundle, run, models)
    for name in ("model.pt", "best_checkpoint.pt", "checkpoint_final.pt"):
        assert (models / name).is_file(), name
    # linear probe: the trained model still carries the pre-trained encoder unchanged
    state = torch.load(models / "model.pt", weights_only=True)
    pre = torch.load(pretrained_tiny_ckpt, weights_only=True)
    enc = {k[len("image_encoder.") :]: v for k, v in pre.items() if k.startswith("image_encoder.")}
    assert enc and all(torch.equal(state["encoder." + k], v) for k, v in enc.items())

    _step(bundle, "evaluate", ["run", "--config_file", EVALUATE, *run])
    doc = _metrics(tmp_path / "eval" / "metrics.json", ("macro_AUC", "macro_F1", "mean_accuracy"))
    assert doc["split"] == "test" and doc["threshold_split"] == "validation"
    assert "Pneumothorax" in json.loads((tmp_path / "eval" / "thresholds.json").read_text())["fallback"]

    zero_shot = "['configs/base.json','configs/train.json','configs/evaluate.json','configs/zero_shot.json']"
    _step(bundle, "zero_shot", ["run", "--config_file", zero_shot, *run])
    doc = _metrics(tmp_path / "eval" / "zero_shot" / "metrics.json", ("macro_AUC",))
    assert doc["mode"] == "zero_shot"

    _infer(bundle, tmp_path, chexpert_datalist, batch_size=4, mode="linear_probe")
    rows = (tmp_path / "infer" / "predictions.csv").read_text().strip().splitlines()
    test_items = json.loads(Path(chexpert_datalist).read_text())["test"]
    assert len(rows) == 1 + len(test_items) and rows[0].startswith("image,No Finding")

    _export_and_compare(bundle, tmp_path, common, trace=False)


def test_localization(tmp_path, iu_synth_tiny, pretrained_tiny_ckpt):
    bundle = "gkmvlp_localization"
    models, out = tmp_path / "models", tmp_path / "eval"
    common = dict(model_size="tiny", image_size=64)
    run = _run_args(tmp_path, iu_synth_tiny, pretrained_ckpt=pretrained_tiny_ckpt, max_epochs=1)
    log = _step(bundle, "train", ["run", "--config_file", TRAIN, *run])
    assert f"tensors from {pretrained_tiny_ckpt}" in log  # the project's load_pretrained_weights report
    for name in ("model.pt", "best_checkpoint.pt", "checkpoint_final.pt"):
        assert (models / name).is_file(), name
    assert _trained_epochs(models) == 1

    _step(bundle, "evaluate", ["run", "--config_file", EVALUATE, *run])
    doc = _metrics(out / "metrics.json", ("test_dice",))
    assert doc["split"] == "test" and doc["threshold_chosen_on"] == "validation"
    assert list((out / "overlays").glob("*.png")), "no overlays"

    zero_shot = "['configs/base.json','configs/train.json','configs/evaluate.json','configs/zero_shot.json']"
    _step(bundle, "zero_shot", ["run", "--config_file", zero_shot, *run])
    _metrics(out / "zero_shot_metrics.json", ("test_dice",))
    assert list((out / "zero_shot_overlays").glob("*.png")), "no zero-shot overlays"

    to_infer = _run_args(tmp_path, iu_synth_tiny, output_dir=str(tmp_path / "infer"))
    _step(bundle, "inference", ["run", "--config_file", "configs/inference.json", *to_infer])
    n_test = len(json.loads(Path(iu_synth_tiny).read_text())["test"])
    # one PNG per (image, finding drawn or predicted), for the first num_overlays (8) images
    overlays = [p.stem.split("_", 3) for p in (tmp_path / "infer" / "inference_overlays").glob("*.png")]
    assert 0 < len({(it, b) for _, it, b, _ in overlays}) <= min(8, n_test), overlays
    infer_config = json.loads((REPO / "bundles" / bundle / "configs" / "inference.json").read_text())
    assert {finding for *_, finding in overlays} <= set(infer_config["target_findings"])

    _export_and_compare(bundle, tmp_path, common, trace=False)


def test_report_generation(tmp_path, iu_synth_tiny):
    bundle = "gkmvlp_report_generation"
    models = tmp_path / "models"
    run = _run_args(tmp_path, iu_synth_tiny, num_threads=1, from_scratch=True, log_every=1)
    run += ["--generation#max_length", "8"]
    _train_and_resume(bundle, run, models)
    state = torch.load(models / "model.pt", weights_only=True)
    assert any(k.startswith("decoder.") for k in state) and not any(k.startswith("fusion.") for k in state)
    assert json.loads((tmp_path / "eval" / "val_reports" / "generated_reports.json").read_text())

    _step(bundle, "evaluate", ["run", "--config_file", EVALUATE, *run])
    keys = ("val_bleu1", "val_bleu4", "val_rouge_l", "val_cider", "val_ce_micro_f1", "val_ce_macro_f1")
    doc = _metrics(tmp_path / "eval" / "metrics.json", keys)
    assert doc["split"] == "test"
    assert doc["meteor_status"] == "available" or doc["metrics"]["val_meteor"] is None
    rows = json.loads((tmp_path / "eval" / "test_reports" / "generated_reports.json").read_text())
    n_test = len(json.loads(Path(iu_synth_tiny).read_text())["test"])
    assert len(rows) == n_test and {"image_id", "image", "generated", "reference"} == set(rows[0])

    beams = ("--generation#num_beams", "2", "--generation#max_length", "8")
    _infer(bundle, tmp_path, iu_synth_tiny, *beams, num_threads=1, batch_size=4)
    assert (tmp_path / "infer" / "generated_reports.csv").is_file()
    generated = json.loads((tmp_path / "infer" / "generated_reports.json").read_text())
    assert len(generated) == n_test and all(isinstance(r["generated"], str) for r in generated)

    # the tiny decoder has 32 positions: at most 31 generated tokens, the export's fixed output width
    settings = dict(model_size="tiny", image_size=64, export_max_length=31)
    channels = ("--_meta_#network_data_format#outputs#pred#num_channels", "31")
    _export_and_compare(bundle, tmp_path, settings, cli_only=channels)


def test_vqa(tmp_path, vqa_datalist, pretrained_tiny_ckpt):
    bundle = "gkmvlp_vqa"
    models = tmp_path / "models"
    run = _run_args(tmp_path, vqa_datalist, pretrained_ckpt=pretrained_tiny_ckpt)
    log = _train_and_resume(bundle, run, models)
    assert f"tensors from {pretrained_tiny_ckpt}" in log  # the project's load_pretrained_weights report
    for name in ("model.pt", "best_checkpoint.pt", "checkpoint_final.pt", "answers.json"):
        assert (models / name).is_file(), name
    answers = json.loads((models / "answers.json").read_text())["answers"]
    assert answers == ["yes", "no", "left lung", "right lung"]  # equal counts: alphabetical

    _step(bundle, "evaluate", ["run", "--config_file", EVALUATE, *run])
    keys = ("closed_acc", "open_acc", "overall_acc", "hybrid_open_acc", "hybrid_overall_acc")
    doc = _metrics(tmp_path / "eval" / "metrics.json", keys)
    assert doc["split"] == "test" and doc["answer_coverage"] == 1.0
    assert all(0.0 <= doc["metrics"][k] <= 1.0 for k in keys)
    n_questions = sum(len(it["qa"]) for it in json.loads(Path(vqa_datalist).read_text())["test"])
    preds = json.loads((tmp_path / "eval" / "predictions.json").read_text())
    assert len(preds) == n_questions and {p["answer_type"] for p in preds} == {"CLOSED", "OPEN"}

    _infer(bundle, tmp_path, vqa_datalist)
    preds = json.loads((tmp_path / "infer" / "predictions.json").read_text())
    assert len(preds) == n_questions and all(p["pred_answer"] for p in preds)

    # the model card's export: inference.json's yes/no presence network, the trained weights loaded
    no_check = ("--converter_kwargs", "{'check_trace': False}")
    _export_and_compare(bundle, tmp_path, dict(model_size="tiny", image_size=64), cli_only=no_check)


def test_cxr_anatomy(tmp_path, iu_synth_tiny):
    import numpy as np
    from PIL import Image

    bundle = "cxr_anatomy"
    models, out = tmp_path / "models", tmp_path / "eval"
    run = overrides(
        hidden=16,
        image_size=64,
        num_workers=0,
        cache="none",
        mlflow=False,
        dataset_dir=str(Path(iu_synth_tiny).parent),
        ckpt_dir=str(models),
        output_dir=str(out),
        atlas_images=4,
        batch_size=8,
        ckpt_interval=2,
        val_interval=1,
    )
    _train_and_resume(bundle, run, models)
    assert (models / "model.pt").is_file()

    _step(bundle, "evaluate", ["run", "--config_file", EVALUATE, *run])
    keys = ("model_mean_iou", "atlas_mean_iou", "model_iou_right_lung", "atlas_iou_right_lung")
    metrics = _metrics(out / "metrics.json", (*keys, "model_seconds_per_image", "atlas_seconds_per_image"))
    assert metrics["metrics"]["atlas_mean_iou"] > 0.4  # registration works without training
    assert (models / "atlas.npz").is_file()

    images = tmp_path / "images"
    images.mkdir()
    noise = (np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)
    Image.fromarray(noise).save(images / "noise.png")
    _step(
        bundle,
        "inference",
        [
            "run",
            "--config_file",
            "configs/inference.json",
            *run,
            *overrides(input_dir=str(images), inference_dir=str(tmp_path / "infer")),
        ],
    )
    rec = json.loads((tmp_path / "infer" / "noise.json").read_text())
    assert rec["low_confidence"] and rec["score"] < 0.5 and (tmp_path / "infer" / "noise.png").is_file()

    _export_and_compare(bundle, tmp_path, dict(hidden=16, image_size=64), trace=False)
