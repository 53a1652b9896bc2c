"""Deterministic, resumable data order and randomness for Ignite/MONAI engines.

A run that is killed mid-epoch and resumed from its last checkpoint must end at the same weights as an
unbroken run (in deterministic mode). Three things make that hold:

1. Data order is a pure function of ``(seed, epoch)``: :class:`ResumableSampler` draws its permutation
   from them (shared by every DDP rank, which then takes its own stride), and can skip the samples a
   killed run had already consumed in the current epoch.
2. Augmentation randomness is a pure function of ``(seed, epoch, sample index)``:
   :class:`EpochSeededDataset` re-seeds the sample's random transforms before running them, in whichever
   worker process the sample lands.
3. Model randomness (dropout, sampled negatives) is a pure function of ``(seed, iteration)``:
   :class:`DeterministicRunHandler` re-seeds torch / numpy / random at every iteration start.

The engine's own state (iteration, epoch) comes back through MONAI's ``CheckpointLoader``; the handler
reads it at ``EPOCH_STARTED`` to set the sampler's epoch and skip offset before Ignite opens the epoch's
data iterator.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.transforms import Randomizable, apply_transform
from torch.utils.data import Dataset, Sampler

_MASK = 2**31 - 1


def seed_everything(seed: int, deterministic: bool = False, num_threads: int | None = None) -> None:
    """Seed torch, numpy and random (MONAI's ``set_determinism``) at the start of a bundle run.

    Args:
        seed: the run's seed.
        deterministic: also ask torch for deterministic algorithms and use one thread (resume tests).
        num_threads: torch CPU threads, when set (``None`` keeps torch's default).
    """
    from monai.utils import set_determinism

    if num_threads:
        torch.set_num_threads(num_threads)
    set_determinism(seed=seed, use_deterministic_algorithms=deterministic or None)
    if deterministic:
        torch.set_num_threads(1)


def derive_seed(*parts: int) -> int:
    """Stable 31-bit seed from integers (independent of Python's hash randomisation)."""
    gen = np.random.default_rng([int(p) & _MASK for p in parts])
    return int(gen.integers(0, _MASK))


class ResumableSampler(Sampler[int]):
    """Shuffled (or sequential) sampler whose order depends only on ``seed`` and the epoch.

    Args:
        data_source: the data set (only its length is used).
        shuffle: shuffle per epoch; sequential order otherwise.
        seed: base seed.
        num_replicas: DDP world size (each rank takes every ``num_replicas``-th index of the shared order).
        rank: this process's rank.
        drop_last: drop the tail so every rank gets the same number of samples; otherwise the order is
            padded by wrapping around.
    """

    def __init__(
        self,
        data_source: Sequence[Any],
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
    ) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside [0, {num_replicas})")
        self.n = len(data_source)
        self.shuffle = shuffle
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.drop_last = drop_last
        self.epoch = 0
        self.start = 0
        if drop_last:
            self.per_rank = self.n // num_replicas
        else:
            self.per_rank = -(-self.n // num_replicas)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Use epoch ``epoch``'s order, beginning at this rank's ``start``-th sample (resume)."""
        self.epoch = int(epoch)
        self.start = int(start)

    def epoch_order(self) -> list[int]:
        """The shared order of all indices for the current epoch (before the split between ranks)."""
        if self.shuffle:
            g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
            return torch.randperm(self.n, generator=g).tolist()
        return list(range(self.n))

    def order(self) -> list[int]:
        """This rank's full index order for the current epoch (before the skip offset)."""
        idx = self.epoch_order()
        total = self.per_rank * self.num_replicas
        idx = idx[:total] if self.drop_last else (idx * (1 + total // max(self.n, 1)))[:total]
        return idx[self.rank : total : self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        order = self.order()[self.start :]
        self.start = 0  # the offset applies to the resumed epoch only
        return iter(order)

    def __len__(self) -> int:
        return self.per_rank


class EpochSeededDataset(Dataset):
    """Wraps a data set so random transforms are seeded by ``(seed, epoch, index)``.

    Deterministic transforms run first (inside ``base``, which may cache them); the random ones in
    ``random_transform`` run here, after re-seeding every :class:`monai.transforms.Randomizable` in it.

    Args:
        base: data set returning the deterministic part of each sample.
        random_transform: random transforms applied after ``base`` (a ``Compose`` or ``None``).
        seed: base seed.
    """

    def __init__(self, base: Dataset, random_transform: Any | None = None, seed: int = 0) -> None:
        self.base = base
        self.random_transform = random_transform
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        item = self.base[index]
        if self.random_transform is None or item is None:
            return item
        seed = derive_seed(self.seed, self.epoch, index)
        if isinstance(self.random_transform, Randomizable):
            self.random_transform.set_random_state(seed=seed)
        return apply_transform(self.random_transform, item)


class DeterministicRunHandler:
    """Ignite handler making a training run a pure function of its seed, across kills and resumes.

    Args:
        seed: base seed.
        sampler: the train loader's :class:`ResumableSampler` (its epoch and resume offset are set here).
        dataset: the train :class:`EpochSeededDataset`, if any (its epoch is set here).
        batch_size: per-rank batch size, to turn a resumed iteration count into a sample offset.
    """

    def __init__(
        self,
        seed: int = 0,
        sampler: ResumableSampler | None = None,
        dataset: EpochSeededDataset | None = None,
        batch_size: int = 1,
    ) -> None:
        self.seed = seed
        self.sampler = sampler
        self.dataset = dataset
        self.batch_size = batch_size

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self.epoch_started)
        engine.add_event_handler(Events.ITERATION_STARTED, self.iteration_started)

    def epoch_started(self, engine: Engine) -> None:
        epoch = engine.state.epoch
        done = 0
        if engine.state.epoch_length:
            done = engine.state.iteration - (epoch - 1) * engine.state.epoch_length
        if self.sampler is not None:
            self.sampler.set_epoch(epoch, start=max(done, 0) * self.batch_size)
        if self.dataset is not None:
            self.dataset.set_epoch(epoch)

    def iteration_started(self, engine: Engine) -> None:
        s = derive_seed(self.seed, engine.state.iteration)
        torch.manual_seed(s)
        np.random.seed(s)
        random.seed(s)


class GroupedResumableSampler(ResumableSampler):
    """:class:`ResumableSampler` that keeps up to ``group_size`` samples of one group next to each other.

    Used for VQA, where a picture has several questions: each picture's questions are shuffled and cut
    into chunks of ``group_size``, and the chunks are shuffled, so a batch holds ``batch / group_size``
    pictures (more when chunks are short) that the network encodes once each. ``group_size=1`` is the
    plain shuffled order of the parent class. The order depends only on ``seed`` and the epoch.

    Args:
        groups: the group (e.g. picture index) of every sample; its length is the data set's.
        group_size: at most this many samples of one group in a row.
        shuffle: shuffle per epoch (chunks and their contents); sequential order otherwise.
        seed: base seed.
        num_replicas: DDP world size.
        rank: this process's rank.
        drop_last: as in :class:`ResumableSampler`.
    """

    def __init__(
        self,
        groups: Sequence[int],
        group_size: int = 4,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
    ) -> None:
        if group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size}")
        super().__init__(list(groups), shuffle, seed, num_replicas, rank, drop_last)
        self.groups = [int(g) for g in groups]
        self.group_size = int(group_size)

    def epoch_order(self) -> list[int]:
        """Chunks of at most ``group_size`` same-group samples, chunks in (seeded) random order."""
        if self.group_size == 1 or not self.shuffle:
            return super().epoch_order()
        g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
        members: dict[int, list[int]] = {}
        for i in torch.randperm(self.n, generator=g).tolist():
            members.setdefault(self.groups[i], []).append(i)
        chunks = [
            m[k : k + self.group_size] for m in members.values() for k in range(0, len(m), self.group_size)
        ]
        return [i for c in torch.randperm(len(chunks), generator=g).tolist() for i in chunks[c]]
