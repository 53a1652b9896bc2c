"""Every ``monai.bundle`` command written in the README and the model cards names configs that exist,
merge as MONAI merges them, and hold the ids and override keys the command uses.

Running every command is the end-to-end tier's job (``tests/test_e2e_bundles.py``); this check
catches a stale command in the docs in a second, for example a ``train.json`` listed without the
``configs/base.json`` it now sits on, or an override of a key no config defines.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest
from monai.bundle import ConfigParser

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "bundles").glob("*/docs/README.md"))]
FENCE = re.compile(r"^\s*(```|~~~)")


def _commands(doc: Path) -> list[tuple[Path, list[str]]]:
    """``(bundle folder, argv after 'monai.bundle')`` of each command in the doc's code blocks."""
    lines, fenced, out = doc.read_text().splitlines(), False, []
    bundle = doc.parents[1] if doc.parent.name == "docs" else None
    joined: list[str] = []
    for line in lines:
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            continue
        if joined and joined[-1].endswith("\\"):
            joined[-1] = joined[-1][:-1] + " " + line.strip()
        else:
            joined.append(line.strip())
    for line in joined:
        cd = re.match(r"cd (bundles/\w+)", line)
        if cd:
            bundle = REPO / cd.group(1)
        if "monai.bundle" not in line or line.startswith("#"):
            continue
        argv = shlex.split(line.split("#")[0] if " #" in line else line)
        argv = argv[argv.index("monai.bundle") + 1 :]
        out.append((bundle, argv))
    return out


def _option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


CASES = [(doc, bundle, argv) for doc in DOCS for bundle, argv in _commands(doc)]


def test_the_docs_hold_commands() -> None:
    assert len(CASES) > 40


@pytest.mark.parametrize(
    ("doc", "bundle", "argv"), CASES, ids=[f"{d.parent.parent.name}:{' '.join(a[:4])}" for d, _, a in CASES]
)
def test_documented_command_matches_the_configs(doc: Path, bundle: Path, argv: list[str]) -> None:
    assert bundle is not None, f"{doc}: a monai.bundle command outside any bundle folder"
    config = _option(argv, "--config_file")
    if config is None:
        return  # verify_metadata and the like
    files = ast.literal_eval(config) if config.startswith("[") else [config]
    missing = [f for f in files if not (bundle / f).is_file()]
    assert not missing, f"{doc.relative_to(REPO)}: {missing} do not exist in {bundle.name}"
    parser = ConfigParser()
    parser.read_config([str(bundle / f) for f in files])
    names = [Path(f).name for f in files]
    if "train.json" in names or "build_atlas.json" in names:
        assert names[0] == "base.json", f"{doc.relative_to(REPO)}: {files} must list configs/base.json first"
    if argv[0] in ("verify_net_in_out", "ckpt_export") and not argv[1].startswith("--"):
        assert argv[1] in parser, f"{doc.relative_to(REPO)}: no {argv[1]!r} in {files}"
    if argv[0] == "run":
        run_id = argv[1] if len(argv) > 1 and not argv[1].startswith("--") else "run"
        assert run_id in parser, f"{doc.relative_to(REPO)}: no {run_id!r} section in {files}"
    fixed = {"--config_file", "--meta_file", "--filepath", "--ckpt_file", "--logging_file", "--net_id"}
    for arg in argv:
        if arg.startswith("--") and arg not in fixed and not arg.startswith("--_meta_"):
            key = arg[2:]
            if argv[0] in ("verify_net_in_out", "ckpt_export") and key in (
                "device",
                "use_trace",
                "input_shape",
                "converter_kwargs",
            ):
                continue
            top = key.split("#")[0]
            assert top in parser, f"{doc.relative_to(REPO)}: override {arg} names no config key in {files}"
