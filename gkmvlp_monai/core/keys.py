"""The batch-key contract: the dictionary keys every transform, network and metric agrees on.

Each key has one meaning, one dtype and one shape, written here once (:data:`CONTRACT`). Shapes are per
item, as the transforms leave them; a collated batch adds a leading ``B``. Letters are sizes that must
agree across the keys of one batch:

- ``S``: image side (square after ``ResizeLongestPadd``); ``R``: anatomical regions (29);
- ``E``: entities (the vocabulary's 82); ``L``: report tokens (``max_text_length``);
- ``Lq``/``La``: question/answer tokens; ``C``: classes; ``K``: localization findings;
- outputs: ``D`` embedding width, ``h``/``w`` feature-map grid, ``N`` the batch's ITC candidates.

:func:`check_batch` checks a batch (or one item) against the contract and raises
:class:`BatchContractError` naming the key, the expected and the actual dtype and shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

# ---------------------------------------------------------------------------------- the key names
IMAGE = "image"
REGION_BOXES = "region_boxes"
REGION_MASK = "region_mask"
REGION_SOURCE = "region_source"
REGION_CONFIDENCE = "region_confidence"
ENTITY_STATE = "entity_state"
ENTITY_REGIONS = "entity_regions"
ENTITY_TRUTH = "entity_truth"
INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
REPORT = "report"
LABEL = "label"
QUESTION_IDS = "question_ids"
QUESTION_MASK = "question_mask"
ANSWER_IDS = "answer_ids"
ANSWER_MASK = "answer_mask"
ANSWER_LABEL = "answer_label"
IS_CLOSED = "is_closed"
IMAGE_INDEX = "image_index"
# network and inferer outputs
LOSS = "loss"
ECLS_PROBS = "ecls_probs"
PATCH_ATTN = "patch_attn"
IMAGE_EMBED = "image_embed"
TEXT_EMBED = "text_embed"
SIM_I2T = "sim_i2t"
ENTITY_TARGETS = "entity_targets"

#: what one GK-MVLP pre-training item holds after the bundle's transforms
PRETRAIN_KEYS = (IMAGE, REGION_BOXES, REGION_MASK, ENTITY_STATE, ENTITY_REGIONS, INPUT_IDS, ATTENTION_MASK)

TEXT = "str"  # the dtype of text values (a str per item, a list of str per batch)
NUMBER = "float"  # a Python number per item; a batch holds a float tensor [B] (or a list of numbers)


@dataclass(frozen=True)
class Form:
    """One accepted dtype and per-item shape of a key (ints are fixed sizes, strings size letters)."""

    dtype: torch.dtype | str
    shape: tuple[int | str, ...]

    def describe(self, batched: bool) -> str:
        """``float32 [B, R, 4]`` style."""
        dtype = self.dtype if isinstance(self.dtype, str) else str(self.dtype).replace("torch.", "")
        shape = (("B",) if batched else ()) + self.shape
        return f"{dtype} [{', '.join(map(str, shape))}]"


@dataclass(frozen=True)
class BatchKey:
    """A key of the contract: its name, accepted forms, meaning, and who writes and reads it."""

    name: str
    forms: tuple[Form, ...]
    meaning: str
    written_by: str
    read_by: str

    def describe(self, batched: bool = True) -> str:
        """The accepted forms, ``" or "``-joined."""
        return " or ".join(f.describe(batched) for f in self.forms)


def _key(name: str, forms: list[tuple[Any, tuple]], meaning: str, written_by: str, read_by: str) -> BatchKey:
    return BatchKey(name, tuple(Form(d, s) for d, s in forms), meaning, written_by, read_by)


_F32, _I64, _BOOL = torch.float32, torch.int64, torch.bool
_OUT = (torch.float32, torch.bfloat16)  # network outputs (bfloat16 under CPU autocast)

#: the contract, by key name
CONTRACT: dict[str, BatchKey] = {
    k.name: k
    for k in (
        _key(
            IMAGE,
            [(_F32, (1, "S", "S"))],
            "grey image, intensities in [0, 1]",
            "cxr_transforms",
            "every network",
        ),
        _key(
            REGION_BOXES,
            [(_F32, ("R", 4))],
            "anatomical region boxes [x1, y1, x2, y2] in the image's pixels",
            "PrepareBoxesd, MapBoxesToImaged",
            "region pooling, grounding",
        ),
        _key(
            REGION_MASK,
            [(_BOOL, ("R",))],
            "region box known and at least one pixel",
            "PrepareBoxesd, MapBoxesToImaged",
            "region pooling",
        ),
        _key(
            REGION_SOURCE,
            [(TEXT, ())],
            "where the region boxes came from: annotation, model, atlas or default",
            "ExtractAnatomicalRegionsd",
            "predictions, logs",
        ),
        _key(
            REGION_CONFIDENCE,
            [(NUMBER, ())],
            "confidence of the region source (1 annotation, 0 default)",
            "ExtractAnatomicalRegionsd",
            "predictions, logs",
        ),
        _key(
            ENTITY_STATE,
            [(_I64, ("E",))],
            "report states: -1 unmentioned, 0 absent, 1 present, 2 uncertain",
            "EntityTargetsd",
            "ECLS, grounding, zero-shot evaluation without image truth",
        ),
        _key(
            ENTITY_REGIONS,
            [(_BOOL, ("E", "R"))],
            "regions the report places each entity in",
            "EntityTargetsd",
            "grounding",
        ),
        _key(
            ENTITY_TRUTH,
            [(_F32, ("E",))],
            "image truth: 1 present (drawn), 0 absent, -1 unknown",
            "DrawnEntityTargetsd (iu-synth)",
            "zero-shot evaluation",
        ),
        _key(INPUT_IDS, [(_I64, ("L",))], "report token ids", "TokenizeReportd", "ITC, ITM, LM"),
        _key(ATTENTION_MASK, [(_I64, ("L",))], "1 for real report tokens", "TokenizeReportd", "ITC, ITM, LM"),
        _key(REPORT, [(TEXT, ())], "report text", "datalist", "retrieval and captioning metrics"),
        _key(
            LABEL,
            [(_F32, ("C",)), (_I64, ()), (_F32, ("K", "S", "S"))],
            "classification: multi-label 1/0/-1 (ignored) or a class index; localization: finding masks",
            "ClassificationLabeld, FindingMasksd",
            "task losses and metrics",
        ),
        _key(QUESTION_IDS, [(_I64, ("Lq",))], "question token ids", "VQATextd", "VQA network"),
        _key(QUESTION_MASK, [(_I64, ("Lq",))], "1 for real question tokens", "VQATextd", "VQA network"),
        _key(ANSWER_IDS, [(_I64, ("La",))], "answer token ids", "VQATextd", "VQA generation loss"),
        _key(ANSWER_MASK, [(_I64, ("La",))], "1 for real answer tokens", "VQATextd", "VQA generation loss"),
        _key(
            ANSWER_LABEL,
            [(_I64, ())],
            "answer class, -1 outside the vocabulary",
            "VQATextd",
            "VQA loss, metrics",
        ),
        _key(IS_CLOSED, [(_BOOL, ())], "closed (yes/no) question", "VQATextd", "VQA metrics"),
        _key(IMAGE_INDEX, [(_I64, ())], "picture id of a question", "VQADataset", "VQA image sharing"),
        _key(
            ECLS_PROBS,
            [(d, ("E", 3)) for d in _OUT],
            "entity state probabilities (absent, present, uncertain)",
            "GKMVLP",
            "zero-shot metrics",
        ),
        _key(
            PATCH_ATTN,
            [(d, ("E", "h", "w")) for d in _OUT],
            "GK patch attention per entity",
            "GKMVLP",
            "grounding, overlays",
        ),
        _key(
            IMAGE_EMBED,
            [(d, ("D",)) for d in _OUT],
            "L2-normalised ITC image embedding",
            "GKMVLP",
            "retrieval",
        ),
        _key(
            TEXT_EMBED,
            [(d, ("D",)) for d in _OUT],
            "L2-normalised ITC report embedding",
            "GKMVLP",
            "retrieval",
        ),
        _key(SIM_I2T, [(d, ("B",)) for d in _OUT], "image-to-report similarities", "GKMVLP", "ITM mining"),
        _key(
            ENTITY_TARGETS,
            [(_F32, ("E",))],
            "zero-shot targets: 1 present, 0 absent, -1 ignored",
            "PretrainEvalInferer",
            "zero-shot AUC",
        ),
    )
}


class BatchContractError(ValueError):
    """A batch key is missing or does not have the contract's dtype or shape."""


def _actual(value: Any) -> tuple[torch.dtype | str, tuple[int, ...]] | None:
    if isinstance(value, torch.Tensor):
        return value.dtype, tuple(value.shape)
    if isinstance(value, np.ndarray):
        try:
            return torch.from_numpy(np.empty(0, dtype=value.dtype)).dtype, value.shape
        except TypeError:  # object or string arrays
            return None
    return None


def _matches(form: Form, value: Any, batched: bool, sizes: dict[str, int]) -> dict[str, int] | None:
    """The size letters ``value`` binds when it has ``form`` (consistent with ``sizes``), else ``None``."""
    shape = (("B",) if batched else ()) + form.shape
    if form.dtype == TEXT:
        if not batched:
            return dict(sizes) if isinstance(value, str) else None
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return _bind(("B",), (len(value),), sizes)
        return None
    if form.dtype == NUMBER:
        if not batched:
            return dict(sizes) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        if isinstance(value, (list, tuple)):
            ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            return _bind(("B",), (len(value),), sizes) if ok else None
        actual = _actual(value)
        if actual is None or not actual[0].is_floating_point:
            return None
        return _bind(shape, actual[1], sizes)
    actual = _actual(value)
    if actual is None or actual[0] != form.dtype:
        return None
    return _bind(shape, actual[1], sizes)


def _bind(
    shape: tuple[int | str, ...], actual: tuple[int, ...], sizes: dict[str, int]
) -> dict[str, int] | None:
    if len(shape) != len(actual):
        return None
    bound = dict(sizes)
    for want, got in zip(shape, actual):
        if isinstance(want, int):
            if want != got:
                return None
        elif bound.setdefault(want, got) != got:
            return None
    return bound


def _show(value: Any) -> str:
    actual = _actual(value)
    if actual is not None:
        dtype = str(actual[0]).replace("torch.", "")
        return f"{dtype} [{', '.join(map(str, actual[1]))}]"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__} of {len(value)}"
    return type(value).__name__


def check_batch(
    batch: Mapping[str, Any],
    keys: Iterable[str],
    batched: bool = True,
    sizes: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """Check that ``batch`` holds ``keys`` in the contract's dtypes and shapes, with consistent sizes.

    Args:
        batch: a collated batch (``batched=True``) or one transformed item.
        keys: contract keys to check (others in ``batch`` are ignored).
        batched: ``batch`` has the leading batch dimension ``B``.
        sizes: sizes known beforehand, e.g. ``{"R": 29, "S": 224}``.

    Returns:
        the sizes the batch binds (``{"B": 8, "S": 224, "R": 29, ...}``).

    Raises:
        ValueError: a key is not in the contract.
        BatchContractError: a key is missing, or its value has another dtype or shape than the contract
            or disagrees on a size with another key (the message names the key and both).
    """
    bound = dict(sizes or {})
    for key in keys:
        if key not in CONTRACT:
            raise ValueError(f"{key!r} is not a key of the batch contract (gkmvlp_monai/core/keys.py)")
        spec = CONTRACT[key]
        if key not in batch:
            raise BatchContractError(
                f"batch has no {key!r} (expected {spec.describe(batched)}: {spec.meaning}); "
                f"it has {sorted(map(str, batch))}"
            )
        for form in spec.forms:
            match = _matches(form, batch[key], batched, bound)
            if match is not None:
                bound = match
                break
        else:
            known = ", ".join(f"{k}={v}" for k, v in sorted(bound.items()))
            raise BatchContractError(
                f"batch[{key!r}]: expected {spec.describe(batched)}, got {_show(batch[key])}"
                + (f" (sizes so far: {known})" if known else "")
            )
    return bound
