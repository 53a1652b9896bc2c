import pytest
import torch
from ignite.engine import Engine, Events
from monai.transforms import Compose, RandGaussianNoised

from gkmvlp_monai.engine.determinism import (
    DeterministicRunHandler,
    EpochSeededDataset,
    ResumableSampler,
    derive_seed,
)


def test_sampler_order_depends_on_seed_and_epoch_only():
    data = list(range(10))
    a, b = ResumableSampler(data, seed=3), ResumableSampler(data, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(b) != a.order()
    a.set_epoch(2, start=4)
    assert list(a) == a.order()[4:]
    assert list(a) == a.order()  # the offset applies once


def test_sampler_splits_ranks_without_overlap():
    data = list(range(10))
    parts = [ResumableSampler(data, seed=0, num_replicas=2, rank=r, drop_last=True) for r in (0, 1)]
    for p in parts:
        p.set_epoch(1)
    a, b = list(parts[0]), list(parts[1])
    assert len(a) == len(b) == 5 and not set(a) & set(b)


def test_epoch_seeded_dataset_is_reproducible_per_epoch_and_index():
    base = [{"x": torch.zeros(1, 4, 4)} for _ in range(3)]
    ds = EpochSeededDataset(base, Compose([RandGaussianNoised("x", prob=1.0)]), seed=1)
    ds.set_epoch(1)
    first = ds[2]["x"].clone()
    ds[0]
    assert torch.equal(ds[2]["x"], first)
    ds.set_epoch(2)
    assert not torch.equal(ds[2]["x"], first)


def _run(max_epochs: int, stop_at: int | None = None, state: dict | None = None):
    data = list(range(12))
    sampler = ResumableSampler(data, seed=5)
    loader = torch.utils.data.DataLoader(data, batch_size=3, sampler=sampler)
    seen: list[tuple[int, list[int], float]] = []

    def step(engine, batch):
        seen.append((engine.state.iteration, batch.tolist(), torch.rand(1).item()))

    engine = Engine(step)
    DeterministicRunHandler(seed=5, sampler=sampler, batch_size=3).attach(engine)
    if stop_at is not None:
        engine.add_event_handler(Events.ITERATION_COMPLETED(once=stop_at), lambda e: e.terminate())
    if state is not None:
        engine.load_state_dict(state)
    engine.run(loader, max_epochs=max_epochs)
    return seen, engine.state_dict()


def test_resume_mid_epoch_replays_the_same_batches_and_randomness():
    full, _ = _run(max_epochs=3)
    first, st = _run(max_epochs=3, stop_at=6)  # stops in the middle of epoch 2 (4 iterations/epoch)
    rest, _ = _run(max_epochs=3, state=st)
    assert first + rest == full


def test_derive_seed_is_stable():
    assert derive_seed(1, 2, 3) == derive_seed(1, 2, 3) != derive_seed(1, 2, 4)


def _runs_per_group(order: list[int], groups: list[int]) -> dict[int, int]:
    runs: dict[int, int] = {}
    for k, i in enumerate(order):
        if k == 0 or groups[order[k - 1]] != groups[i]:
            runs[groups[i]] = runs.get(groups[i], 0) + 1
    return runs


def test_grouped_sampler_keeps_a_picture_s_questions_together():
    from gkmvlp_monai.engine.determinism import GroupedResumableSampler

    groups = [0] * 7 + [1] * 3 + [2] * 1 + [3] * 5  # questions per picture
    groups = [groups[i] for i in torch.randperm(len(groups), generator=torch.Generator().manual_seed(0))]
    sampler = GroupedResumableSampler(groups, group_size=3, seed=5)
    order = list(sampler)
    assert sorted(order) == list(range(len(groups)))  # every question once per epoch
    counts = {g: groups.count(g) for g in set(groups)}
    runs = _runs_per_group(order, groups)
    assert all(runs[g] <= -(-counts[g] // 3) for g in counts)  # at most ceil(n / 3) chunks per picture
    whole = GroupedResumableSampler(groups, group_size=7, seed=5).order()
    assert _runs_per_group(whole, groups) == {g: 1 for g in counts}  # group_size >= n: one run each
    assert order == GroupedResumableSampler(groups, group_size=3, seed=5).order()  # a function of the seed
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert epoch1 != order and sorted(epoch1) == sorted(order)  # a new order each epoch
    sampler.set_epoch(1, start=4)
    assert list(sampler) == epoch1[4:]  # resume inside the epoch
    # group_size 1 is the plain shuffled sampler
    assert GroupedResumableSampler(groups, 1, seed=2).order() == ResumableSampler(groups, seed=2).order()
    with pytest.raises(ValueError, match="group_size"):
        GroupedResumableSampler(groups, 0)
