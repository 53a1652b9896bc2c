"""Score the report filter against the MeSH major tags of the IU X-ray reports, per split.

Held out: the rules were developed on 3,164 reports only, the iu-synth training and validation splits
as they were drawn until 2026-12-03 (before that on all 3,955, test split included). That draw is frozen
in ``configs/splits/report_filter_development_split.csv``; its **test** rows (791 reports) are scored
separately and were never read to write rules: ``--show-errors`` prints errors of the rules split only.
(iu-synth itself now splits by a per-subject hash, ``configs/splits/iu_synth_patient_split_seed0.csv``;
its test split is not the held-out set of this bench.)

The unit is the MeSH finding term (the issue's unit). A term maps to a set of entities
(``gkmvlp_monai/core/vocabularies/mesh_map.json``: its ``entities`` plus any ``qualifier_entities`` override, e.g.
``Markings`` -> ``marking``, and ``Markings/bronchovascular`` -> ``crowd``). For the row of term T with
entity set E(T):

- gold: some MeSH major tag of the report, read by meaning (``MeshTag.meaning``: a compound term asserts
  each part, so ``Calcified Granuloma`` is gold for ``granuloma`` *and* ``calcification``), maps to an
  entity of E(T) (so ``Granuloma``, ``Calcified Granuloma`` and ``Granulomatous Disease`` all count for
  the ``granuloma`` entity, and ``Cardiac Shadow/enlarged`` for ``cardiomegaly``): a report saying "no
  effusion" gets no tag;
- prediction: the filter's state of some entity of E(T) is ``present``. Uncertain counts as *not
  present* in the main score (MeSH major tags are assertions); ``F1 unc+`` counts it as present.

The top terms are the most frequent over all 3,955 reports (tag counts only; the same ten as before
the split). After them come the entity groups of
``gkmvlp_monai/core/vocabularies/finding_classes.json`` (``support_devices``: gold = a tag maps to a member, e.g.
``Catheters, Indwelling``, ``Implanted Medical Device``, ``Surgical Instruments``, ``Spinal Fusion``;
prediction = some member present) and the ``--extra`` terms (default ``Nodule``, ``Pneumonia``).
Terms and groups with several entities get one row (the score) plus one indented detail row per entity.

Location agreement is measured on true positives whose MeSH tags carry a location: ``side`` = same set
of sides (right/left/midline) as the MeSH regions; ``region`` = the predicted and MeSH regions share a
region. For *pleural* entities (all default regions in the ``pleura`` group of regions.json, e.g.
effusion) the MeSH qualifiers only name a side (``Pleural Effusion/right``; the side-only word resolves to
the whole right lung), so their ``region`` column compares sides: the MeSH tag holds no finer location to
compare with the costophrenic angles the filter grounds effusions to. Such rows are marked ``(side)``.

Run: ``PYTHONPATH=. python bench/report_filter.py [--split both|rules|test|all] [--top 10]
[--show-errors TERM_OR_ENTITY]``.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gkmvlp_monai.core.paths import configs_dir
from gkmvlp_monai.core.vocab import entity, entity_groups, regions
from gkmvlp_monai.data.xrv_assets import iter_iu_report_xml
from gkmvlp_monai.knowledge.iu_xml import IUReport, parse_iu_xml
from gkmvlp_monai.knowledge.mesh import mesh_entities, mesh_map, parse_mesh_tag
from gkmvlp_monai.knowledge.report_filter import ReportFilter

NON_FINDINGS = frozenset({"normal", "tail_abnorm_obs"})
#: iu-synth splits the rules were developed on, and the held-out one
RULES_SPLITS = ("training", "validation")
TEST_SPLIT = "test"
#: terms the issue names, scored after the top terms
EXTRA_TERMS = ("Nodule", "Pneumonia")


@dataclass
class Score:
    """Scores of one row: a MeSH term (all its entities) or one entity of it."""

    label: str
    entities: tuple[str, ...]
    gold: int
    tp: int
    fp: int
    fn: int
    f1_unc: float
    side: float
    region: float
    n_loc: int
    side_level: bool
    errors: list[tuple[Any, ...]]

    @property
    def precision(self) -> float:
        """TP / (TP + FP)."""
        return self.tp / max(1, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """TP / (TP + FN)."""
        return self.tp / max(1, self.tp + self.fn)

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        return 2 * self.tp / max(1, 2 * self.tp + self.fp + self.fn)


def load_reports() -> list[IUReport]:
    """The 3,955 IU reports (raises ``AssetUnavailableError`` without the torchxrayvision wheel)."""
    return [parse_iu_xml(x, n) for n, x in iter_iu_report_xml()]


def load_split(path: str | Path | None = None) -> dict[str, str]:
    """Report id -> split of the frozen rules-development split (``training``/``validation`` = rules,
    ``test`` = held out)."""
    path = Path(path) if path else configs_dir() / "splits" / "report_filter_development_split.csv"
    with open(path, newline="", encoding="utf-8") as f:
        return {row["subject_id"]: row["split"] for row in csv.DictReader(f)}


def split_reports(reports: list[IUReport], split_of: dict[str, str]) -> dict[str, list[IUReport]]:
    """``{"rules": training + validation reports, "test": test reports}``; raises ``KeyError`` for a report
    the split file does not know."""
    out: dict[str, list[IUReport]] = {"rules": [], "test": []}
    for r in reports:
        if r.uid not in split_of:
            raise KeyError(f"report {r.uid} is not in the split file")
        split = split_of[r.uid]
        if split == TEST_SPLIT:
            out["test"].append(r)
        elif split in RULES_SPLITS:
            out["rules"].append(r)
        else:
            raise KeyError(f"report {r.uid}: unknown split {split!r}")
    return out


def report_text(report: IUReport) -> str:
    """Findings then impression, the text the filter reads."""
    return " . ".join(p for p in (report.findings, report.impression) if p)


def term_entity_sets(reports: Iterable[IUReport]) -> dict[str, tuple[str, ...]]:
    """MeSH term -> the finding entities its tags map to in these reports (qualifier overrides included)."""
    out: dict[str, set[str]] = {}
    for r in reports:
        for tag in r.mesh_major:
            out.setdefault(tag.split("/")[0], set()).update(parse_mesh_tag(tag).entities)
    return {t: tuple(sorted(e - NON_FINDINGS)) for t, e in out.items()}


def top_terms(reports: list[IUReport], top: int = 10) -> list[tuple[str, tuple[str, ...], int]]:
    """The ``top`` most frequent MeSH finding terms that map to an entity: ``(term, entities, n_reports)``."""
    freq: Counter[str] = Counter()
    for r in reports:
        freq.update({t.split("/")[0] for t in r.mesh_major})
    sets = term_entity_sets(reports)
    kinds = mesh_map()["terms"]
    ranked = [
        (t, sets[t], n)
        for t, n in freq.most_common()
        if sets[t] and kinds.get(t, {}).get("kind") == "finding"
    ]
    return ranked[:top]


def _sides(names: Iterable[str]) -> frozenset[str]:
    side = {r.name: r.side for r in regions()}
    return frozenset(side[n] for n in names)


def is_pleural(name: str) -> bool:
    """True when every default region of the entity is in the ``pleura`` group (effusion, blunt, fluid)."""
    group = {r.name: r.group for r in regions()}
    defaults = entity(name).default_regions
    return bool(defaults) and all(group[r] == "pleura" for r in defaults)


def score_row(
    label: str,
    names: tuple[str, ...],
    reports: list[IUReport],
    preds: list[dict[str, dict[str, Any]]],
    golds: list[dict[str, list[str]]],
) -> Score:
    """Score the prediction "some entity of ``names`` is present" against "some MeSH tag maps to one"."""
    tp = fp = fn = tpu = fpu = side_ok = reg_ok = n_loc = 0
    side_level = all(is_pleural(n) for n in names)
    errors: list[tuple[Any, ...]] = []
    for r, p, g in zip(reports, preds, golds):
        gold = any(n in g for n in names)
        states = {p[n]["state"] for n in names if n in p}
        pred = "present" in states
        predu = pred or "uncertain" in states
        tp += gold and pred
        fp += pred and not gold
        fn += gold and not pred
        tpu += gold and predu
        fpu += predu and not gold
        if gold != pred:
            errors.append((r.uid, "FN" if gold else "FP", sorted(states), r.mesh_major, report_text(r)))
        g_regs = {x for n in names for x in g.get(n, [])}
        if gold and pred and g_regs:
            p_regs = {x for n in names if p.get(n, {}).get("state") == "present" for x in p[n]["regions"]}
            n_loc += 1
            same_side = _sides(p_regs) == _sides(g_regs)
            side_ok += same_side
            reg_ok += same_side if side_level else bool(p_regs & g_regs)
    f1u = 2 * tpu / max(1, 2 * tpu + fpu + (tp + fn - tpu))
    return Score(
        label,
        names,
        tp + fn,
        tp,
        fp,
        fn,
        f1u,
        side_ok / max(1, n_loc),
        reg_ok / max(1, n_loc),
        n_loc,
        side_level,
        errors,
    )


def score_terms(
    reports: list[IUReport],
    preds: list[dict[str, dict[str, Any]]],
    top: int = 10,
    terms: list[tuple[str, tuple[str, ...]]] | None = None,
    extra: Iterable[str] = (),
    groups: bool = False,
) -> list[tuple[Score, list[Score]]]:
    """Per MeSH term: the term's score and, when it maps to several entities, one score per entity.

    Args:
        reports, preds: the reports and the filter's annotation of each.
        top: number of most frequent terms of ``reports`` scored when ``terms`` is not given.
        terms: ``(term, entities)`` rows to score (e.g. ranked on another split), instead of ``top``.
        extra: further terms scored after them (skipped when no report here has them).
        groups: also score every entity group of ``finding_classes.json`` (after the terms).

    Gold is read by meaning (:func:`mesh_entities` with ``by_meaning=True``).
    """
    golds = [mesh_entities(r.mesh_major, by_meaning=True) for r in reports]
    rows = list(terms) if terms is not None else [(t, names) for t, names, _ in top_terms(reports, top)]
    sets = term_entity_sets(reports)
    rows += [(t, sets[t]) for t in extra if sets.get(t) and t not in {x for x, _ in rows}]
    if groups:
        rows += [(f"[group] {g.name}", g.entities) for g in entity_groups().values()]
    out = []
    for term, names in rows:
        row = score_row(term, names, reports, preds, golds)
        detail = [score_row(n, (n,), reports, preds, golds) for n in names] if len(names) > 1 else []
        if term.startswith("[group]"):
            # a member against the group's gold (the indexers code a device by any device term): P = share
            # of its reports that carry a device tag, R = share of the device-tagged reports it finds
            group_golds = [dict.fromkeys(names, []) if any(n in g for n in names) else {} for g in golds]
            detail = [score_row(n, (n,), reports, preds, group_golds) for n in names]
            detail = [d for d in detail if d.tp or d.fp]
        out.append((row, detail))
    return out


def _line(s: Score, n_tag: int | str, indent: str = "") -> str:
    reg = f"{s.region:.3f}" + ("(side)" if s.side_level else "")
    ents = " | ".join(s.entities)
    ents = ents if len(ents) <= 18 else f"{len(s.entities)} entities"
    return (
        f"{indent + s.label:28s} {ents:18s} {n_tag!s:>5s} {s.gold:5d} {s.precision:6.3f} "
        f"{s.recall:6.3f} {s.f1:6.3f} {s.f1_unc:7.3f} {s.side:6.3f} {reg:>12s} {s.n_loc:5d}"
    )


def print_table(
    title: str,
    reports: list[IUReport],
    preds: list[dict[str, dict[str, Any]]],
    terms: list[tuple[str, tuple[str, ...]]],
    extra: Iterable[str],
    show_errors: str = "",
    target: float = 0.90,
) -> list[tuple[Score, list[Score]]]:
    """Print one split's table (top terms, extra terms, entity groups) and its summary lines."""
    rows = score_terms(reports, preds, terms=terms, extra=extra, groups=True)
    n_tag: Counter[str] = Counter()
    for r in reports:
        n_tag.update({t.split("/")[0] for t in r.mesh_major})
    header = (
        f"{'MeSH term':28s} {'entities':18s} {'n_tag':>5s} {'gold':>5s} {'P':>6s} {'R':>6s} {'F1':>6s} "
        f"{'F1 unc+':>7s} {'side':>6s} {'region':>12s} {'n_loc':>5s}"
    )
    print(f"\n{title}: {len(reports)} reports")
    print(header)
    print("-" * len(header))
    for k, (row, detail) in enumerate(rows):
        if k == len(terms):
            print("  -- after the top terms: issue-named terms and entity groups")
        print(_line(row, n_tag.get(row.label, "")))
        for d in detail:
            print(_line(d, "", indent="  . "))
        for s in [row, *detail]:
            if show_errors and show_errors in (s.label, *s.entities) and (s is row or not detail):
                for e in s.errors[:40]:
                    print("   ", e)
    top = [row for row, _ in rows[: len(terms)]]
    f1s = [row.f1 for row in top]
    groups = [row for row, _ in rows if row.label.startswith("[group]")]
    print(f"min F1 over the top {len(top)} terms: {min(f1s):.3f}; mean {sum(f1s) / len(f1s):.3f}")
    scored = top + groups
    below = [f"{r.label} {r.f1:.3f}" for r in scored if r.f1 < target]
    print(
        f"target F1 >= {target:.2f} on each top term and group: "
        + (f"met on all {len(scored)}" if not below else f"not met for {', '.join(below)}")
    )
    return rows


def main() -> None:
    """Run the benchmark and print the mapping and the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top", type=int, default=10, help="number of most frequent mapped MeSH finding terms")
    ap.add_argument(
        "--split",
        choices=("both", "rules", "test", "all"),
        default="both",
        help="rules = training+validation (the rules were developed on these), test = held out, all = 3,955",
    )
    ap.add_argument("--extra", nargs="*", default=list(EXTRA_TERMS), help="terms scored after the top ones")
    ap.add_argument(
        "--show-errors",
        default="",
        help="print false positives/negatives of this term or entity (rules split only: test stays unread)",
    )
    args = ap.parse_args()

    reports = load_reports()
    parts = split_reports(reports, load_split())
    rf = ReportFilter()
    t0 = time.perf_counter()
    preds = {r.uid: rf.annotate(report_text(r)) for r in reports}
    elapsed = time.perf_counter() - t0
    ranked = top_terms(reports, args.top)
    terms = [(t, names) for t, names, _ in ranked]

    print(
        f"IU reports: {len(reports)}; filter time {elapsed:.1f} s ({1000 * elapsed / len(reports):.1f} ms/report)"
    )
    print(
        f"rules developed on the iu-synth training+validation splits ({len(parts['rules'])} reports); "
        f"test split ({len(parts['test'])} reports) held out: scored, never read to write rules"
    )
    print(
        f"\nMeSH term -> entity mapping of the top {len(ranked)} finding terms of the IU reports "
        "(gkmvlp_monai/core/vocabularies/mesh_map.json; gold read by meaning: compound terms assert each part):"
    )
    mesh_terms = mesh_map()["terms"]
    for term, names, _ in ranked:
        overrides = mesh_terms[term].get("qualifier_entities", {})
        notes = [f"{term}/{q} -> {', '.join(e)}" for q, e in overrides.items()]
        meaning = sorted(set(parse_mesh_tag(term).meaning) - set(names))
        notes += [f"by meaning also {', '.join(meaning)}"] if meaning else []
        print(f"  {term:26s} -> {' | '.join(names)}" + (f"   ({'; '.join(notes)})" if notes else ""))
    for g in entity_groups().values():
        print(f"  [group] {g.name:18s} -> {' | '.join(g.entities)}  (CheXpert {g.label!r})")
        print("    (its detail rows score each member against the group's gold: any device tag)")
    print(
        "  (a row is gold when some MeSH tag of the report maps to one of its entities; predicted when one is present)"
    )
    chosen = {"both": ("rules", "test"), "rules": ("rules",), "test": ("test",), "all": ("all",)}[args.split]
    titles = {
        "rules": "RULES split (iu-synth training+validation; the rules were developed on these)",
        "test": "HELD-OUT TEST split (iu-synth test; never read to write rules)",
        "all": "ALL IU reports (rules and test splits together)",
    }
    for name in chosen:
        subset = reports if name == "all" else parts[name]
        print_table(
            titles[name],
            subset,
            [preds[r.uid] for r in subset],
            terms,
            args.extra,
            show_errors=args.show_errors if name == "rules" else "",
        )
    print("\nuncertain policy: uncertain = not present in P/R/F1; 'F1 unc+' counts uncertain as present")
    print("region '(side)': pleural entities compared at the side level (MeSH names only the side)")


if __name__ == "__main__":
    main()
