"""Start and stop the process group of a ``torchrun`` bundle run (``bundles/common/multi_gpu.json``)."""

from __future__ import annotations

import torch


def init_distributed(backend: str, device: torch.device) -> None:
    """Join the process group (once), wait for every rank, and pin this rank's CUDA device.

    Args:
        backend: ``"nccl"`` on GPUs, ``"gloo"`` on CPUs.
        device: this rank's device.
    """
    import ignite.distributed as idist

    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=backend)
    idist.sync()
    if device.type == "cuda":
        torch.cuda.set_device(device)


def destroy_distributed() -> None:
    """Leave the process group, if one was joined."""
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
