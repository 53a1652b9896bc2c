"""Glue that lets MONAI's stock ``SupervisedTrainer`` / ``SupervisedEvaluator`` drive GK-MVLP.

The network takes the whole batch dict and returns a dict of losses and outputs, so:

- :func:`prepare_dict_batch` hands the trainer ``(batch, None)`` with every tensor on the device;
- :func:`select_loss` is the trainer's ``loss_function``: it returns the network's weighted ``loss``;
- :class:`GradientClipping` clips at ``IterationEvents.BACKWARD_COMPLETED`` (after backward, before the
  optimizer step; unscaling first under AMP; only on steps that really update, with accumulation);
- :class:`LossComponents` averages each ``loss_*`` term over the epoch into ``engine.state.metrics``
  (so StatsHandler and MLFlowHandler log the objectives separately).

Gradient accumulation and AMP are ``SupervisedTrainer``'s own (``accumulation_steps``, ``amp``).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.inferers import Inferer
from monai.utils import CommonKeys as Keys

from gkmvlp_monai.data.dataset import is_empty_batch


def prepare_dict_batch(
    batchdata: dict[str, Any],
    device: str | torch.device | None = None,
    non_blocking: bool = False,
    **kwargs: Any,
) -> tuple[dict[str, Any], None]:
    """Move every tensor of a dict batch to ``device``; strings and lists stay as they are.

    Returns:
        ``(batch, None)``: the trainer passes ``batch`` to the network and ``None`` as the target.
    """
    if not isinstance(batchdata, dict):
        raise TypeError(f"GK-MVLP engines expect dict batches, got {type(batchdata).__name__}")
    out = {}
    for k, v in batchdata.items():
        out[k] = (
            v.to(device=device, non_blocking=non_blocking, **kwargs) if isinstance(v, torch.Tensor) else v
        )
    return out, None


def select_loss(pred: dict[str, torch.Tensor], target: Any = None) -> torch.Tensor:
    """The trainer's ``loss_function``: the network output's weighted total ``loss``."""
    if "loss" not in pred:
        raise KeyError(f"network output has no 'loss' (keys: {sorted(pred)})")
    return pred["loss"]


def _is_update_step(engine: Engine) -> bool:
    acc = getattr(engine, "accumulation_steps", 1)
    if acc <= 1:
        return True
    length = engine.state.epoch_length
    i = (engine.state.iteration - 1) % length if length else engine.state.iteration - 1
    return (i + 1) % acc == 0 or (length is not None and i + 1 == length)


class GradientClipping:
    """Clip the global gradient norm before each optimizer update.

    Args:
        max_norm: maximum total L2 norm; ``<= 0`` disables clipping.
    """

    def __init__(self, max_norm: float = 1.0) -> None:
        self.max_norm = max_norm

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(IterationEvents.BACKWARD_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if self.max_norm <= 0 or not _is_update_step(engine):
            return
        scaler = getattr(engine, "scaler", None)
        if getattr(engine, "amp", False) and scaler is not None:
            scaler.unscale_(engine.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(engine.network.parameters(), self.max_norm)
        engine.state.grad_norm = float(norm)


class LossComponents:
    """Average every ``loss*`` scalar of the network output over the epoch into ``engine.state.metrics``.

    Args:
        prefix: key prefix, e.g. ``"train_"`` gives ``train_loss_itc``.
    """

    def __init__(self, prefix: str = "train_") -> None:
        self.prefix = prefix
        self._sums: dict[str, float] = defaultdict(float)
        self._count = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self.reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.update)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.publish)

    def reset(self, engine: Engine) -> None:
        self._sums.clear()
        self._count = 0

    def update(self, engine: Engine) -> None:
        output = engine.state.output
        pred = output.get("pred") if isinstance(output, dict) else None
        if not pred:  # a batch whose every sample was bad: nothing to average
            return
        for k, v in pred.items():
            if k.startswith("loss") and isinstance(v, torch.Tensor) and v.numel() == 1:
                self._sums[k] += float(v.detach())
        self._count += 1

    def publish(self, engine: Engine) -> None:
        for k, v in self._sums.items():
            engine.state.metrics[self.prefix + k] = v / max(self._count, 1)


def cpu_bf16_supported() -> bool:
    """Whether this CPU runs bfloat16 matmuls and convolutions natively (oneDNN with AVX512-BF16 / AMX)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without the oneDNN ops
        return False


class GKMVLPTrainer(SupervisedTrainer):
    """``SupervisedTrainer`` that passes over a batch whose every sample was bad (counted, not fatal).

    Everything else (AMP, gradient accumulation, events) is the stock MONAI iteration. MONAI's ``amp`` is
    CUDA autocast with a gradient scaler; ``cpu_bf16`` is its CPU counterpart.

    Args:
        cpu_bf16: run the forward pass (and so the backward) of each iteration on a CPU device under
            ``torch.autocast("cpu", dtype=torch.bfloat16)``: matmuls and convolutions in bfloat16, losses,
            softmax and normalisation in float32, weights and optimizer in float32 (no gradient scaler: bf16
            has float32's range). Only where the CPU supports bf16 natively (:func:`cpu_bf16_supported`;
            elsewhere it would be slower than float32, so a warning is logged and float32 is kept); ignored
            on CUDA (use ``amp``).
        args: ``SupervisedTrainer`` positional arguments.
        kwargs: ``SupervisedTrainer`` keyword arguments.
    """

    def __init__(self, *args: Any, cpu_bf16: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cpu_bf16 = False
        if cpu_bf16 and torch.device(self.state.device).type == "cpu":
            if cpu_bf16_supported():
                self.cpu_bf16 = True
            else:
                self.logger.warning("cpu_bf16: this CPU has no native bfloat16 support; training in float32")

    def _iteration(self, engine: SupervisedTrainer, batchdata: dict[str, Any]) -> dict:
        if is_empty_batch(batchdata):
            engine.state.output = {Keys.PRED: None, Keys.LOSS: torch.tensor(float("nan"))}
            return engine.state.output
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cpu_bf16):
            return super()._iteration(engine, batchdata)


class GKMVLPEvaluator(SupervisedEvaluator):
    """``SupervisedEvaluator`` that passes over a batch whose every sample was bad (metrics skip it)."""

    def _iteration(self, engine: SupervisedEvaluator, batchdata: dict[str, Any]) -> dict:
        if is_empty_batch(batchdata):
            engine.state.output = {Keys.PRED: None}
            return engine.state.output
        return super()._iteration(engine, batchdata)


def entity_eval_targets(entity_state: torch.Tensor) -> torch.Tensor:
    """Evaluation targets from entity states: present 1, absent or unmentioned 0, uncertain -1 (ignored)."""
    targets = (entity_state == 1).float()
    targets[entity_state == 2] = -1.0
    return targets


class PretrainEvalInferer(Inferer):
    """Evaluation pass of a GK-MVLP network: the full forward (losses, embeddings, entity probabilities)
    plus what the metrics need from the batch (report texts, entity targets).

    Args:
        fallback_key: key used when ``target_key`` is absent (data sets without image truth).
        target_key: batch key of the zero-shot targets: entity states (int64: converted by
            :func:`entity_eval_targets`) or ready float targets (1 / 0 / -1 ignored, e.g. iu-synth's drawn
            truth from ``DrawnEntityTargetsd``), passed through as they are.
    """

    def __init__(self, target_key: str = "entity_truth", fallback_key: str = "entity_state") -> None:
        super().__init__()
        self.target_key = target_key
        self.fallback_key = fallback_key

    def __call__(self, inputs: dict[str, Any], network: torch.nn.Module, *args: Any, **kwargs: Any) -> dict:
        out = dict(network(inputs))
        out["report"] = list(inputs.get("report", []))
        key = self.target_key if self.target_key in inputs else self.fallback_key
        if key in inputs:
            targets = inputs[key]
            out["entity_targets"] = (
                targets.float() if targets.is_floating_point() else entity_eval_targets(targets)
            )
        return out


def from_pred(*keys: str):
    """Output transform for metrics: the ``pred`` entries ``keys`` as a tuple (``None`` for a skipped batch)."""

    def _get(output: dict) -> Any:
        pred = output.get(Keys.PRED) if isinstance(output, dict) else None
        if pred is None:
            return None
        missing = [k for k in keys if k not in pred]
        if missing:
            raise KeyError(f"network output lacks {missing} (has {sorted(pred)})")
        values = tuple(pred[k] for k in keys)
        return values[0] if len(values) == 1 else values

    return _get


def latest_checkpoint(ckpt_dir: str, pattern: str = "checkpoint*.pt") -> str:
    """Path of the newest full checkpoint in ``ckpt_dir`` (by modification time), for ``resume=True``.

    The newest file holds the latest state: the interval checkpoint of a killed run, or
    ``checkpoint_final.pt`` of a finished one (resumed to train longer).

    Raises:
        FileNotFoundError: no checkpoint to resume from (the message names the folder).
    """
    from pathlib import Path

    files = [p for p in Path(ckpt_dir).glob(pattern) if p.is_file()]
    if not files:
        raise FileNotFoundError(f"resume requested but {ckpt_dir} holds no {pattern} checkpoint")
    return str(max(files, key=lambda p: p.stat().st_mtime_ns))


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


def write_params(path: str, params: dict[str, Any]) -> str:
    """Write the resolved run parameters as JSON (an MLflow artifact); returns ``path``."""
    import json
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(params, indent=1, default=str))
    return path


class TrainingCheckpoints:
    """Last/best checkpoints with the full training state, and resume, for a trainer.

    MONAI's ``CheckpointSaver``/``CheckpointLoader`` need the trainer itself in their ``save_dict``; a
    bundle config cannot reference the trainer from inside its own handler list (circular reference), so
    this handler builds them when it is attached to the trainer.

    Files in ``save_dir``: ``checkpoint_iteration=<n>.pt`` (last; every ``interval`` iterations, only the
    newest kept), ``checkpoint_final.pt`` (at the end), ``best_checkpoint.pt`` (best key metric of
    ``validator``, full state). All hold ``model``, ``optimizer``, ``lr_scheduler`` and ``trainer`` states.

    Args:
        save_dir: checkpoint folder.
        network, optimizer, lr_scheduler: objects whose state is saved.
        interval: iterations between "last" checkpoints (so a killed run loses at most this many).
        resume: load the newest ``checkpoint*.pt`` in ``save_dir`` when training starts.
        save: write checkpoints (``False`` on DDP ranks other than 0; they still resume).
        validator: evaluator whose key metric selects ``best_checkpoint.pt`` (optional).
    """

    def __init__(
        self,
        save_dir: str,
        network: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        lr_scheduler: Any = None,
        interval: int = 200,
        resume: bool = False,
        save: bool = True,
        validator: Engine | None = None,
    ) -> None:
        self.save_dir = save_dir
        self.save = save
        self.objects = {"model": network, "optimizer": optimizer}
        if lr_scheduler is not None:
            self.objects["lr_scheduler"] = lr_scheduler
        self.interval = interval
        self.resume = resume
        self.validator = validator

    def attach(self, engine: Engine) -> None:
        from monai.handlers import CheckpointLoader

        self._state = {**self.objects, "trainer": engine}
        if self.resume:
            path = latest_checkpoint(self.save_dir)
            CheckpointLoader(load_path=path, load_dict=self._state, map_location=engine.state.device).attach(
                engine
            )
        if self.save:
            # The savers are attached when the run starts, i.e. after every other handler of the config:
            # at ITERATION_COMPLETED they then run last, so a checkpoint holds the state *after* the
            # iteration's scheduler step (saved before it, a resumed run would lag one learning-rate step).
            engine.add_event_handler(Events.STARTED, self._attach_savers)

    def _attach_savers(self, engine: Engine) -> None:
        from monai.handlers import CheckpointSaver

        if getattr(self, "_savers_attached", False):
            return
        self._savers_attached = True
        CheckpointSaver(
            save_dir=self.save_dir,
            save_dict=self._state,
            file_prefix="",  # ignite names it "checkpoint_iteration=<n>.pt" (several objects -> "checkpoint")
            save_interval=self.interval,
            epoch_level=False,
            n_saved=1,
            save_final=True,
            final_filename="checkpoint_final.pt",
        ).attach(engine)
        if self.validator is not None:
            CheckpointSaver(
                save_dir=self.save_dir,
                save_dict=self._state,
                save_key_metric=True,
                key_metric_filename="best_checkpoint.pt",
            ).attach(self.validator)
