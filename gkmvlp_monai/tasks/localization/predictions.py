"""Localization predictions: PNG overlays of the predicted maps beside the truth."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ignite.engine import Engine, Events


class LocalizationOverlays:
    """Write PNG overlays (image, target outline in green, predicted map in red) during an evaluation.

    One PNG per (image, finding drawn in the target or predicted above ``threshold``), for the first
    ``num_images`` images with such a finding; the predicted outline is yellow.

    Args:
        output_dir: folder for the PNGs (created).
        findings: target finding names (channel order).
        num_images: images to draw.
        activation: ``"sigmoid"`` for logits (fine-tuned segmenter), ``None`` for maps in [0, 1].
        threshold: level of the predicted outline.
    """

    def __init__(
        self,
        output_dir: str,
        findings: Sequence[str],
        num_images: int = 8,
        activation: str | None = "sigmoid",
        threshold: float = 0.5,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.findings = list(findings)
        self.num_images = num_images
        self.activation = activation
        self.threshold = threshold
        self.written: list[str] = []
        self._images = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def _reset(self, engine: Engine) -> None:
        self.written, self._images = [], 0

    @staticmethod
    def _outline(mask: np.ndarray) -> np.ndarray:
        inner = mask.copy()
        inner[1:-1, 1:-1] = (
            mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
        )
        return mask & ~inner

    def __call__(self, engine: Engine) -> None:
        from PIL import Image

        out = engine.state.output
        if self._images >= self.num_images or not isinstance(out, dict) or out.get("pred") is None:
            return
        image, label, pred = out["image"], out["label"], out["pred"]
        if isinstance(image, dict):
            image = image["image"]
        pred = pred.detach().float().cpu()
        if self.activation == "sigmoid":
            pred = pred.sigmoid()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for b in range(pred.shape[0]):
            if self._images >= self.num_images:
                return
            present = [
                k
                for k in range(pred.shape[1])
                if bool(label[b, k].any()) or float(pred[b, k].max()) >= self.threshold
            ]
            if not present:
                continue
            grey = image[b, 0].detach().float().cpu().numpy().T  # [W, H] -> picture rows/cols
            for k in present:
                heat = pred[b, k].numpy().T
                gt = label[b, k].detach().cpu().numpy().T > 0.5
                rgb = np.stack([grey] * 3, -1) * 0.7
                rgb[..., 0] += 0.5 * heat
                rgb[self._outline(gt)] = (0.0, 1.0, 0.0)
                rgb[self._outline(heat >= self.threshold)] = (1.0, 1.0, 0.0)
                name = f"overlay_{engine.state.iteration:03d}_{b:02d}_{self.findings[k]}.png"
                Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(self.output_dir / name)
                self.written.append(str(self.output_dir / name))
            self._images += 1
