"""Every imported module is declared in pyproject.toml, and every declared distribution is used.

A fresh ``pip install -e ".[dev]"`` installs exactly what pyproject.toml declares; a module the code
imports but nobody declared works only on a machine that happens to have it (CI once passed that way
while ``pycocoevalcap`` sat in an extra the README never installs). The import side reads the code
(``ast``) and every bundle config (``$import`` / ``$from`` lines and dotted ``_target_`` values), so
nothing is imported to find out.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata as md
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "gkmvlp_monai"


def normalise(name: str) -> str:
    """PEP 503 form of a distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    """The distribution name of a requirement string (``"monai==1.6.1"`` -> ``"monai"``)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    assert match, f"pyproject.toml: cannot read the requirement {spec!r}"
    return normalise(match.group(1))


def python_imports(files: Iterable[Path], root: Path = REPO) -> dict[str, set[str]]:
    """Top-level module name -> the files importing it (absolute imports only)."""
    found: dict[str, set[str]] = {}
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(root)))
    return found


def config_imports(files: Iterable[Path], root: Path = REPO) -> dict[str, set[str]]:
    """Top-level modules named by bundle configs: ``$import x``, ``$from x import y``, ``_target_``."""
    found: dict[str, set[str]] = {}

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "_target_" and isinstance(value, str) and "." in value and "$" not in value:
                    found.setdefault(value.split(".")[0], set()).add(where)
                walk(value, where)
        elif isinstance(node, list):
            for value in node:
                walk(value, where)
        elif isinstance(node, str):
            match = re.match(r"\$\s*(?:import|from)\s+([A-Za-z_][\w.]*)", node)
            if match:
                found.setdefault(match.group(1).split(".")[0], set()).add(where)

    for path in files:
        walk(json.loads(path.read_text()), str(path.relative_to(root)))
    return found


def local_modules(folder: Path) -> set[str]:
    """Module names a script folder imports from itself (``bundle_helpers``, ``conftest``, ...)."""
    return {p.stem for p in folder.glob("*.py")}


@functools.cache
def _modules_by_distribution() -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for module, dists in md.packages_distributions().items():
        for dist in dists:
            out.setdefault(normalise(dist), set()).add(module)
    return {d: frozenset(m) for d, m in out.items()}


@functools.cache
def modules_of(dist: str, seen: frozenset[str] = frozenset()) -> frozenset[str]:
    """Top-level modules a distribution provides.

    A meta-package (``itk``) provides no module of its own: it stands for its parts, the requirements
    named after it (``itk-core``, ``itk-io``, ...), not for everything those need (numpy).
    """
    own = _modules_by_distribution().get(dist)
    if own:
        return own
    seen = seen | {dist}
    try:
        requires = md.requires(dist) or []
    except md.PackageNotFoundError:
        return frozenset()
    out: frozenset[str] = frozenset()
    for spec in requires:
        if "extra ==" in spec:
            continue
        name = requirement_name(spec)
        if name.startswith(dist + "-") and name not in seen:
            out |= modules_of(name, seen)
    return out


@pytest.fixture(scope="module")
def declared() -> dict[str, object]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    return {
        "core": {requirement_name(s) for s in project["project"]["dependencies"]},
        "dev": {requirement_name(s) for s in project["project"]["optional-dependencies"]["dev"]},
        "runtime_only": {normalise(k): v for k, v in project["tool"]["gkmvlp-monai"]["runtime-only"].items()},
    }


@pytest.fixture(scope="module")
def imported() -> dict[str, dict[str, set[str]]]:
    """Imports of the shipped code (package, bench, bundle configs) and of the tests, apart."""
    shipped = python_imports((REPO / PACKAGE).rglob("*.py"))
    for module, where in python_imports((REPO / "bench").glob("*.py")).items():
        if module not in local_modules(REPO / "bench"):
            shipped.setdefault(module, set()).update(where)
    for module, where in config_imports(sorted((REPO / "bundles").glob("*/configs/*.json"))).items():
        shipped.setdefault(module, set()).update(where)
    tests = {
        m: w
        for m, w in python_imports((REPO / "tests").rglob("*.py")).items()
        if m not in local_modules(REPO / "tests")
    }
    return {"shipped": shipped, "tests": tests}


def third_party(found: dict[str, set[str]]) -> dict[str, set[str]]:
    return {m: w for m, w in found.items() if m not in sys.stdlib_module_names and m != PACKAGE}


def providers(module: str, dists: set[str]) -> set[str]:
    return {d for d in dists if module in modules_of(d)}


def test_shipped_code_imports_only_core_dependencies(declared, imported):
    missing = {
        module: sorted(where)[:3]
        for module, where in third_party(imported["shipped"]).items()
        if not providers(module, declared["core"])
    }
    assert not missing, (
        "imported by the package, bench/ or a bundle config but not a core dependency in "
        f"pyproject.toml (a fresh install lacks it): {missing}"
    )


def test_tests_import_only_declared_dependencies(declared, imported):
    missing = {
        module: sorted(where)[:3]
        for module, where in third_party(imported["tests"]).items()
        if not providers(module, declared["core"] | declared["dev"])
    }
    assert not missing, f"imported by tests but declared in neither core nor dev: {missing}"


def test_every_declared_dependency_is_imported_or_says_why(declared, imported):
    used = set(third_party(imported["shipped"])) | set(third_party(imported["tests"]))
    unused = sorted(
        dist
        for dist in declared["core"] | declared["dev"]
        if not modules_of(dist) & used and dist not in declared["runtime_only"]
    )
    assert not unused, (
        f"declared in pyproject.toml but imported nowhere: {unused}; remove them, or say what needs "
        "them in [tool.gkmvlp-monai.runtime-only]"
    )
    stale = sorted(set(declared["runtime_only"]) - declared["core"] - declared["dev"])
    assert not stale, f"[tool.gkmvlp-monai.runtime-only] names undeclared distributions: {stale}"


def test_runtime_only_entries_are_not_imported_anyway(declared, imported):
    used = set(third_party(imported["shipped"])) | set(third_party(imported["tests"]))
    imported_anyway = sorted(d for d in declared["runtime_only"] if modules_of(d) & used)
    assert not imported_anyway, f"listed as runtime-only but imported by name: {imported_anyway}"


def test_the_scan_sees_imports_in_code_and_configs(tmp_path):
    """The collectors themselves: a plain, a from- and a config import are all found."""
    code = tmp_path / "m.py"
    code.write_text("import a.b\nfrom c.d import e\nfrom . import f\n")
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"imports": ["$import g.h", "$from i import j"], "x": {"_target_": "k.L"}}))
    assert set(python_imports([code], tmp_path)) == {"a", "c"}
    assert set(config_imports([config], tmp_path)) == {"g", "i", "k"}
