"""Helpers for running bundles in tests (subprocesses, as a user would)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "configs" / "bundle" / "metadata_schema.json"


def bundle_cmd(bundle: str, args: list[str], timeout: int = 600, cwd: Path | None = None) -> str:
    """Run ``python -m monai.bundle <args>`` in ``bundles/<bundle>``; return its output, fail with it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "monai.bundle", *args],
        cwd=cwd or REPO / "bundles" / bundle,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise AssertionError(f"monai.bundle {' '.join(args[:3])} failed ({proc.returncode}):\n{out[-6000:]}")
    return out


def overrides(**kw: object) -> list[str]:
    """``--key value`` pairs (values as Python literals, the way fire parses them)."""
    out: list[str] = []
    for k, v in kw.items():
        out += [f"--{k}", repr(v) if isinstance(v, str) else str(v)]
    return out
