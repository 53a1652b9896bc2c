"""Where the project's shared files live: vocabularies, demo data, caches.

Everything resolves from environment variables first, so an installed (non-editable) package or a
bundle copied elsewhere can point at the repository's ``configs/`` folder explicitly.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent


def configs_dir() -> Path:
    """Folder holding the shared vocabularies (``configs/``); ``$GKMVLP_CONFIGS`` overrides it."""
    env = os.environ.get("GKMVLP_CONFIGS")
    path = Path(env) if env else REPO_ROOT / "configs"
    if not path.is_dir():
        raise FileNotFoundError(
            f"configs folder {path} not found: set GKMVLP_CONFIGS to the repository's configs/ folder"
        )
    return path


def vocab_path(name: str) -> Path:
    """Path of one vocabulary file under ``configs/vocab`` (e.g. ``"regions.json"``)."""
    path = configs_dir() / "vocab" / name
    if not path.is_file():
        raise FileNotFoundError(f"vocabulary file {path} not found")
    return path


def data_dir() -> Path:
    """Default root for prepared data sets (``$GKMVLP_DATA`` or ``<repo>/data``)."""
    return Path(os.environ.get("GKMVLP_DATA", REPO_ROOT / "data"))


def cache_dir() -> Path:
    """Download/cache folder for registry assets (``$GKMVLP_CACHE`` or ``~/.cache/gkmvlp_monai``)."""
    return Path(os.environ.get("GKMVLP_CACHE", Path.home() / ".cache" / "gkmvlp_monai"))
