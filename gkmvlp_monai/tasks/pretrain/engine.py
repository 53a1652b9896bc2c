"""Pre-training's wiring for the generic engine: the evaluation inferer and the attention overlays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.inferers import Inferer

from gkmvlp_monai.core import keys as K


def entity_eval_targets(entity_state: torch.Tensor) -> torch.Tensor:
    """Evaluation targets from entity states: present 1, absent or unmentioned 0, uncertain -1 (ignored)."""
    targets = (entity_state == 1).float()
    targets[entity_state == 2] = -1.0
    return targets


def entity_truth_targets(entity_truth: torch.Tensor) -> torch.Tensor:
    """Evaluation targets from image truth, already 1 present / 0 absent / -1 unknown: as they are."""
    return entity_truth.float()


#: where zero-shot evaluation targets come from, by batch key; each key has one meaning and one dtype
#: (the batch-key contract, :mod:`gkmvlp_monai.core.keys`)
TARGET_SOURCES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    # per-entity image truth, float32 1 / 0 / -1 (iu-synth's drawn findings, ``DrawnEntityTargetsd``)
    K.ENTITY_TRUTH: entity_truth_targets,
    # the report filter's int64 states -1 unmentioned / 0 absent / 1 present / 2 uncertain
    K.ENTITY_STATE: entity_eval_targets,
}


def evaluation_targets(batch: dict[str, Any], key: str) -> torch.Tensor:
    """The zero-shot targets ``[B, E]`` (float 1 / 0 / -1 ignored) from ``batch[key]``, read by the key's
    meaning (:data:`TARGET_SOURCES`).

    Raises:
        KeyError: ``key`` is not one of :data:`TARGET_SOURCES`.
        BatchContractError: ``batch[key]`` does not have the key's dtype and shape (names the key, the
            expected and the actual ones).
    """
    if key not in TARGET_SOURCES:
        raise KeyError(f"no evaluation targets under {key!r}; known target keys: {sorted(TARGET_SOURCES)}")
    K.check_batch(batch, [key])
    return TARGET_SOURCES[key](batch[key])


class PretrainEvalInferer(Inferer):
    """Evaluation pass of a GK-MVLP network: the full forward (losses, embeddings, entity probabilities)
    plus what the metrics need from the batch (report texts, entity targets as ``entity_targets``).

    Args:
        target_key: batch key of the zero-shot targets, ``"entity_truth"`` (image truth, used as it is)
            or ``"entity_state"`` (report states, converted by :func:`entity_eval_targets`).
        fallback_key: key used when ``target_key`` is absent (data sets without image truth), one of the
            same two, or ``None``.
    """

    def __init__(self, target_key: str = K.ENTITY_TRUTH, fallback_key: str | None = K.ENTITY_STATE) -> None:
        super().__init__()
        for key in (target_key, fallback_key):
            if key is not None and key not in TARGET_SOURCES:
                raise ValueError(f"unknown target key {key!r}; use one of {sorted(TARGET_SOURCES)}")
        self.target_key = target_key
        self.fallback_key = fallback_key

    def __call__(self, inputs: dict[str, Any], network: torch.nn.Module, *args: Any, **kwargs: Any) -> dict:
        out = dict(network(inputs))
        out[K.REPORT] = list(inputs.get(K.REPORT, []))
        key = self.target_key if self.target_key in inputs else self.fallback_key
        if key is not None and key in inputs:
            out[K.ENTITY_TARGETS] = evaluation_targets(inputs, key)
        return out


class AttentionOverlays:
    """Write PNG overlays of the GK module's entity attention on a few images when training completes.

    Each overlay shows the image with the patch attention of the entities the model scores most likely
    present, so a run's MLflow artifacts show where the model looks for each finding.

    Args:
        dataset: evaluation data set (deterministic transforms) to draw images from.
        network: the GK-MVLP network.
        output_dir: folder for the PNGs (created).
        entity_names: names in entity order.
        num_images: images to draw.
        top_entities: entities per image.
    """

    def __init__(
        self,
        dataset: Any,
        network: torch.nn.Module,
        output_dir: str,
        entity_names: list[str],
        num_images: int = 4,
        top_entities: int = 3,
    ) -> None:
        self.dataset = dataset
        self.network = network
        self.output_dir = output_dir
        self.entity_names = entity_names
        self.num_images = num_images
        self.top_entities = top_entities

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    @torch.no_grad()
    def __call__(self, engine: Engine) -> None:
        from pathlib import Path

        import numpy as np
        from PIL import Image

        out = Path(self.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        device = next(self.network.parameters()).device
        was_training = self.network.training
        self.network.eval()
        written = 0
        for i in range(len(self.dataset)):
            if written >= self.num_images:
                break
            item = self.dataset[i]
            if not isinstance(item, dict) or "image" not in item:
                continue  # a skipped (bad) sample
            image = torch.as_tensor(item["image"]).unsqueeze(0).float().to(device)
            boxes = torch.as_tensor(item["region_boxes"]).unsqueeze(0).float().to(device)
            mask = torch.as_tensor(item["region_mask"]).unsqueeze(0).bool().to(device)
            probs, attn = self.network.entity_scores(image, boxes, mask)
            present = probs[0, :, 1]
            top = present.argsort(descending=True)[: self.top_entities].tolist()
            grey = image[0, 0].cpu().numpy().T  # [W, H] -> picture rows/cols
            panels = []
            for e in top:
                a = torch.nn.functional.interpolate(
                    attn[:, e : e + 1], size=image.shape[-2:], mode="bilinear"
                )
                a = a[0, 0].cpu().numpy().T
                a = (a - a.min()) / max(float(a.max() - a.min()), 1e-8)
                rgb = np.stack([grey, grey, grey], -1) * 0.6
                rgb[..., 0] += 0.4 * a
                panels.append((np.clip(rgb, 0, 1) * 255).astype(np.uint8))
            names = "_".join(f"{self.entity_names[e]}{present[e]:.2f}" for e in top)
            Image.fromarray(np.concatenate(panels, 1)).save(out / f"overlay_{i:03d}_{names}.png")
            written += 1
        self.network.train(was_training)
