"""The README's main command: ``python -m gkmvlp_monai.apps.demo``.

Stages (each skipped when its outputs already exist, unless ``--force``):

1. ``images``: sample DICOM/PNG files through the chest X-ray image pipeline (one corrupt file is skipped).
2. ``data``: build the offline demo set ``iu-synth`` (3,955 IU reports rendered on real lung masks).
3. ``pretrain``: pre-train GK-MVLP with the ``gkmvlp_pretrain`` bundle at the documented CPU setting
   (``configs/demo_cpu.json``), then evaluate it on the test split.
4. ``downstream``: classification, localization, report generation and VQA studies (pre-trained vs
   scratch, 10 % and 100 % of the training split), each through its bundle, run by the study runner
   (``gkmvlp_monai.studies.runner``; result rows in ``<out>/<task>/rows.json``).
5. ``summary``: one page of figures, ``<out>/summary.md`` and ``<out>/summary.png``.

``--quick`` runs every stage on tiny settings (a 40-report set at 64 px, tiny model, one epoch) to check
the wiring in a few minutes; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gkmvlp_monai.core.paths import REPO_ROOT, data_dir
from gkmvlp_monai.studies.runner import ROWS_FILE, STUDIES, run_study

STAGES = ("images", "data", "pretrain", "downstream", "summary")
TASKS = tuple(STUDIES)
# the full demo's study budgets, sized so the whole main command stays under 40 minutes on the 2-core
# CPU machine (measured stage times are in the bundles' docs/README.md); the study modules' own
# defaults are the settings their model cards report for longer runs
# classification, localization and report generation: the same number of updates for every run whatever
# its data fraction (10 %: whole epochs; 100 %: part of one epoch; report generation 34 = two epochs of
# the 10 % split); VQA: 100 updates at a higher learning rate (after 60 at 3e-4 both initialisations still
# answered with the answer priors)
DEMO_BUDGETS: dict[str, dict[str, Any]] = {
    "classification": {"steps": 100},
    "localization": {"steps": 100},
    "report_generation": {"steps": 34, "batch_size": 16, "num_threads": None},
    "vqa": {"steps": 100, "learning_rate": 1e-3},
}
# --quick: the smallest budget of each study (checks the wiring; the figures mean nothing)
QUICK_BUDGETS = {
    "classification": {"epochs": 1},
    "localization": {"steps": 4},
    "report_generation": {"epochs": 1, "test_max_items": 8},
    "vqa": {"steps": 4},
}
PRETRAIN_BUNDLE = REPO_ROOT / "bundles" / "gkmvlp_pretrain"

logger = logging.getLogger("gkmvlp_monai.demo")


def _banner(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 70 - len(text)), flush=True)


def run_pretrain_bundle(config_files: list[str], overrides: dict[str, Any], log: Path) -> None:
    """Run the pretrain bundle as a user would (``python -m monai.bundle run``), logging to ``log``."""
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", repr(config_files)]
    for k, v in overrides.items():
        cmd += [f"--{k}", repr(v) if isinstance(v, str) else str(v)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"$ (cd {PRETRAIN_BUNDLE.relative_to(REPO_ROOT)} && {' '.join(cmd[1:])})  > {log}", flush=True)
    with open(log, "w") as handle:
        proc = subprocess.run(cmd, cwd=PRETRAIN_BUNDLE, env=env, stdout=handle, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"bundle run failed (exit {proc.returncode}); see {log}:\n{tail}")


def stage_images(out: Path, quick: bool) -> dict[str, Any]:
    from gkmvlp_monai.apps.image_pipeline_demo import print_image_pipeline_summary, run_image_pipeline_demo

    summary = run_image_pipeline_demo(out / "samples", image_size=224)
    print_image_pipeline_summary(summary, 224)
    return {"skipped_samples": summary["skipped_samples"], "files": len(summary["files"])}


def stage_data(data: Path, quick: bool, force: bool, size: int) -> Path:
    from gkmvlp_monai.data.synth import build_iu_synth

    datalist = data / "datalist.json"
    info = data / "build_info.json"
    if datalist.is_file() and info.is_file() and not force:
        built = json.loads(info.read_text())
        print(
            f"using the existing demo set {data} ({built.get('counts', {}).get('reports')} reports, "
            f"{built.get('size')} px); --force rebuilds it"
        )
        return datalist
    start = time.time()
    path = build_iu_synth(data, limit=40 if quick else None, seed=0, size=64 if quick else size, workers=2)
    print(f"built {path} in {time.time() - start:.0f} s")
    return Path(path)


def pretrain_settings(quick: bool) -> tuple[list[str], dict[str, Any]]:
    """Config files and overrides of the demo pre-training (the documented CPU setting, or tiny)."""
    if quick:
        return ["configs/base.json", "configs/train.json"], {
            "model_size": "tiny",
            "image_size": 64,
            "max_epochs": 1,
            "batch_size": 8,
            "num_workers": 0,
            "cache": "memory",
            "mlflow": False,
        }
    return ["configs/base.json", "configs/train.json", "configs/demo_cpu.json"], {}


def stage_pretrain(out: Path, datalist: Path, quick: bool, force: bool) -> dict[str, Any]:
    run = out / "pretrain"
    model = run / "models" / "model.pt"
    metrics_file = run / "eval" / "metrics.json"
    configs, settings = pretrain_settings(quick)
    common = {
        "datalist_file": str(datalist.resolve()),
        "ckpt_dir": str((run / "models").resolve()),
        "output_dir": str((run / "eval").resolve()),
        **settings,
    }
    if force or not (run / "models" / "checkpoint_final.pt").is_file():
        start = time.time()
        run_pretrain_bundle(configs, common, run / "train.log")
        print(f"pre-training took {(time.time() - start) / 60:.1f} min")
    else:
        print(f"using the existing pre-training in {run} (--force retrains)")
    if force or not metrics_file.is_file():
        run_pretrain_bundle(configs + ["configs/evaluate.json"], common, run / "evaluate.log")
    result = json.loads(metrics_file.read_text())
    m = result["metrics"]
    print(
        f"test split: zero-shot macro AUC (8 most frequent findings) {m.get('zs_macro_AUC', float('nan')):.3f}"
    )
    print("retrieval   " + "  ".join(f"{k} {m[k]:.3f}" for k in sorted(m) if k.startswith(("i2t_", "t2i_"))))
    return {"checkpoint": str(model), "metrics": m, "settings": {**settings, "configs": configs}}


def stage_downstream(
    out: Path, datalist: Path, checkpoint: str, quick: bool, force: bool, tasks: list[str]
) -> dict:
    """Run each task's study through the study runner (``<out>/<task>/rows.json``) with the demo's budget."""

    settings = json.loads((out / "pretrain" / "eval" / "params.json").read_text())
    results = {}
    for task in tasks:
        _banner(f"downstream: {task}")
        rows_file = out / task / ROWS_FILE
        if rows_file.is_file() and not force:
            print(f"using {rows_file} (--force reruns)")
        else:
            budget = dict((QUICK_BUDGETS if quick else DEMO_BUDGETS)[task])
            start = time.time()
            run_study(
                task,
                checkpoint,
                str(datalist.parent),
                str(out),
                fractions=(0.1, 1.0),
                steps=budget.pop("steps", None),
                seed=0,
                model_size=settings["model_size"],
                image_size=settings["image_size"],
                **budget,
            )
            print(f"{task} took {(time.time() - start) / 60:.1f} min")
        results[task] = {"rows": str(rows_file), "figures": len(json.loads(rows_file.read_text()))}
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument("--data", default=None, help="demo set folder (default <repo>/data/iu-synth)")
    parser.add_argument(
        "--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}"
    )
    parser.add_argument("--tasks", default=",".join(TASKS), help="downstream tasks to run")
    parser.add_argument("--size", type=int, default=512, help="iu-synth image size (default 512)")
    parser.add_argument("--quick", action="store_true", help="tiny settings: checks the wiring in minutes")
    parser.add_argument("--force", action="store_true", help="redo stages whose outputs exist")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stages {unknown}; choose from {STAGES}")
    out = Path(args.out)
    if args.quick and args.out == "runs/demo":
        out = Path("runs/demo_quick")
    data = Path(args.data) if args.data else data_dir() / ("iu-synth-quick" if args.quick else "iu-synth")
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"quick": args.quick, "stages": {}}
    t0 = time.time()
    datalist = data / "datalist.json"
    if "images" in stages:
        _banner("1. image pipeline")
        report["stages"]["images"] = stage_images(out, args.quick)
    if "data" in stages:
        _banner("2. demo data set iu-synth")
        datalist = stage_data(data, args.quick, args.force, args.size)
    if "pretrain" in stages:
        _banner("3. GK-MVLP pre-training (bundles/gkmvlp_pretrain)")
        report["stages"]["pretrain"] = stage_pretrain(out, datalist, args.quick, args.force)
    if "downstream" in stages:
        checkpoint = str(out / "pretrain" / "models" / "model.pt")
        tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
        report["stages"]["downstream"] = stage_downstream(
            out, datalist, checkpoint, args.quick, args.force, tasks
        )
    if "summary" in stages:
        _banner("5. summary")
        from gkmvlp_monai.studies.summary import write_summary

        md, png = write_summary(out)
        print(f"summary: {md} and {png}")
        print(md.read_text())
    report["minutes"] = round((time.time() - t0) / 60, 2)
    (out / "demo_report.json").write_text(json.dumps(report, indent=1, default=str))
    print(f"\ndone in {report['minutes']} min; outputs in {out}")
    return report


if __name__ == "__main__":
    main()
