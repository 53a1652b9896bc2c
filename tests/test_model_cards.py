"""The model cards keep the model-zoo's shape and hold current, traceable figures.

Each ``bundles/<bundle>/docs/README.md`` has exactly the model-zoo's top-level sections, in order
(Overview, Data, Training, Performance, Commands, Limitations, References; sub-sections inside them are
free). Every table of figures under Performance sits below a heading that names the date and the
commit it was measured at, and no card names a development machine's path.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_docs_map import machine_paths

REPO = Path(__file__).resolve().parents[1]
CARDS = sorted((REPO / "bundles").glob("*/docs/README.md"))
SECTIONS = ["Overview", "Data", "Training", "Performance", "Commands", "Limitations", "References"]
FENCE = re.compile(r"^(```|~~~)")
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")
COMMIT = re.compile(r"\bcommit [0-9a-f]{7,40}\b")


def _prose_lines(text: str) -> list[str]:
    """The card's lines outside fenced code blocks (a ``# comment`` in a bash block is no heading)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def top_sections(text: str) -> list[str]:
    """The first word of each ``## `` heading: ``## Commands (from this folder)`` gives ``Commands``."""
    return [line[3:].split()[0] for line in _prose_lines(text) if line.startswith("## ")]


def undated_tables(text: str) -> list[str]:
    """Headings under Performance whose sub-section holds a table but names no date and commit.

    A table before the first ``###`` counts under the ``## Performance`` heading itself.
    """
    bad, inside, heading, has_table = [], False, "", False
    for line in [*_prose_lines(text), "## end"]:
        if line.startswith(("## ", "### ")):
            if inside and has_table and not (DATE.search(heading) and COMMIT.search(heading)):
                bad.append(heading)
            if line.startswith("## "):
                inside = line.startswith("## Performance")
            heading, has_table = line, False
        elif inside and line.startswith("| --- "):
            has_table = True
    return bad


def test_every_bundle_has_a_card() -> None:
    assert len(CARDS) == 6, [str(c.relative_to(REPO)) for c in CARDS]


@pytest.mark.parametrize("card", CARDS, ids=lambda p: p.parts[-3])
def test_card_sections_follow_the_model_zoo_order(card: Path) -> None:
    found = top_sections(card.read_text(encoding="utf-8"))
    assert found == SECTIONS, (
        f"{card.relative_to(REPO)}: top-level sections {found}, expected {SECTIONS} "
        "(put anything else in a ### sub-section of the right one)"
    )


@pytest.mark.parametrize("card", CARDS, ids=lambda p: p.parts[-3])
def test_card_figures_name_their_date_and_commit(card: Path) -> None:
    bad = undated_tables(card.read_text(encoding="utf-8"))
    assert not bad, (
        f"{card.relative_to(REPO)}: Performance tables under headings without a date and a commit: {bad}"
    )


@pytest.mark.parametrize("card", CARDS, ids=lambda p: p.parts[-3])
def test_card_has_no_machine_path(card: Path) -> None:
    found = machine_paths(card.read_text(encoding="utf-8"))
    assert not found, f"{card.relative_to(REPO)} names machine paths:\n" + "\n".join(found)


def test_checkers_catch_what_they_are_for() -> None:
    card = "\n".join(
        [
            "# t",
            "## Overview",
            "```bash",
            "## not a heading",
            "```",
            "## Data",
            "## Inference output",
            "## Performance",
            "| a |",
            "| --- |",
            "### Measured (2026-12-04, commit b259258)",
            "| a |",
            "| --- |",
            "### Earlier run (2026-11-23)",
            "| a |",
            "| --- |",
            "## Commands",
            "| a |",
            "| --- |",
        ]
    )
    assert top_sections(card) == ["Overview", "Data", "Inference", "Performance", "Commands"]
    assert undated_tables(card) == ["## Performance", "### Earlier run (2026-11-23)"]
    assert undated_tables("## Performance\n### Metrics\ntext\n## Commands\n") == []
