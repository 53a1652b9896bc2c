"""EntityTargetsd and ReportEntitiesd."""

from __future__ import annotations

import pytest
import torch

from gkmvlp_monai.core import vocab
from gkmvlp_monai.knowledge.transforms import EntityTargetsd, ReportEntitiesd


def test_entity_targets_shapes_and_values() -> None:
    item = {
        "entities": {
            "effusion": {"state": "present", "regions": ["left costophrenic angle"]},
            "pneumothorax": {"state": "absent", "regions": []},
            "nodule": {"state": "uncertain", "regions": ["right upper lung zone"]},
        }
    }
    out = EntityTargetsd()(item)
    e, r = len(vocab.entity_names()), len(vocab.region_names())
    assert out["entity_state"].shape == (e,) and out["entity_state"].dtype == torch.int64
    assert out["entity_regions"].shape == (e, r) and out["entity_regions"].dtype == torch.bool
    s = out["entity_state"]
    assert s[vocab.entity_index("effusion")] == 1 and s[vocab.entity_index("pneumothorax")] == 0
    assert s[vocab.entity_index("nodule")] == 2 and s[vocab.entity_index("edema")] == -1
    assert (s == -1).sum() == e - 3
    reg = out["entity_regions"]
    assert reg.sum() == 2
    assert reg[vocab.entity_index("effusion"), vocab.region_index("left costophrenic angle")]
    assert reg[vocab.entity_index("nodule"), vocab.region_index("right upper lung zone")]


def test_entity_targets_errors_and_missing() -> None:
    with pytest.raises(KeyError, match="bogus"):
        EntityTargetsd()({"entities": {"bogus": {"state": "present", "regions": []}}})
    with pytest.raises(KeyError, match="lingula"):
        EntityTargetsd()({"entities": {"effusion": {"state": "present", "regions": ["lingula"]}}})
    with pytest.raises(ValueError, match="maybe"):
        EntityTargetsd()({"entities": {"effusion": {"state": "maybe"}}})
    out = EntityTargetsd(allow_missing_keys=True)({"image": "x"})
    assert (out["entity_state"] == -1).all() and not out["entity_regions"].any()


def test_report_entities_fills_missing_only() -> None:
    t = ReportEntitiesd()
    out = t({"findings": "Small right effusion.", "impression": ""})
    assert out["entities"]["effusion"] == {"state": "present", "regions": ["right costophrenic angle"]}
    kept = t({"findings": "Small right effusion.", "entities": {}})
    assert kept["entities"] == {}
    chained = EntityTargetsd()(t({"impression": "No pneumothorax."}))
    assert chained["entity_state"][vocab.entity_index("pneumothorax")] == 0


def test_report_entities_honours_allow_missing_keys() -> None:
    assert ReportEntitiesd(allow_missing_keys=True)({"image": "x"})["entities"] == {}
    strict = ReportEntitiesd(allow_missing_keys=False)
    with pytest.raises(KeyError, match="entities"):
        strict({"image": "x", "findings": "", "impression": None})
    out = strict({"report": "Left pleural effusion."})
    assert out["entities"]["effusion"]["state"] == "present"
    assert strict({"image": "x", "entities": {}})["entities"] == {}  # an existing key is kept


def test_normal_study_negatives_only_for_reports_without_abnormal_findings() -> None:
    t = EntityTargetsd(normal_study_negatives=True)
    abnormal = [e.name for e in vocab.entities() if e.kind == "abnormal"]
    others = [e.name for e in vocab.entities() if e.kind != "abnormal"]
    # a normal report: only normal-kind observations and negations -> every unmentioned abnormal entity absent
    normal = t({"entities": {"clear": {"state": "present", "regions": []}, "effusion": {"state": "absent"}}})
    s = normal["entity_state"]
    assert all(s[vocab.entity_index(n)] == 0 for n in abnormal)
    assert s[vocab.entity_index("clear")] == 1
    assert all(s[vocab.entity_index(n)] == -1 for n in others if n != "clear")
    # an abnormal report (present or uncertain finding): unmentioned entities stay ignored
    for state in ("present", "uncertain"):
        out = t({"entities": {"granuloma": {"state": state, "regions": []}}})["entity_state"]
        assert out[vocab.entity_index("degenerative")] == -1
        assert (out == -1).sum() == len(vocab.entity_names()) - 1
    # no report at all is not a normal study; the switch is off by default
    assert (t.targets(None)[0] == -1).all()
    assert (EntityTargetsd()({"entities": {}})["entity_state"] == -1).all()
    assert (t({"entities": {}})["entity_state"][[vocab.entity_index(n) for n in abnormal]] == 0).all()
