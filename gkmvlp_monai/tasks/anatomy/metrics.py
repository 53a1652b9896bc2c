"""Region-box metrics: mean IoU over present regions, per region, and the metric input transform."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced
from monai.utils import CommonKeys as Keys

from gkmvlp_monai.core.boxes import box_iou_paired
from gkmvlp_monai.core.vocab import region_names
from gkmvlp_monai.models.anatomy import split_output


def mean_iou_per_region(
    pred: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """IoU sums and counts per region.

    Args:
        pred: ``[B, R, 4]`` predicted boxes.
        truth: ``[B, R, 4]`` true boxes (same frame).
        mask: ``[B, R]`` bool, truth known.

    Returns:
        ``(iou [B, R], sums [R], counts [R])``.
    """
    iou = box_iou_paired(pred.float(), truth.float())
    m = mask.bool()
    return iou, (iou * m).sum(0), m.sum(0)


class RegionIoU(Metric):
    """Ignite metric: mean IoU of predicted region boxes over an epoch.

    The overall value is the mean over all known region instances (every region of every image with a
    true box counts once); per-region values average over the images where the region is known.

    ``output_transform`` must give ``(pred, boxes, mask)`` (see :func:`iou_inputs`); ``pred`` may be the
    network output ``[B, R, 5]`` or boxes ``[B, R, 4]``; ``None`` (a skipped batch) is ignored.

    Args:
        per_region: publish ``{prefix}mean_iou`` and ``{prefix}iou_<region>`` (spaces -> ``_``) instead of a
            single float.
        prefix: key prefix of the published values (per-region mode).
        names: region names (default: the vocabulary's 29).
        output_transform: engine output -> ``(pred, boxes, mask)``.
        device: accumulation device.
    """

    def __init__(
        self,
        per_region: bool = False,
        prefix: str = "",
        names: Sequence[str] | None = None,
        output_transform: Callable = lambda x: x,
        device: str | torch.device = "cpu",
    ) -> None:
        self.per_region, self.prefix = per_region, prefix
        self.names = list(names) if names is not None else region_names()
        super().__init__(output_transform=output_transform, device=device)

    @reinit__is_reduced
    def reset(self) -> None:
        self._sums = torch.zeros(len(self.names), dtype=torch.float64)
        self._counts = torch.zeros(len(self.names), dtype=torch.float64)

    @reinit__is_reduced
    def update(self, output: Any) -> None:
        if output is None:
            return
        pred, boxes, mask = output
        if pred.shape[-1] == 5:
            pred = split_output(pred)[0]
        _, sums, counts = mean_iou_per_region(pred.detach(), boxes.detach(), mask)
        self._sums += sums.double().cpu()
        self._counts += counts.double().cpu()

    def compute(self) -> float | dict[str, float]:
        if self._counts.sum() == 0:
            raise RuntimeError("RegionIoU: no known region box was seen")
        mean = float(self._sums.sum() / self._counts.sum())
        if not self.per_region:
            return mean
        out = {f"{self.prefix}mean_iou": mean}
        for name, s, c in zip(self.names, self._sums.tolist(), self._counts.tolist()):
            if c > 0:
                out[f"{self.prefix}iou_{name.replace(' ', '_')}"] = s / c
        return out


def iou_inputs(boxes_key: str = "boxes") -> Callable[[dict], Any]:
    """Output transform for :class:`RegionIoU`: ``(pred[boxes_key], label boxes, label mask)``."""

    def _get(output: dict) -> Any:
        pred = output.get(Keys.PRED) if isinstance(output, dict) else None
        if pred is None:
            return None
        return pred[boxes_key], output[Keys.LABEL]["boxes"], output[Keys.LABEL]["mask"]

    return _get
