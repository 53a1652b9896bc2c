"""bench/report_filter.py scores per MeSH term; the slow test runs it on the real IU reports."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from gkmvlp_monai.data.xrv_assets import AssetUnavailableError
from gkmvlp_monai.knowledge.iu_xml import IUReport
from gkmvlp_monai.knowledge.report_filter import ReportFilter

# bench/ is a script folder, not a package on the path of a plain `pytest` run: load the file itself
_SPEC = importlib.util.spec_from_file_location(
    "bench_report_filter", Path(__file__).resolve().parents[1] / "bench" / "report_filter.py"
)
assert _SPEC is not None and _SPEC.loader is not None
bench = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = bench
_SPEC.loader.exec_module(bench)


def _reports() -> list[IUReport]:
    rows = [
        ("R1", "Crowded bronchovascular markings at the bases.", ["Markings/bronchovascular"]),
        ("R2", "Coarse interstitial markings.", ["Markings/lung/interstitial"]),
        ("R3", "No effusion.", ["normal"]),
        ("R4", "Prominent lung markings.", ["normal"]),
        ("R5", "Small right pleural effusion.", ["Pleural Effusion/right/small"]),
        ("R6", "Left pleural effusion.", ["Pleural Effusion/right"]),
    ]
    return [IUReport(uid=u, findings=f, mesh_major=m) for u, f, m in rows]


def test_multi_entity_term_is_one_row_with_details() -> None:
    reports = _reports()
    sets = bench.term_entity_sets(reports)
    assert sets["Markings"] == ("crowd", "marking") and sets["Pleural Effusion"] == ("effusion",)
    rf = ReportFilter()
    preds = [rf.annotate(bench.report_text(r)) for r in reports]
    rows = {row.label: (row, detail) for row, detail in bench.score_terms(reports, preds, top=10)}
    markings, detail = rows["Markings"]
    assert (markings.tp, markings.fp, markings.fn) == (2, 1, 0)
    assert [d.label for d in detail] == ["crowd", "marking"]
    # per entity, R1 is also a "marking" false positive (its tag maps to crowd only)
    assert (detail[0].tp, detail[1].tp, detail[1].fp) == (1, 1, 2)
    effusion, no_detail = rows["Pleural Effusion"]
    assert not no_detail and effusion.side_level and effusion.n_loc == 2
    # right effusion grounded to the right costophrenic angle agrees with "Pleural Effusion/right" at the
    # side level; the left one does not
    assert effusion.region == pytest.approx(0.5) and effusion.side == pytest.approx(0.5)
    assert bench.is_pleural("effusion") and not bench.is_pleural("opacity")


@pytest.mark.slow
def test_top_mesh_terms_reach_f1_085_on_iu_reports() -> None:
    try:
        reports = bench.load_reports()
    except AssetUnavailableError as err:
        pytest.skip(f"IU reports unavailable: {err}")
    rf = ReportFilter()
    preds = [rf.annotate(bench.report_text(r)) for r in reports]
    rows = bench.score_terms(reports, preds, top=10)
    assert len(rows) == 10
    scores = {row.label: row.f1 for row, _ in rows}
    assert "Markings" in scores and "Calcinosis" in scores
    assert all(f1 >= 0.85 for f1 in scores.values()), scores
