"""Benchmark anatomical region extraction with the ``cxr_anatomy`` bundle: train (optional), evaluate on the
test split, and print mean IoU per region and overall for the trained model and the atlas fallback side by
side, with time per image.

    python bench/anatomy.py --data data/iu-synth-300 --work runs/anat_bench [--no-train] [-- extra overrides]

(``data/iu-synth-300``: the 300-report build of ``docs/iu_synth.md``.)

Runs ``configs/base.json + configs/train.json`` then ``... + configs/evaluate.json`` from ``bundles/cxr_anatomy``
with ``bundle_root=--work`` (checkpoints, atlas and ``eval/metrics.json`` land there). Overrides after
``--`` are passed on as ``key=value`` Python literals (e.g. ``max_epochs=60 image_size=128``).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

from gkmvlp_monai.core.vocab import region_names

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "cxr_anatomy" / "configs"


def _run(files: list[str], kind: str, overrides: dict) -> None:
    from monai.bundle import ConfigWorkflow

    wf = ConfigWorkflow(
        config_file=[str(BUNDLE / f) for f in files],
        meta_file=str(BUNDLE / "metadata.json"),
        logging_file=str(BUNDLE / "logging.conf"),
        workflow_type=kind,
        **overrides,
    )
    wf.initialize()
    wf.run()
    wf.finalize()


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark and print a table; returns the metrics."""
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder holding datalist.json (iu-synth)")
    ap.add_argument("--work", required=True, help="bundle_root for outputs")
    ap.add_argument("--no-train", action="store_true", help="evaluate an existing models/model.pt")
    args = ap.parse_args(argv)
    overrides = {"bundle_root": args.work, "dataset_dir": args.data, "num_workers": 0}
    for kv in extra:
        k, v = kv.split("=", 1)
        try:
            overrides[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            overrides[k] = v
    if not args.no_train:
        _run(["base.json", "train.json"], "train", overrides)
    _run(["base.json", "train.json", "evaluate.json"], "infer", overrides)
    m = json.loads((Path(args.work) / "eval" / "metrics.json").read_text())["metrics"]
    print(f"\n{'region':32s}{'model':>10s}{'atlas':>10s}")
    for name in region_names():
        k = "iou_" + name.replace(" ", "_")
        print(f"{name:32s}{m.get('model_' + k, float('nan')):10.3f}{m.get('atlas_' + k, float('nan')):10.3f}")
    print(f"{'mean IoU (all regions)':32s}{m['model_mean_iou']:10.3f}{m['atlas_mean_iou']:10.3f}")
    print(f"{'mean confidence':32s}{m['model_mean_confidence']:10.3f}{m['atlas_mean_confidence']:10.3f}")
    print(
        f"{'seconds per image':32s}{m['model_seconds_per_image']:10.4f}{m['atlas_seconds_per_image']:10.4f}"
    )
    return m


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
