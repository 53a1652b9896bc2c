"""Where the project's files live: the vocabularies (package data), demo data, caches, the checkout.

The vocabularies ship inside the package (``gkmvlp_monai/core/vocabularies/``), so an installed,
non-editable wheel finds them; data and caches resolve from environment variables first.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
#: the checkout root (``bundles/``, ``configs/``, ``data/``); meaningful only for a source checkout
REPO_ROOT = PACKAGE_DIR.parent


def configs_dir() -> Path:
    """The checkout's ``configs/`` folder (fixed splits, the bundle metadata schema); ``$GKMVLP_CONFIGS``
    overrides it."""
    env = os.environ.get("GKMVLP_CONFIGS")
    path = Path(env) if env else REPO_ROOT / "configs"
    if not path.is_dir():
        raise FileNotFoundError(
            f"configs folder {path} not found: set GKMVLP_CONFIGS to the repository's configs/ folder"
        )
    return path


def vocab_path(name: str) -> Path:
    """Path of one vocabulary file of the package (e.g. ``"regions.json"``), the one place to edit it."""
    path = Path(str(resources.files("gkmvlp_monai.core") / "vocabularies" / name))
    if not path.is_file():
        raise FileNotFoundError(f"vocabulary file {path} not found")
    return path


def data_dir() -> Path:
    """Default root for prepared data sets (``$GKMVLP_DATA`` or ``<repo>/data``)."""
    return Path(os.environ.get("GKMVLP_DATA", REPO_ROOT / "data"))


def cache_dir() -> Path:
    """Download/cache folder for registry assets (``$GKMVLP_CACHE`` or ``~/.cache/gkmvlp_monai``)."""
    return Path(os.environ.get("GKMVLP_CACHE", Path.home() / ".cache" / "gkmvlp_monai"))
