"""MONAI dictionary transforms turning report-filter output into the tensors networks read."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from gkmvlp_monai.core.keys import ENTITY_REGIONS, ENTITY_STATE
from gkmvlp_monai.core.vocab import entities as vocab_entities
from gkmvlp_monai.core.vocab import entity_names, region_names
from gkmvlp_monai.knowledge.report_filter import ReportFilter, report_text

STATE_CODES = {"absent": 0, "present": 1, "uncertain": 2}
UNMENTIONED = -1


class ReportEntitiesd(MapTransform):
    """Fill an item's ``entities`` key by running the report filter on its report text when it is missing.

    Args:
        keys: the entities key to fill (default ``"entities"``).
        report_filter: filter to use (a default :class:`ReportFilter` when None).
        overwrite: recompute even when the key is present.
        allow_missing_keys: when True an item with no report text (no ``findings``, ``impression`` or
            ``report``) gets empty entities; when False such an item raises ``KeyError`` naming the key.
    """

    def __init__(
        self,
        keys: KeysCollection = "entities",
        report_filter: ReportFilter | None = None,
        overwrite: bool = False,
        allow_missing_keys: bool = True,
    ) -> None:
        super().__init__(keys, allow_missing_keys=allow_missing_keys)
        self.filter = report_filter or ReportFilter()
        self.overwrite = overwrite

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.keys:
            if key in d and d[key] is not None and not self.overwrite:
                continue
            text = report_text(d)
            if not text and not self.allow_missing_keys:
                raise KeyError(
                    f"cannot fill {key!r}: the item has no 'findings', 'impression' or 'report' text "
                    "(set allow_missing_keys=True to give it empty entities)"
                )
            d[key] = self.filter.annotate(text)
        return d


class EntityTargetsd(MapTransform):
    """``entities`` dict → ``entity_state`` int64 ``[E]`` and ``entity_regions`` bool ``[E, 29]``.

    States: -1 unmentioned, 0 absent, 1 present, 2 uncertain. Regions are set for present and uncertain
    entities. Unknown entity or region names raise ``KeyError`` naming them.

    Normal studies: a report that names no abnormal finding as present or uncertain is a radiologist's
    statement that the study is normal, i.e. an implicit negation of every abnormal finding. With
    ``normal_study_negatives=True`` the unmentioned *abnormal* entities of such a report become absent
    (0); entities of the ``normal`` / catch-all kinds stay unmentioned, and reports with any present or
    uncertain abnormal finding are unchanged (their unmentioned entities stay -1, ignored by ECLS).
    Without this, findings that reports never negate (degenerative spine, granuloma, calcification,
    tortuous aorta, low volumes) have no negative example at all (``docs/decisions/014-ecls-normal-study-negatives.md``).

    Args:
        keys: the entities key (default ``"entities"``).
        state_key: output key of the state vector.
        regions_key: output key of the region matrix.
        allow_missing_keys: when True an item without entities gets all -1 / all False.
        normal_study_negatives: mark the unmentioned abnormal entities of a normal report absent. An
            item without an ``entities`` key (no report) is never treated as normal.
    """

    def __init__(
        self,
        keys: KeysCollection = "entities",
        state_key: str = ENTITY_STATE,
        regions_key: str = ENTITY_REGIONS,
        allow_missing_keys: bool = False,
        normal_study_negatives: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys=allow_missing_keys)
        self.state_key = state_key
        self.regions_key = regions_key
        self.names = {n: i for i, n in enumerate(entity_names())}
        self.regions = {n: i for i, n in enumerate(region_names())}
        self.normal_study_negatives = normal_study_negatives
        self.abnormal = torch.tensor([e.kind == "abnormal" for e in vocab_entities()], dtype=torch.bool)

    def targets(self, entities: Mapping[str, Mapping[str, Any]] | None) -> tuple[torch.Tensor, torch.Tensor]:
        """State vector and region matrix of one ``entities`` dict."""
        state = torch.full((len(self.names),), UNMENTIONED, dtype=torch.int64)
        regions = torch.zeros((len(self.names), len(self.regions)), dtype=torch.bool)
        for name, value in (entities or {}).items():
            if name not in self.names:
                raise KeyError(
                    f"unknown entity {name!r} in 'entities'; see gkmvlp_monai/core/vocabularies/entities.json"
                )
            if value.get("state") not in STATE_CODES:
                raise ValueError(
                    f"entity {name!r}: state {value.get('state')!r} not in {sorted(STATE_CODES)}"
                )
            i = self.names[name]
            state[i] = STATE_CODES[value["state"]]
            if value["state"] != "absent":
                for r in value.get("regions", []):
                    if r not in self.regions:
                        raise KeyError(
                            f"entity {name!r}: unknown region {r!r}; see gkmvlp_monai/core/vocabularies/regions.json"
                        )
                    regions[i, self.regions[r]] = True
        if self.normal_study_negatives and entities is not None:
            positive = (state == STATE_CODES["present"]) | (state == STATE_CODES["uncertain"])
            if not bool((positive & self.abnormal).any()):
                state[(state == UNMENTIONED) & self.abnormal] = STATE_CODES["absent"]
        return state, regions

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[self.state_key], d[self.regions_key] = self.targets(d[key])
        if not any(k in d for k in self.keys) and self.allow_missing_keys:
            d[self.state_key], d[self.regions_key] = self.targets(None)
        return d
