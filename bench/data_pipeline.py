"""Benchmark the chest X-ray data pipeline: images/s for decode + transforms.

Generates its own inputs (DICOM 16-bit JPEG 2000 lossless MONOCHROME1 and 8-bit PNG, sizes 1024-2048
px) in a temporary folder, then times one epoch of the 512x512 training pipeline with 0 and 2
DataLoader workers, uncached ("cold") and from a memory cache filled beforehand ("cached").

Usage (repository root): ``PYTHONPATH=. python bench/data_pipeline.py [--n 64] [--size 512] [--syntax jpeg2000-lossless]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import DataLoader

from gkmvlp_monai.data.dataset import collate_skip_bad, make_dataset
from gkmvlp_monai.data.dicom_writer import write_cxr_dicom
from gkmvlp_monai.transforms import cxr_transforms


def make_inputs(folder: Path, n: int, syntax: str) -> dict[str, list[dict]]:
    """Write ``n`` DICOM and ``n`` PNG synthetic radiographs; returns datalists by format."""
    rng = np.random.default_rng(0)
    items: dict[str, list[dict]] = {"dicom": [], "png": []}
    t0 = time.perf_counter()
    for i in range(n):
        rows, cols = int(rng.integers(1024, 2049)), int(rng.integers(1024, 2049))
        yy, xx = np.mgrid[:rows, :cols].astype(np.float32)
        pic = 0.5 + 0.25 * np.sin(xx / 97.0) * np.cos(yy / 71.0) + rng.normal(0, 0.02, (rows, cols))
        pic16 = np.clip(pic * 4095, 0, 4095).astype(np.uint16)
        path = write_cxr_dicom(folder / f"{i}.dcm", pic16, photometric="MONOCHROME1", transfer_syntax=syntax)
        items["dicom"].append({"image": str(path)})
        Image.fromarray((pic16 >> 4).astype(np.uint8)).save(folder / f"{i}.png")
        items["png"].append({"image": str(folder / f"{i}.png")})
    print(f"wrote {2 * n} inputs in {time.perf_counter() - t0:.1f} s")
    return items


def time_epoch(ds, workers: int, batch_size: int = 8) -> float:
    """Images per second of one epoch over ``ds``."""
    loader = DataLoader(ds, batch_size=batch_size, num_workers=workers, collate_fn=collate_skip_bad)
    t0 = time.perf_counter()
    count = sum(batch["image"].shape[0] for batch in loader if "image" in batch)
    return count / (time.perf_counter() - t0)


def write_speed(folder: Path, n: int = 200) -> dict[str, float]:
    """Images per second of ``write_cxr_dicom`` for 512x512 12-bit images, per transfer syntax."""
    rng = np.random.default_rng(1)
    pic = np.clip(rng.normal(2000, 300, (512, 512)), 0, 4095).astype(np.uint16)
    rates = {}
    for syntax in ("explicit", "rle", "jpeg2000-lossless", "jpeg-lossless", "jpeg-ls"):
        t0 = time.perf_counter()
        for i in range(n):
            write_cxr_dicom(folder / f"w_{syntax}_{i}.dcm", pic, transfer_syntax=syntax)
        rates[syntax] = n / (time.perf_counter() - t0)
    return rates


def main() -> None:
    """Parse arguments, run the benchmark, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="images per format")
    parser.add_argument("--size", type=int, default=512, help="output side length")
    parser.add_argument("--syntax", default="jpeg2000-lossless", help="DICOM transfer syntax of the inputs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        writes = write_speed(folder)
        print(
            "write_cxr_dicom 512x512 12-bit, images/s: "
            + ", ".join(f"{k} {v:.0f}" for k, v in writes.items())
        )
        items = make_inputs(folder, args.n, args.syntax)
        transform = cxr_transforms(args.size, train=True)
        rows = []
        for fmt, data in items.items():
            for workers in (0, 2):
                cold = time_epoch(make_dataset(data, transform), workers)
                t0 = time.perf_counter()
                cached_ds = make_dataset(data, transform, cache="memory")
                fill = time.perf_counter() - t0
                cached = time_epoch(cached_ds, workers)
                rows.append((fmt, workers, cold, cached, len(data) / fill))
        print(
            f"\ntrain pipeline to {args.size}x{args.size}, {args.n} images per format ({args.syntax} DICOM)"
        )
        print(f"{'format':<8}{'workers':>8}{'cold img/s':>12}{'cached img/s':>14}{'cache fill img/s':>18}")
        for fmt, workers, cold, cached, fill in rows:
            print(f"{fmt:<8}{workers:>8}{cold:>12.1f}{cached:>14.1f}{fill:>18.1f}")


if __name__ == "__main__":
    main()
