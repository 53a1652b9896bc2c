"""Glue for the classification bundle: labels, losses, data fractions, batches and prediction files.

The bundle drives stock MONAI engines with ``image``/``label`` dict batches:

- :class:`ClassificationLabeld` turns a datalist ``label`` into the tensor the loss expects and applies
  the uncertainty policy (multi-label ``-1`` entries: ``ignore`` (default, left out of the loss and the
  metrics), ``zeros`` or ``ones``);
- :class:`MaskedBCEWithLogitsLoss` is the multi-label loss over non-ignored entries;
  :func:`classification_loss` picks it or cross-entropy from the label type;
- :func:`training_items` reads a data fraction (the datalist's ``training_<p>pct`` key, or the same nested
  deterministic subset :func:`gkmvlp_monai.data.datalist.training_fractions` would write);
- :func:`prepare_zero_shot_batch` hands the region boxes to the zero-shot network as keyword arguments;
- :func:`scores_and_targets` is the metrics' output transform;
- :class:`ClassificationInferer` gives the scores and the image embedding of the OOD statistics;
- :class:`PredictionsWriter` writes per-image class probabilities with each image's view, scope and OOD
  score (inference): ``predictions.csv`` (the class columns first, as before) and ``predictions.json``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.inferers import Inferer
from monai.transforms import MapTransform
from monai.utils import CommonKeys as Keys
from torch import nn

from gkmvlp_monai.data.datalist import load_datalist
from gkmvlp_monai.engine.ood import image_embedding

logger = logging.getLogger(__name__)

UNCERTAIN_POLICIES = ("ignore", "zeros", "ones")
LABEL_TYPES = ("multilabel", "multiclass")

__all__ = [
    "ClassificationInferer",
    "ClassificationLabeld",
    "MaskedBCEWithLogitsLoss",
    "classification_loss",
    "datalist_label_names",
    "datalist_label_type",
    "datalist_meta",
    "prepare_zero_shot_batch",
    "scores_and_targets",
    "training_items",
]


def datalist_meta(datalist_file: str) -> dict[str, Any]:
    """``label_names`` and ``label_type`` of a datalist (with a clear error when it has no labels)."""
    path = Path(datalist_file)
    if not path.is_file():
        raise FileNotFoundError(f"datalist {path} not found")
    doc = json.loads(path.read_text(encoding="utf-8"))
    names = doc.get("label_names") or []
    if not names:
        raise ValueError(f"{path}: no 'label_names'; a classification datalist needs class names")
    label_type = doc.get("label_type", "multilabel")
    if label_type not in LABEL_TYPES:
        raise ValueError(f"{path}: label_type {label_type!r} is not one of {LABEL_TYPES}")
    return {"label_names": list(names), "label_type": label_type}


def datalist_label_names(datalist_file: str) -> list[str]:
    """The class names of a classification datalist (see :func:`datalist_meta`)."""
    return datalist_meta(datalist_file)["label_names"]


def datalist_label_type(datalist_file: str) -> str:
    """``"multilabel"`` or ``"multiclass"``: the label type of a classification datalist."""
    return datalist_meta(datalist_file)["label_type"]


def training_items(datalist_file: str, fraction: float = 1.0, seed: int = 0) -> list[dict[str, Any]]:
    """Training items of a data fraction.

    Uses the datalist's ``training_<p>pct`` key when it has one; otherwise takes the nested deterministic
    subset of :func:`gkmvlp_monai.data.datalist.training_fractions` (same seed convention: the datalist's
    ``seed`` field, else ``seed``), so a fraction is the same items whichever way it is read.

    Args:
        datalist_file: datalist JSON.
        fraction: in (0, 1]; 1 is the whole ``training`` split.
        seed: subset seed when the datalist records none.

    Returns:
        Items with absolute paths.
    """
    return load_datalist(datalist_file, "training", fraction=fraction, seed=seed)


def inference_items(
    datalist_file: str, split: str = "test", label_names: list[str] | None = None
) -> list[dict[str, Any]]:
    """The ``image`` and ``view`` (``""`` when unrecorded) of every item of a split: what inference reads.

    With ``label_names`` (the classes inference names the network's outputs by), a datalist that names
    other classes gets a warning: a checkpoint trained on those needs them at inference (``--label_set``
    or ``--label_names``), or its scores are written under the wrong names.
    """
    items = load_datalist(datalist_file, split)
    declared = json.loads(Path(datalist_file).read_text(encoding="utf-8")).get("label_names")
    if label_names is not None and declared and list(declared) != list(label_names):
        logger.warning(
            "%s names the classes %s; inference names the outputs %s (pass --label_names or --label_set "
            "if the checkpoint was trained on the datalist's classes)",
            datalist_file,
            list(declared),
            list(label_names),
        )
    return [{"image": it["image"], "view": it.get("view", "")} for it in items]


class ClassificationLabeld(MapTransform):
    """Datalist ``label`` -> loss target: float32 ``[C]`` (multi-label) or int64 scalar (multi-class).

    Args:
        keys: label key(s).
        num_classes: number of classes (checked).
        label_type: ``"multilabel"`` or ``"multiclass"``.
        uncertain: multi-label policy for ``-1`` (uncertain): ``"ignore"`` keeps -1 (left out of loss and
            metrics), ``"zeros"`` maps it to 0, ``"ones"`` to 1.
        allow_missing_keys: do not fail on items without a label.
    """

    def __init__(
        self,
        keys: Any = "label",
        num_classes: int = 14,
        label_type: str = "multilabel",
        uncertain: str = "ignore",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if label_type not in LABEL_TYPES:
            raise ValueError(f"unknown label_type {label_type!r}; use one of {LABEL_TYPES}")
        if uncertain not in UNCERTAIN_POLICIES:
            raise ValueError(f"unknown uncertainty policy {uncertain!r}; use one of {UNCERTAIN_POLICIES}")
        self.num_classes = num_classes
        self.label_type = label_type
        self.uncertain = uncertain

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        where = d.get("image") if isinstance(d.get("image"), str) else "item"
        for key in self.key_iterator(d):
            value = d[key]
            if self.label_type == "multiclass":
                arr = np.asarray(value).reshape(-1)
                if arr.size != 1 or not 0 <= int(arr[0]) < self.num_classes or arr[0] != int(arr[0]):
                    raise ValueError(
                        f"{where}: multiclass {key} {value!r} is not an index < {self.num_classes}"
                    )
                d[key] = torch.tensor(int(arr[0]), dtype=torch.long)
                continue
            arr = np.asarray(value, dtype=np.float32).reshape(-1)
            if arr.size != self.num_classes:
                raise ValueError(f"{where}: {key} has {arr.size} values, expected {self.num_classes}")
            if not np.isin(arr, (-1.0, 0.0, 1.0)).all():
                raise ValueError(f"{where}: {key} values must be 1, 0 or -1, got {sorted(set(arr.tolist()))}")
            if self.uncertain == "zeros":
                arr = np.where(arr == -1, 0.0, arr)
            elif self.uncertain == "ones":
                arr = np.where(arr == -1, 1.0, arr)
            d[key] = torch.as_tensor(arr.astype(np.float32))
        return d


class MaskedBCEWithLogitsLoss(nn.Module):
    """Binary cross-entropy with logits averaged over the entries whose target is not ``ignore_value``.

    Args:
        ignore_value: target value to leave out (uncertain labels under the ``ignore`` policy).
        pos_weight: optional ``[C]`` weight of positive entries.
    """

    def __init__(self, ignore_value: float = -1.0, pos_weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.ignore_value = ignore_value
        self.register_buffer(
            "pos_weight", None if pos_weight is None else torch.as_tensor(pos_weight).float()
        )

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.shape != target.shape:
            raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(target.shape)} differ")
        keep = (target != self.ignore_value).float()
        loss = nn.functional.binary_cross_entropy_with_logits(
            logits, target.clamp(min=0).float(), reduction="none", pos_weight=self.pos_weight
        )
        return (loss * keep).sum() / keep.sum().clamp(min=1.0)


def classification_loss(label_type: str = "multilabel") -> nn.Module:
    """The loss of a label type: masked BCE (multi-label) or cross-entropy (multi-class)."""
    if label_type == "multilabel":
        return MaskedBCEWithLogitsLoss()
    if label_type == "multiclass":
        return nn.CrossEntropyLoss()
    raise ValueError(f"unknown label_type {label_type!r}; use one of {LABEL_TYPES}")


def prepare_zero_shot_batch(
    batchdata: dict[str, Any],
    device: str | torch.device | None = None,
    non_blocking: bool = False,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor | None, tuple, dict[str, torch.Tensor]]:
    """``(image, label, (), {region_boxes, region_mask})`` for ``ZeroShotClassifier`` (boxes when present)."""

    def move(x: torch.Tensor) -> torch.Tensor:
        return x.to(device=device, non_blocking=non_blocking, **kwargs)

    extra = {k: move(batchdata[k]) for k in ("region_boxes", "region_mask") if k in batchdata}
    label = batchdata.get(Keys.LABEL)
    return move(batchdata[Keys.IMAGE]), None if label is None else move(label), (), extra


def scores_and_targets(activation: str | None = "sigmoid"):
    """Metric output transform: ``(scores, targets)`` from an engine output (``None`` for a skipped batch).

    Args:
        activation: ``"sigmoid"`` (multi-label logits), ``"softmax"`` (multi-class logits) or ``None``
            (the network already outputs probabilities, e.g. zero-shot).
    """
    if activation not in ("sigmoid", "softmax", None):
        raise ValueError(f"unknown activation {activation!r}")

    def _get(output: dict) -> Any:
        pred = output.get(Keys.PRED) if isinstance(output, dict) else None
        if pred is None:
            return None
        pred = pred.detach().float()
        if activation == "sigmoid":
            pred = pred.sigmoid()
        elif activation == "softmax":
            pred = pred.softmax(-1)
        return pred, output[Keys.LABEL]

    return _get


def score_activation(label_type: str) -> str:
    """Activation turning a classifier's logits into scores for ``label_type``."""
    return "softmax" if label_type == "multiclass" else "sigmoid"


class ClassificationInferer(Inferer):
    """The network's output and the image embedding of the OOD statistics (``{"pred", "image_embed"}``).

    A classifier (``features`` + ``head``) runs its encoder once: ``head(dropout(features(x)))`` is its
    ``forward``. Any other network (zero-shot) is called as is and embedded by
    :func:`gkmvlp_monai.engine.ood.image_embedding`.
    """

    def __call__(self, inputs: torch.Tensor, network: nn.Module, *args: Any, **kwargs: Any) -> dict:
        net = getattr(network, "module", network)
        if hasattr(net, "features") and hasattr(net, "head") and not args and not kwargs:
            embed = net.features(inputs)
            return {Keys.PRED: net.head(net.dropout(embed)), "image_embed": embed}
        return {Keys.PRED: network(inputs, *args, **kwargs), "image_embed": image_embedding(network, inputs)}
