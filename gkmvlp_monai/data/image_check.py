"""Open every image a datalist will reference, before training does.

:func:`inspect_image` checks one file and returns its size on disk (and the DICOM view position);
:func:`inspect_images` checks many in parallel with a progress line on stderr. What is checked:

- every file: it exists and is not empty;
- DICOM (``.dcm``, or the ``DICM`` preamble): the data set parses to the end, ``Rows``/``Columns`` and
  ``PixelData`` are present, and uncompressed pixel data is as long as Rows × Columns × samples ×
  frames × bits allocated say; compressed (encapsulated) pixel data is decoded;
- PNG: the header gives a size and every chunk is read with its checksum (``PIL.Image.verify``), which
  catches a truncated or garbled file without decoding it;
- JPEG: the header gives a size and the file ends with the end-of-image marker (a truncated download
  does not).

Used by :func:`gkmvlp_monai.data.adapters.prepare_dataset`, so nothing bad reaches a datalist.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ImageFileError", "ImageInfo", "inspect_image", "inspect_images"]

# below this many files the check runs in this process (no pool start-up)
_PARALLEL_MIN = 64
# off a terminal, fewer files than this print only the final progress line
_PROGRESS_STEPS_MIN = 200


class ImageFileError(ValueError):
    """An image file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class ImageInfo:
    """What the check learnt of a good file.

    Attributes:
        width: columns of the stored image.
        height: rows of the stored image.
        view: DICOM ``ViewPosition`` as written (upper case, ``""`` when absent or not DICOM).
    """

    width: int
    height: int
    view: str = ""


def _is_dicom(path: Path, head: bytes) -> bool:
    return path.suffix.lower() in (".dcm", ".dicom") or head[128:132] == b"DICM"


def _inspect_dicom(path: Path) -> ImageInfo:
    import pydicom

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(path)
        except Exception as err:  # pydicom raises several types for broken files
            raise ImageFileError(f"{path}: not a readable DICOM file ({err})") from err
    ended = [w for w in caught if "End of file" in str(w.message)]
    if ended:
        raise ImageFileError(f"{path}: DICOM file ends early ({ended[0].message})")
    missing = [k for k in ("Rows", "Columns", "PixelData") if k not in ds]
    if missing:
        raise ImageFileError(f"{path}: DICOM has no {', '.join(missing)}")
    rows, cols = int(ds.Rows), int(ds.Columns)
    if rows <= 0 or cols <= 0:
        raise ImageFileError(f"{path}: DICOM Rows x Columns is {rows} x {cols}")
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None and syntax.is_encapsulated:
        try:
            ds.pixel_array  # noqa: B018 - decoding is the check
        except Exception as err:
            raise ImageFileError(f"{path}: compressed pixel data does not decode ({err})") from err
    else:
        bits = int(ds.get("BitsAllocated", 16))
        pixels = rows * cols * int(ds.get("SamplesPerPixel", 1)) * int(ds.get("NumberOfFrames", 1) or 1)
        expected = (pixels + 7) // 8 if bits == 1 else pixels * ((bits + 7) // 8)
        have = len(ds.PixelData)
        if have < expected:
            raise ImageFileError(
                f"{path}: pixel data has {have} bytes, {rows} x {cols} at {bits} bits needs {expected}"
            )
    return ImageInfo(cols, rows, " ".join(str(ds.get("ViewPosition", "")).upper().split()))


def _inspect_picture(path: Path) -> ImageInfo:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            width, height = im.size
            fmt = im.format
            if fmt == "PNG":
                im.verify()
    except UnidentifiedImageError as err:
        raise ImageFileError(f"{path}: not a readable image ({err})") from err
    except Exception as err:  # PIL raises SyntaxError, OSError, struct.error ... for broken files
        raise ImageFileError(f"{path}: broken {path.suffix or 'image'} file ({err})") from err
    if fmt == "JPEG":
        with open(path, "rb") as fh:
            fh.seek(-2, os.SEEK_END)
            if fh.read(2) != b"\xff\xd9":
                raise ImageFileError(f"{path}: JPEG file is truncated (no end-of-image marker)")
    if width <= 0 or height <= 0:
        raise ImageFileError(f"{path}: image size is {width} x {height}")
    return ImageInfo(width, height)


def inspect_image(path: str | Path) -> ImageInfo:
    """Check one image file (see the module docstring for what is checked).

    Args:
        path: DICOM, PNG or JPEG file (other formats Pillow reads get the header check only).

    Returns:
        Its size on disk and, for DICOM, its view position.

    Raises:
        ImageFileError: missing, empty or broken file, naming the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageFileError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise ImageFileError(f"{path}: empty file (0 bytes)")
    with open(path, "rb") as fh:
        head = fh.read(132)
    return _inspect_dicom(path) if _is_dicom(path, head) else _inspect_picture(path)


def _inspect_one(path: str) -> tuple[str, ImageInfo | None, str]:
    try:
        return path, inspect_image(path), ""
    except ImageFileError as err:
        return path, None, str(err).removeprefix(f"{path}: ")


class _Progress:
    """One progress line on stderr: redrawn in place on a terminal; otherwise a line per tenth (for at
    least :data:`_PROGRESS_STEPS_MIN` files) and one at the end."""

    def __init__(self, desc: str, total: int) -> None:
        self.desc, self.total, self.done, self.bad = desc, total, 0, 0
        self.tty = sys.stderr.isatty()
        self.last, self.next_tenth = 0.0, 1

    def step(self, bad: bool) -> None:
        self.done += 1
        self.bad += int(bad)
        now = time.monotonic()
        if self.tty and (now - self.last > 0.2 or self.done == self.total):
            self.last = now
            end = "\n" if self.done == self.total else ""
            print(f"\r{self._text()}", end=end, file=sys.stderr, flush=True)
        elif not self.tty and (self.done == self.total or self.total >= _PROGRESS_STEPS_MIN) and (
            self.done * 10 >= self.next_tenth * self.total
        ):
            self.next_tenth = self.done * 10 // self.total + 1
            print(self._text(), file=sys.stderr, flush=True)

    def _text(self) -> str:
        return f"{self.desc}: {self.done}/{self.total} files checked, {self.bad} bad"


def inspect_images(
    paths: Sequence[str | Path], workers: int | None = None, desc: str = "checking images"
) -> tuple[dict[str, ImageInfo], dict[str, str]]:
    """Check many files, in parallel processes, with a progress line on stderr.

    Args:
        paths: files to check (duplicates are checked once).
        workers: processes (default: the CPU count); ``1`` checks in this process.
        desc: label of the progress line (empty: no progress line).

    Returns:
        ``(good, bad)``: path -> :class:`ImageInfo`, and path -> reason, keyed by ``str(path)``.
    """
    unique = list(dict.fromkeys(str(p) for p in paths))
    workers = max(1, workers or os.cpu_count() or 1)
    good: dict[str, ImageInfo] = {}
    bad: dict[str, str] = {}
    progress = _Progress(desc, len(unique)) if desc and unique else None
    if workers == 1 or len(unique) < _PARALLEL_MIN:
        results = map(_inspect_one, unique)
        pool = None
    else:
        pool = ProcessPoolExecutor(max_workers=workers)
        results = pool.map(_inspect_one, unique, chunksize=max(1, min(64, len(unique) // (4 * workers))))
    try:
        for path, info, reason in results:
            if info is None:
                bad[path] = reason
            else:
                good[path] = info
            if progress:
                progress.step(info is None)
    finally:
        if pool is not None:
            pool.shutdown()
    return good, bad
