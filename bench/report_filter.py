"""Score the report filter against the MeSH major tags of the 3,955 IU X-ray reports.

The unit is the MeSH finding term (the issue's unit). A term maps to a set of entities
(``configs/vocab/mesh_map.json``: its ``entities`` plus any ``qualifier_entities`` override, e.g.
``Markings`` -> ``marking``, and ``Markings/bronchovascular`` -> ``crowd``). For the row of term T with
entity set E(T):

- gold: some MeSH major tag of the report maps to an entity of E(T) (so ``Granuloma``, ``Calcified
  Granuloma`` and ``Granulomatous Disease`` all count for the ``granuloma`` entity, and ``Cardiac
  Shadow/enlarged`` for ``cardiomegaly``): a report saying "no effusion" gets no tag;
- prediction: the filter's state of some entity of E(T) is ``present``. Uncertain counts as *not
  present* in the main score (MeSH major tags are assertions); ``F1 unc+`` counts it as present.

Terms with several entities get one row (the score) plus one indented detail row per entity.

Location agreement is measured on true positives whose MeSH tags carry a location: ``side`` = same set
of sides (right/left/midline) as the MeSH regions; ``region`` = the predicted and MeSH regions share a
region. For *pleural* entities (all default regions in the ``pleura`` group of regions.json, e.g.
effusion) the MeSH qualifiers only name a side (``Pleural Effusion/right``; the side-only word resolves to
the whole right lung), so their ``region`` column compares sides: the MeSH tag holds no finer location to
compare with the costophrenic angles the filter grounds effusions to. Such rows are marked ``(side)``.

Run: ``PYTHONPATH=. python bench/report_filter.py [--top 10] [--show-errors TERM_OR_ENTITY]``.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gkmvlp_monai.data.xrv_assets import iter_iu_report_xml
from gkmvlp_monai.knowledge.iu_xml import IUReport, parse_iu_xml
from gkmvlp_monai.knowledge.mesh import mesh_entities, mesh_map, parse_mesh_tag
from gkmvlp_monai.knowledge.report_filter import ReportFilter
from gkmvlp_monai.knowledge.vocab import entity, regions

NON_FINDINGS = frozenset({"normal", "tail_abnorm_obs"})


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
    reports: list[IUReport], preds: list[dict[str, dict[str, Any]]], top: int = 10
) -> list[tuple[Score, list[Score]]]:
    """Per top MeSH term: the term's score and, when it maps to several entities, one score per entity."""
    golds = [mesh_entities(r.mesh_major) for r in reports]
    out = []
    for term, names, _ in top_terms(reports, top):
        row = score_row(term, names, reports, preds, golds)
        detail = [score_row(n, (n,), reports, preds, golds) for n in names] if len(names) > 1 else []
        out.append((row, detail))
    return out


def _line(s: Score, n_tag: int | str, indent: str = "") -> str:
    reg = f"{s.region:.3f}" + ("(side)" if s.side_level else "")
    return (
        f"{indent + s.label:28s} {' | '.join(s.entities):18s} {n_tag!s:>5s} {s.gold:5d} {s.precision:6.3f} "
        f"{s.recall:6.3f} {s.f1:6.3f} {s.f1_unc:7.3f} {s.side:6.3f} {reg:>12s} {s.n_loc:5d}"
    )


def main() -> None:
    """Run the benchmark and print the mapping and the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top", type=int, default=10, help="number of most frequent mapped MeSH finding terms")
    ap.add_argument(
        "--show-errors", default="", help="print false positives/negatives of this term or entity"
    )
    args = ap.parse_args()

    reports = load_reports()
    rf = ReportFilter()
    t0 = time.perf_counter()
    preds = [rf.annotate(report_text(r)) for r in reports]
    elapsed = time.perf_counter() - t0
    ranked = top_terms(reports, args.top)
    n_tag = {t: n for t, _, n in ranked}
    rows = score_terms(reports, preds, args.top)

    print(
        f"IU reports: {len(reports)}; filter time {elapsed:.1f} s ({1000 * elapsed / len(reports):.1f} ms/report)"
    )
    print(
        f"\nMeSH term -> entity mapping of the top {len(ranked)} finding terms (configs/vocab/mesh_map.json):"
    )
    terms = mesh_map()["terms"]
    for term, names, _ in ranked:
        overrides = terms[term].get("qualifier_entities", {})
        extra = "; ".join(f"{term}/{q} -> {', '.join(e)}" for q, e in overrides.items())
        print(f"  {term:26s} -> {' | '.join(names)}" + (f"   ({extra})" if extra else ""))
    print(
        "  (a row is gold when some MeSH tag of the report maps to one of its entities; predicted when one is present)"
    )
    header = (
        f"\n{'MeSH term':28s} {'entities':18s} {'n_tag':>5s} {'gold':>5s} {'P':>6s} {'R':>6s} {'F1':>6s} "
        f"{'F1 unc+':>7s} {'side':>6s} {'region':>12s} {'n_loc':>5s}"
    )
    print(header)
    print("-" * len(header))
    for row, detail in rows:
        print(_line(row, n_tag[row.label]))
        for d in detail:
            print(_line(d, "", indent="  . "))
        for s in [row, *detail]:
            if args.show_errors and args.show_errors in (s.label, *s.entities) and (s is row or not detail):
                for e in s.errors[:40]:
                    print("   ", e)
    f1s = [row.f1 for row, _ in rows]
    print(f"\nmin F1 over the top {len(rows)} terms: {min(f1s):.3f}; mean {sum(f1s) / len(f1s):.3f}")
    print("uncertain policy: uncertain = not present in P/R/F1; 'F1 unc+' counts uncertain as present")
    print("region '(side)': pleural entities compared at the side level (MeSH names only the side)")


if __name__ == "__main__":
    main()
