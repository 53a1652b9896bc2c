"""Demo of the image pipeline: ``python -m gkmvlp_monai.apps.image_pipeline_demo [--out runs/demo/samples]``.

The first stage of the main demo (``python -m gkmvlp_monai.apps.demo``).

Writes a few sample radiographs (DICOM: MONOCHROME1, 16-bit, compressed; PNG 8/16-bit) plus one
deliberately corrupt file, runs them through the robust dataset and the chest X-ray pipeline, and prints
a summary per file (reader, photometric, original size, output shape, intensity range) and the number
of skipped samples. The logic lives in ``run_image_pipeline_demo`` so the demo can grow.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gkmvlp_monai.core.vocab import region_names
from gkmvlp_monai.data.dataset import is_skip_marker, make_dataset
from gkmvlp_monai.data.dicom_writer import write_cxr_dicom
from gkmvlp_monai.data.synth.phantom import chest_phantom

__all__ = ["write_demo_samples", "run_image_pipeline_demo", "print_image_pipeline_summary", "main"]

DEFAULT_OUT = Path("runs/demo/samples")


def _picture(rows: int, cols: int, seed: int) -> np.ndarray:
    """The chest phantom (:func:`~gkmvlp_monai.data.synth.phantom.chest_phantom`) as a ``(rows, cols)``
    picture in [0, 1], the layout image files store."""
    return np.ascontiguousarray(chest_phantom(cols, rows, seed=seed)[0].T)


def write_demo_samples(out_dir: str | Path) -> list[dict[str, Any]]:
    """Write the demo files; returns datalist items (the last one is a deliberately corrupt file).

    Args:
        out_dir: folder for the files (created).

    Returns:
        Datalist items with ``image`` and, for some, ``region_boxes``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    truth = chest_phantom(520, 600)[1]  # the DICOMs' region boxes (every seed draws the same anatomy)
    lung = {name: [float(v) for v in truth[k]] for k, name in enumerate(region_names()[:2])}
    items: list[dict[str, Any]] = []
    specs = [
        (
            "dx_mono1_16bit_j2k.dcm",
            dict(photometric="MONOCHROME1", bits_stored=16, transfer_syntax="jpeg2000-lossless"),
        ),
        (
            "cr_mono2_12bit_jpegls.dcm",
            dict(bits_stored=12, transfer_syntax="jpeg-ls", modality="CR", window=(2048, 3000)),
        ),
        ("dx_mono1_12bit_rle.dcm", dict(photometric="MONOCHROME1", bits_stored=12, transfer_syntax="rle")),
    ]
    for i, (name, kwargs) in enumerate(specs):
        bits = int(kwargs["bits_stored"])
        pic = np.round(_picture(600, 520, i) * (2**bits - 1)).astype(np.uint16)
        write_cxr_dicom(out / name, pic, patient_id=f"DEMO{i}", **kwargs)
        items.append({"image": str(out / name), "region_boxes": lung})
    Image.fromarray(np.round(_picture(480, 560, 7) * 255).astype(np.uint8)).save(out / "png_8bit.png")
    Image.fromarray(np.round(_picture(500, 400, 8) * 65535).astype(np.uint16)).save(out / "png_16bit.png")
    items += [{"image": str(out / "png_8bit.png")}, {"image": str(out / "png_16bit.png")}]
    good = (out / specs[0][0]).read_bytes()
    (out / "corrupt_truncated.dcm").write_bytes(good[: len(good) // 3])
    items.append({"image": str(out / "corrupt_truncated.dcm")})
    return items


def run_image_pipeline_demo(out_dir: str | Path = DEFAULT_OUT, image_size: int = 224) -> dict[str, Any]:
    """Write the samples, run them through the robust dataset + pipeline, and summarise.

    Args:
        out_dir: folder for the sample files.
        image_size: output side length of the pipeline.

    Returns:
        ``{"out_dir", "image_size", "files": [per-file summary], "skipped_samples", "skipped_files"}``;
        a per-file summary has ``file``, ``ok`` and, when loaded, ``reader``, ``photometric``,
        ``original_size`` ([W, H]), ``output_shape``, ``intensity_range``, ``regions_kept``; else ``error``.
    """
    from gkmvlp_monai.transforms import cxr_transforms

    items = write_demo_samples(out_dir)
    dataset = make_dataset(items, cxr_transforms(image_size, train=False))
    files, skipped = [], []
    for item, sample in zip(items, dataset):
        name = Path(item["image"]).name
        if is_skip_marker(sample):
            skipped.append(name)
            files.append({"file": name, "ok": False, "error": sample["error"]})
            continue
        img = sample["image"]
        files.append(
            {
                "file": name,
                "ok": True,
                "reader": img.meta["reader"],
                "photometric": img.meta["photometric"],
                "original_size": [int(v) for v in img.meta["original_size"]],
                "output_shape": list(img.shape),
                "intensity_range": [round(float(img.min()), 4), round(float(img.max()), 4)],
                "regions_kept": int(sample["region_mask"].sum()),
            }
        )
    return {
        "out_dir": str(out_dir),
        "image_size": image_size,
        "files": files,
        "skipped_samples": len(skipped),
        "skipped_files": skipped,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line entry point: run the demo and print its summary table."""
    parser = argparse.ArgumentParser(description="GK-MVLP image pipeline demo")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output folder for the sample files")
    parser.add_argument("--size", type=int, default=224, help="output image size")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    summary = run_image_pipeline_demo(args.out, args.size)
    if args.json:
        print(json.dumps(summary, indent=2))
        return summary
    print_image_pipeline_summary(summary, args.size)
    return summary


def print_image_pipeline_summary(summary: dict[str, Any], image_size: int) -> None:
    """Print the per-file table of :func:`run_image_pipeline_demo`'s summary."""
    print(f"samples in {summary['out_dir']}, pipeline output {image_size}x{image_size}")
    header = (
        f"{'file':<28}{'reader':<16}{'photometric':<13}{'orig [W,H]':<13}{'output':<15}{'range':<16}regions"
    )
    print(header)
    for row in summary["files"]:
        if not row["ok"]:
            print(f"{row['file']:<28}SKIPPED: {row['error'][:110]}")
            continue
        lo, hi = row["intensity_range"]
        print(
            f"{row['file']:<28}{row['reader']:<16}{row['photometric']:<13}{str(row['original_size']):<13}"
            f"{str(row['output_shape']):<15}{f'[{lo:.3f}, {hi:.3f}]':<16}{row['regions_kept']}"
        )
    print(f"skipped samples: {summary['skipped_samples']} ({', '.join(summary['skipped_files'])})")


if __name__ == "__main__":
    main()
