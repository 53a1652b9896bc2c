"""The docs stay a map: a short design page, complete decision records, no machine paths, no dead paths.

``docs/design.md`` is the map of the code (at most 300 lines); each choice made where the paper is silent
is a decision record ``docs/decisions/NNN-title.md`` with Context, Decision and Consequences sections.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
DESIGN = DOCS / "design.md"
DECISIONS = DOCS / "decisions"
MAX_DESIGN_LINES = 300

#: ``## Context`` / ``## Decision`` (or ``Decisions``) / ``## Consequences``
REQUIRED_SECTIONS = {
    "Context": re.compile(r"^##\s+Context\s*$", re.MULTILINE),
    "Decision": re.compile(r"^##\s+Decisions?\s*$", re.MULTILINE),
    "Consequences": re.compile(r"^##\s+Consequences\s*$", re.MULTILINE),
}
#: an absolute path into a development machine's folders (not part of a URL or a relative path)
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:work|tmp|home|root)/")
#: a package file named by its repository-relative path
PACKAGE_PATH = re.compile(r"(?<![\w/.-])gkmvlp_monai/[\w/.-]*?\w\.py\b")
RECORD_NAME = re.compile(r"^\d{3}-[a-z0-9]+(?:-[a-z0-9]+)*\.md$")


def decision_records() -> list[Path]:
    """The decision records, in number order."""
    return sorted(DECISIONS.glob("*.md"))


def missing_sections(text: str) -> list[str]:
    """Names of the required sections a decision record's text lacks."""
    return [name for name, pattern in REQUIRED_SECTIONS.items() if not pattern.search(text)]


def machine_paths(text: str) -> list[str]:
    """The lines of ``text`` that hold an absolute machine path, as ``"<line number>: <line>"``."""
    return [
        f"{i}: {line.strip()}" for i, line in enumerate(text.splitlines(), 1) if MACHINE_PATH.search(line)
    ]


def package_paths(text: str) -> list[str]:
    """Every ``gkmvlp_monai/...py`` path written in ``text``."""
    return PACKAGE_PATH.findall(text)


def test_design_is_a_map_of_at_most_300_lines() -> None:
    lines = len(DESIGN.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_DESIGN_LINES, (
        f"{DESIGN.relative_to(REPO)} has {lines} lines (at most {MAX_DESIGN_LINES}): move choices into "
        "a decision record under docs/decisions/, history into CHANGELOG.md, figures into a model card"
    )


def test_there_are_decision_records() -> None:
    assert len(decision_records()) >= 3, f"no decision records found in {DECISIONS.relative_to(REPO)}"


@pytest.mark.parametrize("record", decision_records(), ids=lambda p: p.name)
def test_decision_record_has_context_decision_consequences(record: Path) -> None:
    missing = missing_sections(record.read_text(encoding="utf-8"))
    assert not missing, f"{record.relative_to(REPO)} lacks the section(s) " + ", ".join(
        f"'## {name}'" for name in missing
    )


def test_decision_records_are_named_and_numbered_once() -> None:
    names = [p.name for p in decision_records()]
    bad = [n for n in names if not RECORD_NAME.match(n)]
    assert not bad, f"decision records must be named NNN-lower-case-title.md: {bad}"
    numbers = [n[:3] for n in names]
    repeated = sorted({n for n in numbers if numbers.count(n) > 1})
    assert not repeated, f"decision record numbers used twice: {repeated}"


def test_design_indexes_every_decision_record() -> None:
    design = DESIGN.read_text(encoding="utf-8")
    unlisted = [p.name for p in decision_records() if p.name not in design]
    assert not unlisted, f"add these records to the index at the end of docs/design.md: {unlisted}"


@pytest.mark.parametrize("doc", sorted(DOCS.rglob("*.md")), ids=lambda p: str(p.relative_to(DOCS)))
def test_doc_has_no_machine_path(doc: Path) -> None:
    found = machine_paths(doc.read_text(encoding="utf-8"))
    assert not found, (
        f"{doc.relative_to(REPO)} names machine paths (use repository-relative ones):\n" + "\n".join(found)
    )


@pytest.mark.parametrize(
    "doc", sorted([*DOCS.glob("*.md"), *DECISIONS.glob("*.md")]), ids=lambda p: str(p.relative_to(DOCS))
)
def test_package_paths_in_doc_exist(doc: Path) -> None:
    dead = sorted({p for p in package_paths(doc.read_text(encoding="utf-8")) if not (REPO / p).is_file()})
    assert not dead, f"{doc.relative_to(REPO)} names files that are not in the checkout: {dead}"


def test_checkers_catch_what_they_are_for() -> None:
    record = "# 999: x\n\n## Context\n\ntext\n\n## Decisions\n\ntext\n"
    assert missing_sections(record) == ["Consequences"]
    assert missing_sections(record + "\n## Consequences\n") == []
    assert missing_sections("### Context\n## Decision\n## Consequences\n") == ["Context"]

    assert machine_paths("run `python x.py --out /tmp/me/quick`") == [
        "1: run `python x.py --out /tmp/me/quick`"
    ]
    assert machine_paths("ok\nsee /work/main/data and file:///home/u/x") == [
        "2: see /work/main/data and file:///home/u/x"
    ]
    assert machine_paths("https://physionet.org/content/mimic/ data/home/x runs/tmp/y ~/root/z") == []

    text = "`gkmvlp_monai/engine/trainer.py`, gkmvlp_monai/tasks/<task>/study.py, `gkmvlp_monai/…py`, src/gkmvlp_monai/a.py"
    assert package_paths(text) == ["gkmvlp_monai/engine/trainer.py"]
    assert package_paths("(`gkmvlp_monai/core/vocab.py`).") == ["gkmvlp_monai/core/vocab.py"]
