"""Score the report filter against the MeSH major tags of the 3,955 IU X-ray reports.

A MeSH major tag asserts a finding present (with its location); a report saying "no effusion" gets no
Pleural Effusion tag. So for each entity the gold label is "some MeSH tag of the report maps to this
entity" (``configs/vocab/mesh_map.json``), and the prediction is the filter's ``present`` state.
Uncertain mentions count as *not present* in the main score (MeSH major tags are assertions); the table
also shows F1 when uncertain counts as present. Location agreement is measured on true positives whose
MeSH tags carry a location: side agreement (same set of sides among right/left/midline) and region
overlap (the predicted and MeSH regions share a region).

Run: ``python bench/report_filter.py [--top 10] [--show-errors ENTITY]``.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict

from gkmvlp_monai.data.xrv_assets import iter_iu_report_xml
from gkmvlp_monai.knowledge.iu_xml import parse_iu_xml
from gkmvlp_monai.knowledge.mesh import mesh_entities, mesh_map, parse_mesh_tag
from gkmvlp_monai.knowledge.report_filter import ReportFilter
from gkmvlp_monai.knowledge.vocab import regions


def _sides(names: list[str]) -> frozenset[str]:
    side = {r.name: r.side for r in regions()}
    return frozenset(side[n] for n in names)


def main() -> None:
    """Run the benchmark and print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top", type=int, default=10, help="number of most frequent mapped MeSH finding terms")
    ap.add_argument("--show-errors", default="", help="print false positives/negatives of this entity")
    args = ap.parse_args()

    reports = [parse_iu_xml(x, n) for n, x in iter_iu_report_xml()]
    rf = ReportFilter()
    t0 = time.perf_counter()
    preds = [rf.annotate(" . ".join(p for p in (r.findings, r.impression) if p)) for r in reports]
    elapsed = time.perf_counter() - t0
    golds = [mesh_entities(r.mesh_major) for r in reports]

    term_freq: Counter[str] = Counter()
    for r in reports:
        for tag in set(t.split("/")[0] for t in r.mesh_major):
            term_freq[tag] += 1
    # entities of structure terms come from qualifiers; count terms that map to an entity by themselves
    # or through a finding qualifier
    term_entities: dict[str, set[str]] = defaultdict(set)
    for r in reports:
        for tag in r.mesh_major:
            term_entities[tag.split("/")[0]].update(parse_mesh_tag(tag).entities)
    ranked = [
        t
        for t, _ in term_freq.most_common()
        if term_entities[t] - {"normal", "tail_abnorm_obs"}
        and mesh_map()["terms"].get(t, {}).get("kind") == "finding"
    ][: args.top]

    print(
        f"IU reports: {len(reports)}; filter time {elapsed:.1f} s ({1000 * elapsed / len(reports):.1f} ms/report)"
    )
    print("\nMeSH -> entity mapping used (top terms; gold for an entity = any MeSH tag mapping to it):")
    header = f"{'MeSH term':28s} {'entity':14s} {'n_tag':>5s} {'gold':>5s} {'P':>6s} {'R':>6s} {'F1':>6s} {'F1 unc+':>7s} {'side':>6s} {'region':>6s} {'n_loc':>5s}"
    print(header)
    print("-" * len(header))
    f1s = []
    for term in ranked:
        for name in sorted(term_entities[term] - {"normal", "tail_abnorm_obs"}):
            tp = fp = fn = tpu = fpu = 0
            side_ok = reg_ok = n_loc = 0
            errors = []
            for r, p, g in zip(reports, preds, golds):
                gold = name in g
                state = p.get(name, {}).get("state")
                pred = state == "present"
                predu = state in ("present", "uncertain")
                tp += gold and pred
                fp += pred and not gold
                fn += gold and not pred
                tpu += gold and predu
                fpu += predu and not gold
                if gold != pred:
                    errors.append(
                        (r.uid, "FN" if gold else "FP", state, r.mesh_major, r.findings, r.impression)
                    )
                if gold and pred and g[name]:
                    n_loc += 1
                    side_ok += _sides(p[name]["regions"]) == _sides(g[name])
                    reg_ok += bool(set(p[name]["regions"]) & set(g[name]))
            prec = tp / max(1, tp + fp)
            rec = tp / max(1, tp + fn)
            f1 = 2 * prec * rec / max(1e-9, prec + rec)
            f1u = 2 * tpu / max(1, 2 * tpu + fpu + (tp + fn - tpu))
            f1s.append(f1)
            print(
                f"{term:28s} {name:14s} {term_freq[term]:5d} {tp + fn:5d} {prec:6.3f} {rec:6.3f} {f1:6.3f} {f1u:7.3f} "
                f"{side_ok / max(1, n_loc):6.3f} {reg_ok / max(1, n_loc):6.3f} {n_loc:5d}"
            )
            if name == args.show_errors:
                for e in errors[:40]:
                    print("   ", e)
    print(f"\nmin F1 over the top {len(ranked)} terms: {min(f1s):.3f}; mean {sum(f1s) / len(f1s):.3f}")
    print("uncertain policy: uncertain = not present in P/R/F1; 'F1 unc+' counts uncertain as present")


if __name__ == "__main__":
    main()
