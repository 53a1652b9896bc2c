"""Clinical efficacy of generated reports: entity-level precision, recall and F1.

The project's report filter (:class:`gkmvlp_monai.knowledge.report_filter.ReportFilter`) reads both the
generated and the reference report. An entity is **positive** in a report when the filter finds it
``present``; ``absent``, ``uncertain`` and unmentioned all count as negative. Per entity ``e`` over the
N reports: ``TP_e`` = positive in both, ``FP_e`` = positive only in the generated report, ``FN_e`` =
positive only in the reference.

- **micro** P/R/F1: from ``sum_e TP_e``, ``sum_e FP_e``, ``sum_e FN_e`` over every entity (an entity
  the generator invents counts as false positives even if no reference has it);
- **macro** P/R/F1: mean over the entities positive in at least one reference of the per-entity
  P, R and F1 (a ratio with a zero denominator is 0, e.g. precision of an entity never generated).

With ``groups=True`` (the default) the members of an entity group of
``gkmvlp_monai/core/vocabularies/finding_classes.json`` count as the group: a generated "pacemaker" matches a reference
"pacer leads" (both ``support_devices``, the CheXpert *Support Devices* label) instead of scoring one
false positive and one false negative.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gkmvlp_monai.core.vocab import entities, entity_groups
from gkmvlp_monai.engine.accumulate import TextPairAccumulator

ENTITY_KINDS = ("normal", "abnormal", "catch-all")


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else 0.0


def _f1(p: float, r: float) -> float:
    return _ratio(2 * p * r, p + r)


def positive_entities(
    report_filter: Any, text: str, keep: set[str] | None = None, groups: bool = False
) -> set[str]:
    """Entities the report filter finds ``present`` in ``text`` (restricted to ``keep`` when given).

    With ``groups`` each member of an entity group is replaced by the group's name (``support_devices``).
    """
    found = {name for name, v in report_filter.annotate(str(text or "")).items() if v["state"] == "present"}
    found = found if keep is None else found & keep
    if groups:
        for g in entity_groups().values():
            if found & set(g.entities):
                found = (found - set(g.entities)) | {g.name}
    return found


def entity_prf(reference_sets: Sequence[set[str]], hypothesis_sets: Sequence[set[str]]) -> dict[str, float]:
    """Micro and macro entity P/R/F1 from per-report sets of positive entities.

    Args:
        reference_sets: positive entities of each reference report.
        hypothesis_sets: positive entities of each generated report, same order.

    Returns:
        ``ce_micro_{precision,recall,f1}``, ``ce_macro_{precision,recall,f1}`` and
        ``ce_num_entities`` (entities positive in some reference: the macro mean's size).

    Raises:
        ValueError: lengths differ.
    """
    if len(reference_sets) != len(hypothesis_sets):
        raise ValueError(f"{len(reference_sets)} reference but {len(hypothesis_sets)} generated entity sets")
    tp: dict[str, int] = {}
    fp: dict[str, int] = {}
    fn: dict[str, int] = {}
    for ref, hyp in zip(reference_sets, hypothesis_sets):
        for e in ref & hyp:
            tp[e] = tp.get(e, 0) + 1
        for e in hyp - ref:
            fp[e] = fp.get(e, 0) + 1
        for e in ref - hyp:
            fn[e] = fn.get(e, 0) + 1
    stp, sfp, sfn = sum(tp.values()), sum(fp.values()), sum(fn.values())
    micro_p, micro_r = _ratio(stp, stp + sfp), _ratio(stp, stp + sfn)
    in_refs = sorted(set(tp) | set(fn))  # positive in at least one reference
    ps, rs, fs = [], [], []
    for e in in_refs:
        p = _ratio(tp.get(e, 0), tp.get(e, 0) + fp.get(e, 0))
        r = _ratio(tp.get(e, 0), tp.get(e, 0) + fn.get(e, 0))
        ps.append(p)
        rs.append(r)
        fs.append(_f1(p, r))
    n = len(in_refs)
    return {
        "ce_micro_precision": micro_p,
        "ce_micro_recall": micro_r,
        "ce_micro_f1": _f1(micro_p, micro_r),
        "ce_macro_precision": sum(ps) / n if n else 0.0,
        "ce_macro_recall": sum(rs) / n if n else 0.0,
        "ce_macro_f1": sum(fs) / n if n else 0.0,
        "ce_num_entities": float(n),
    }


def _kept_entities(kinds: Sequence[str]) -> set[str]:
    bad = [k for k in kinds if k not in ENTITY_KINDS]
    if bad:
        raise ValueError(f"unknown entity kinds {bad}; known: {list(ENTITY_KINDS)}")
    return {e.name for e in entities() if e.kind in kinds}


def clinical_efficacy(
    references: Sequence[str],
    hypotheses: Sequence[str],
    report_filter: Any = None,
    kinds: Sequence[str] = ENTITY_KINDS,
    groups: bool = True,
) -> dict[str, float]:
    """Entity-level clinical efficacy of generated reports (see the module docstring).

    Args:
        references: reference reports.
        hypotheses: generated reports, same order.
        report_filter: a ``ReportFilter`` (default: a new one with default settings).
        kinds: entity kinds scored (``normal``, ``abnormal``, ``catch-all``; default all).
        groups: score the members of an entity group as the group (``support_devices``).

    Returns:
        see :func:`entity_prf`.
    """
    if report_filter is None:
        from gkmvlp_monai.knowledge.report_filter import ReportFilter

        report_filter = ReportFilter()
    keep = _kept_entities(kinds)
    refs = [positive_entities(report_filter, r, keep, groups) for r in references]
    hyps = [positive_entities(report_filter, h, keep, groups) for h in hypotheses]
    return entity_prf(refs, hyps)


class ClinicalEfficacy(TextPairAccumulator):
    """Ignite metric: :func:`clinical_efficacy` over an epoch's generated and reference reports.

    ``output_transform`` returns ``(generated list[str], references list[str])`` (``None``: skipped
    batch). The attached name holds ``ce_micro_f1``; every score is published as well.

    Args:
        kinds: entity kinds scored.
        groups: score the members of an entity group as the group (``support_devices``).
        prefix: prefix of the published keys.
        output_transform: see above.
        device: ignite device.
    """

    def __init__(
        self,
        kinds: Sequence[str] = ENTITY_KINDS,
        groups: bool = True,
        prefix: str = "",
        output_transform: Callable[[Any], Any] = lambda x: x,
        device: str = "cpu",
    ) -> None:
        from gkmvlp_monai.knowledge.report_filter import ReportFilter

        self.kinds = tuple(kinds)
        self.groups = groups
        self.keep = _kept_entities(self.kinds)
        self.prefix = prefix
        self.report_filter = ReportFilter()
        super().__init__(output_transform=output_transform, device=device)

    def compute(self) -> float:
        hyp, ref = self.collected()
        refs = [positive_entities(self.report_filter, r, self.keep, self.groups) for r in ref]
        hyps = [positive_entities(self.report_filter, h, self.keep, self.groups) for h in hyp]
        self.scores = entity_prf(refs, hyps)
        return self.scores["ce_micro_f1"]

    def completed(self, engine: Any, name: str) -> None:
        value = self.compute()
        engine.state.metrics[name] = value
        for k, v in self.scores.items():
            engine.state.metrics[self.prefix + k] = v
