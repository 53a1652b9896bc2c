"""Last/best checkpoints with the full training state, and resume from the newest one."""

from __future__ import annotations

from typing import Any

import torch
from ignite.engine import Engine, Events


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


def _resume(engine: Engine, loader: Any, path: str) -> None:
    """Run ``loader`` (a ``CheckpointLoader``); a network-config mismatch names the checkpoint file."""
    from gkmvlp_monai.models.config import NetworkConfigError

    try:
        loader(engine)
    except NetworkConfigError as err:
        raise NetworkConfigError(err.saved, err.requested, path) from None


class TrainingCheckpoints:
    """Last/best checkpoints with the full training state, and resume, for a trainer.

    MONAI's ``CheckpointSaver``/``CheckpointLoader`` need the trainer itself in their ``save_dict``; a
    bundle config cannot reference the trainer from inside its own handler list (circular reference), so
    this handler builds them when it is attached to the trainer.

    Files in ``save_dir``: ``checkpoint_iteration=<n>.pt`` (last; every ``interval`` iterations, only the
    newest kept), ``checkpoint_final.pt`` (at the end), ``best_checkpoint.pt`` (best key metric of
    ``validator``, full state). All hold ``model``, ``optimizer``, ``lr_scheduler`` and ``trainer`` states;
    the ``model`` state dict carries the network's config (:mod:`gkmvlp_monai.models.config`), so resuming
    into a network built with another config stops with an error naming the file.

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
            loader = CheckpointLoader(load_path=path, load_dict=self._state, map_location=engine.state.device)
            loader.logger = engine.logger  # what CheckpointLoader.attach does
            engine.add_event_handler(Events.STARTED, _resume, loader, path)
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
