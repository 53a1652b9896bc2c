"""Evaluation targets from iu-synth's drawn-finding truth."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from gkmvlp_monai.core.vocab import entity_index, entity_names


class DrawnEntityTargetsd(MapTransform):
    """Per-entity image truth of an iu-synth item: 1 drawn, 0 not drawn, -1 unknown.

    On iu-synth the image shows exactly the findings that were drawn (``lesion_labels``, entity names); a
    finding the report mentions but the renderer cannot draw (``undrawn``) is unknown, not absent. This is
    the truth zero-shot evaluation scores against (the report filter's states are what training sees).

    Args:
        keys: key of the drawn entity names (``lesion_labels``).
        undrawn_key: key of the mentioned-but-not-drawn entity names.
        output_key: key of the float ``[E]`` targets.
    """

    def __init__(
        self,
        keys: KeysCollection = "lesion_labels",
        undrawn_key: str = "undrawn",
        output_key: str = "entity_truth",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.undrawn_key = undrawn_key
        self.output_key = output_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            truth = torch.zeros(len(entity_names()), dtype=torch.float32)
            for name in d.get(self.undrawn_key) or []:
                truth[entity_index(name)] = -1.0
            for name in d[key] or []:
                truth[entity_index(name)] = 1.0
            d[self.output_key] = truth
        return d
