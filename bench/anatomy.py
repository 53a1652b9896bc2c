"""Benchmark anatomical region extraction on the iu-synth test split: mean IoU per region and overall for
the atlas fallback and (optionally) a trained RegionBoxNet, side by side, with time per image.

    python bench/anatomy.py --data /tmp/iusynth256 [--checkpoint model.pt] [--train-epochs 40 --save model.pt]

``--data`` is an iu-synth folder (built with ``build_iu_synth`` when it has no ``datalist.json``). The atlas
is built from ``--atlas-images`` training images. ``--train-epochs`` trains a model on the training split
first (CPU: keep the image size small).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from gkmvlp_monai.anatomy.atlas import Atlas, register_atlas
from gkmvlp_monai.anatomy.model import RegionBoxNet, load_region_model
from gkmvlp_monai.anatomy.train import evaluate_region_boxes, load_items, train_region_model
from gkmvlp_monai.knowledge.vocab import region_names


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark and print a table; returns the figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="iu-synth folder")
    ap.add_argument("--build-limit", type=int, default=300, help="reports to render when building")
    ap.add_argument("--build-size", type=int, default=256)
    ap.add_argument("--atlas-images", type=int, default=8)
    ap.add_argument("--checkpoint", help="trained RegionBoxNet checkpoint")
    ap.add_argument("--train-epochs", type=int, default=0)
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--img-size", type=int, default=128)
    ap.add_argument("--max-train-seconds", type=float, default=None)
    ap.add_argument("--save", help="where to write the trained checkpoint")
    ap.add_argument("--json", help="write the figures as JSON here")
    ap.add_argument("--limit", type=int, default=None, help="evaluate on the first N test images")
    args = ap.parse_args(argv)
    torch.manual_seed(0)

    data = Path(args.data)
    datalist = data / "datalist.json"
    if not datalist.is_file():
        from gkmvlp_monai.data.iu_synth.builder import build_iu_synth

        datalist = build_iu_synth(data, limit=args.build_limit, seed=0, size=args.build_size)
    dl = json.loads(datalist.read_text())
    train = load_items(dl["training"], data)
    test = load_items(dl["test"][: args.limit], data)
    print(f"iu-synth: {len(train)} training, {len(test)} test images")

    t = time.perf_counter()
    atlas = Atlas.from_images(
        [s[0] for s in train[: args.atlas_images]], [s[1] for s in train[: args.atlas_images]], size=256
    )
    print(f"atlas from {args.atlas_images} images in {time.perf_counter() - t:.1f} s")
    register_atlas(test[0][0], atlas)  # warm-up (ITK lazy loading)
    results = {"atlas": evaluate_region_boxes(lambda im: register_atlas(im, atlas)[:2], test)}

    model = None
    if args.checkpoint and Path(args.checkpoint).is_file() and not args.train_epochs:
        model = load_region_model(args.checkpoint)
    elif args.train_epochs:
        model = RegionBoxNet(args.arch, img_size=args.img_size)
        t = time.perf_counter()
        train_region_model(model, train, epochs=args.train_epochs, max_seconds=args.max_train_seconds)
        print(f"trained in {time.perf_counter() - t:.0f} s")
        if args.save:
            torch.save({"config": model.config(), "state_dict": model.state_dict()}, args.save)
    if model is not None:
        model.predict_boxes(test[0][0][None])  # warm-up
        results["model"] = evaluate_region_boxes(model.predict_boxes, test)

    methods = list(results)
    print(f"\n{'region':32s}" + "".join(f"{m:>10s}" for m in methods))
    for i, name in enumerate(region_names()):
        print(f"{name:32s}" + "".join(f"{results[m]['per_region'][i]:10.3f}" for m in methods))
    print(f"{'mean IoU (all regions)':32s}" + "".join(f"{results[m]['mean_iou']:10.3f}" for m in methods))
    print(f"{'mean confidence':32s}" + "".join(f"{results[m]['mean_confidence']:10.3f}" for m in methods))
    print(f"{'seconds per image':32s}" + "".join(f"{results[m]['seconds_per_image']:10.3f}" for m in methods))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
