"""SIIM-ACR Pneumothorax Segmentation (Kaggle): DICOM images and run-length encoded masks.

Layout::

    <root>/train-rle.csv      (or stage_2_train.csv; .csv.gz/.csv.zip too) header "ImageId, EncodedPixels"
    <root>/dicom-images-train/<study uid>/<series uid>/<ImageId>.dcm

RLE format (checked on the real file shipped in the torchxrayvision wheel): pairs ``offset length``
where each offset counts from the end of the previous run (the first from pixel 0), over the image
flattened in column-major order (pixel ``p`` is row ``p % height``, column ``p // height``). Decoded
that way the 3,576 positive masks of the file sit over the lungs (centroids: two clusters left and
right, mostly in the upper half); row-major reading would put them in a band down one side. ``-1``
means no pneumothorax; several rows of one image are unioned. Masks are written as 8-bit PNGs
(0/255) in ``<out>/siim_masks/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gkmvlp_monai.data.adapters.base import AdapterError, AdapterResult, norm_view, read_csv, require_table
from gkmvlp_monai.data.datalist import SkipLog, assign_splits, relative_to
from gkmvlp_monai.data.image_check import inspect_images
from gkmvlp_monai.core.vocab import label_set


class RLEOutOfBoundsError(ValueError):
    """A well-formed RLE whose runs go past the image: the image is not the size the mask was drawn on."""


def decode_siim_rle(rle: str, width: int, height: int) -> np.ndarray:
    """Decode one SIIM RLE string to a ``[height, width]`` uint8 mask (1 inside).

    Args:
        rle: ``"offset length offset length ..."`` with relative offsets, column-major; ``"-1"`` = empty.
        width: image width (columns).
        height: image height (rows).

    Returns:
        The mask, row-major ``[row, column]`` as a picture.

    Raises:
        ValueError: odd number of values, negative values, or runs beyond the image.
    """
    text = rle.strip()
    flat = np.zeros(width * height, dtype=np.uint8)
    if text in ("-1", ""):
        return flat.reshape(width, height).T.copy()
    try:
        values = np.asarray([int(v) for v in text.split()], dtype=np.int64)
    except ValueError as err:
        raise ValueError(f"RLE has non-integer values: {text[:40]!r}") from err
    if values.size % 2 or (values < 0).any():
        raise ValueError(f"RLE must be non-negative offset/length pairs, got {values.size} values")
    pos = 0
    for offset, length in zip(values[0::2], values[1::2]):
        pos += int(offset)
        if pos + length > flat.size:
            raise RLEOutOfBoundsError(f"RLE run {pos}+{length} exceeds {width}x{height} image")
        flat[pos : pos + length] = 1
        pos += int(length)
    return flat.reshape(width, height).T.copy()


def encode_siim_rle(mask: np.ndarray) -> str:
    """Inverse of :func:`decode_siim_rle` (used to build fixtures and to check round trips).

    Args:
        mask: ``[height, width]`` array, non-zero inside.

    Returns:
        The RLE string (``"-1"`` for an empty mask).
    """
    flat = (np.asarray(mask).T.reshape(-1) > 0).astype(np.int8)
    diff = np.diff(np.concatenate([[0], flat, [0]]))
    starts, ends = np.flatnonzero(diff == 1), np.flatnonzero(diff == -1)
    if starts.size == 0:
        return "-1"
    out, prev_end = [], 0
    for s, e in zip(starts, ends):
        out += [int(s - prev_end), int(e - s)]
        prev_end = e
    return " ".join(map(str, out))


def adapt_siim(
    root: Path, out_dir: Path, seed: int = 0, val_ratio: float = 0.1, test_ratio: float = 0.1, **_: Any
) -> AdapterResult:
    """Build the SIIM-ACR datalist (multilabel ``siim_pneumothorax``, mask PNGs).

    Args:
        root: competition folder.
        out_dir: datalist folder; masks go to ``<out_dir>/siim_masks``.
        seed: split seed.
        val_ratio: validation share of images (one image per patient id in this data set).
        test_ratio: test share.

    Returns:
        The adapter result.

    Raises:
        AdapterError: missing file or column, malformed RLE (naming file and line).
    """
    classes = label_set("siim_pneumothorax")
    rle_csv = require_table(root, "train-rle", "stage_2_train")
    df = read_csv(rle_csv, ["ImageId", "EncodedPixels"])
    rles: dict[str, list[tuple[int, str]]] = {}
    for row_no, row in enumerate(df.to_dict("records"), start=2):
        rles.setdefault(row["ImageId"].strip(), []).append((row_no, row["EncodedPixels"].strip()))
    dicoms = {p.stem: p for p in sorted(root.rglob("*.dcm"))}
    mask_dir = Path(out_dir) / "siim_masks"
    mask_dir.mkdir(parents=True, exist_ok=True)
    skipped = SkipLog()
    for image_id, rows in rles.items():
        if image_id not in dicoms:
            skipped.add("image file missing", f"{image_id}.dcm", n=len(rows))
    found = [str(dicoms[i]) for i in rles if i in dicoms]
    good, bad = inspect_images(found, desc="reading DICOM headers")
    items = []
    for image_id, rows in rles.items():
        path = dicoms.get(image_id)
        if path is None:
            continue
        if str(path) in bad:
            skipped.add("image file unreadable", f"{path.name}: {bad[str(path)]}", n=len(rows))
            continue
        info = good[str(path)]
        width, height = info.width, info.height
        mask = np.zeros((height, width), dtype=np.uint8)
        try:
            for row_no, rle in rows:
                mask |= decode_siim_rle(rle, width, height)
        except RLEOutOfBoundsError as err:
            reason = f"mask of {rle_csv.name} line {row_no} does not fit the {width} x {height} image ({err})"
            bad[str(path)] = reason
            skipped.add("image size does not fit its mask", f"{path}: {reason}", n=len(rows))
            continue
        except ValueError as err:
            raise AdapterError(f"{rle_csv} line {row_no}: {err}") from err
        mask_path = mask_dir / f"{image_id}.png"
        Image.fromarray(mask * 255).save(mask_path)
        items.append(
            {
                "image": relative_to(path, out_dir),
                "image_id": image_id,
                "subject_id": image_id,
                "view": norm_view(info.view),
                "image_size": [width, height],
                "label": [float(mask.any())],
                "mask": relative_to(mask_path, out_dir),
            }
        )
    splits = assign_splits(items, None, val_ratio=val_ratio, test_ratio=test_ratio, seed=seed)
    return AdapterResult(
        name="siim_pneumothorax",
        splits=splits,
        label_names=classes,
        label_type="multilabel",
        description="SIIM-ACR Pneumothorax; masks decoded from RLE (column-major, relative offsets), rows unioned",
        skipped=skipped,
        bad_files=bad,
        image_info={p: i for p, i in good.items() if p not in bad},
    )
