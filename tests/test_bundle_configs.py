"""The bundle configs read as wiring diagrams: few ``$`` expressions, no lambdas, one shared base."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUNDLES = sorted(p for p in (REPO / "bundles").iterdir() if (p / "configs" / "metadata.json").is_file())
MAX_EXPRESSIONS = 150  # across every config file of every bundle (the shared ones counted once)


def _expressions(node: object) -> list[str]:
    if isinstance(node, dict):
        return [e for k, v in node.items() if k not in ("imports", "+imports") for e in _expressions(v)]
    if isinstance(node, list):
        return [e for v in node for e in _expressions(v)]
    return [node] if isinstance(node, str) and node.startswith("$") else []


def _config_files() -> list[Path]:
    files = {p.resolve() for b in BUNDLES for p in (b / "configs").glob("*.json")}
    return sorted(files | {p.resolve() for p in (REPO / "bundles" / "common").glob("*.json")})


def test_few_expressions_and_no_lambdas() -> None:
    counts = {f: _expressions(json.loads(f.read_text())) for f in _config_files()}
    total = sum(len(v) for v in counts.values())
    lambdas = [(f.name, e) for f, v in counts.items() for e in v if "lambda" in e]
    assert total <= MAX_EXPRESSIONS, {str(f.relative_to(REPO)): len(v) for f, v in counts.items() if v}
    assert not lambdas, lambdas


def test_every_bundle_shares_the_base_and_multi_gpu_configs() -> None:
    for bundle in BUNDLES:
        for name, shared in (("base.json", "base.json"), ("multi_gpu_train.json", "multi_gpu_train.json")):
            link = bundle / "configs" / name
            assert link.is_symlink(), f"{link} should link to bundles/common/{shared}"
            assert link.resolve() == (REPO / "bundles" / "common" / shared).resolve(), link


def test_overlays_extend_the_base_rather_than_replace_it() -> None:
    """``imports``, ``train``, ``validate`` and ``setup`` of the base are merged (``+key``), not replaced."""
    for bundle in BUNDLES:
        for f in (bundle / "configs").glob("*.json"):
            if f.is_symlink() or f.name in ("metadata.json", "inference.json"):
                continue
            doc = json.loads(f.read_text())
            replaced = sorted(k for k in ("imports", "train", "validate", "setup") if k in doc)
            assert not replaced, f"{f.relative_to(REPO)} replaces the base config's {replaced}: use '+key'"
