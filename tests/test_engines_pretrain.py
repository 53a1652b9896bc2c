import torch
from ignite.engine import Events
from monai.engines import SupervisedTrainer

from gkmvlp_monai.engine.handlers import GradientClipping, LossComponents
from gkmvlp_monai.engine.trainer import prepare_dict_batch, select_loss


class DictModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Linear(4, 1)

    def forward(self, batch):
        y = self.w(batch["x"]).squeeze(-1)
        a = ((y - batch["t"]) ** 2).mean() * 100.0
        b = y.abs().mean()
        return {"loss": a + b, "loss_a": a, "loss_b": b, "texts": batch["text"]}


def _trainer(max_norm: float, acc: int = 1):
    torch.manual_seed(0)
    data = [{"x": torch.randn(4), "t": torch.tensor(5.0), "text": f"r{i}"} for i in range(8)]
    loader = torch.utils.data.DataLoader(data, batch_size=2)
    net = DictModel()
    opt = torch.optim.SGD(net.parameters(), lr=0.0)  # lr 0: weights fixed, we inspect gradients
    trainer = SupervisedTrainer(
        device="cpu",
        max_epochs=1,
        train_data_loader=loader,
        network=net,
        optimizer=opt,
        loss_function=select_loss,
        prepare_batch=prepare_dict_batch,
        decollate=False,
        accumulation_steps=acc,
    )
    GradientClipping(max_norm).attach(trainer)
    LossComponents().attach(trainer)
    norms = []
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED,
        lambda e: norms.append(torch.cat([p.grad.flatten() for p in net.parameters()]).norm().item()),
    )
    return trainer, norms


def test_clipping_bounds_the_gradient_norm_and_losses_are_logged():
    trainer, norms = _trainer(max_norm=0.5)
    trainer.run()
    assert max(norms) <= 0.5 + 1e-5
    m = trainer.state.metrics
    assert {"train_loss", "train_loss_a", "train_loss_b"} <= set(m)
    assert abs(m["train_loss"] - (m["train_loss_a"] + m["train_loss_b"])) < 1e-3


def test_no_clipping_when_disabled():
    trainer, norms = _trainer(max_norm=0.0)
    trainer.run()
    assert max(norms) > 0.5


def test_prepare_dict_batch_keeps_strings():
    batch, target = prepare_dict_batch({"x": torch.ones(1), "text": ["a"]}, "cpu")
    assert target is None and batch["text"] == ["a"]


def test_latest_checkpoint_is_the_newest_file(tmp_path):
    import os
    import time

    import pytest

    from gkmvlp_monai.engine.handlers import latest_checkpoint

    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        latest_checkpoint(str(tmp_path))
    a = tmp_path / "checkpoint_iteration=10.pt"
    b = tmp_path / "checkpoint_final.pt"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    now = time.time()
    os.utime(a, (now - 10, now - 10))
    assert latest_checkpoint(str(tmp_path)) == str(b)
    os.utime(a, (now + 10, now + 10))
    assert latest_checkpoint(str(tmp_path)) == str(a)


class DtypeProbe(torch.nn.Module):
    """Records the dtype its linear layer computes in; the loss is float32 either way."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Linear(4, 1)
        self.seen: list[torch.dtype] = []

    def forward(self, batch):
        y = self.w(batch["x"])
        self.seen.append(y.dtype)
        return {"loss": ((y.float().squeeze(-1) - batch["t"]) ** 2).mean()}


def _bf16_trainer(cpu_bf16: bool):
    from gkmvlp_monai.engine.trainer import CXRTrainer

    data = [{"x": torch.randn(4), "t": torch.tensor(1.0)} for _ in range(4)]
    net = DtypeProbe()
    trainer = CXRTrainer(
        device="cpu",
        max_epochs=1,
        train_data_loader=torch.utils.data.DataLoader(data, batch_size=2),
        network=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=0.1),
        loss_function=select_loss,
        prepare_batch=prepare_dict_batch,
        decollate=False,
        cpu_bf16=cpu_bf16,
    )
    return trainer, net


def test_cpu_bf16_trains_under_bf16_autocast_with_float32_weights():
    import pytest

    from gkmvlp_monai.engine.trainer import cpu_bf16_supported

    if not cpu_bf16_supported():
        pytest.skip("this CPU has no native bfloat16 support")
    trainer, net = _bf16_trainer(True)
    before = net.w.weight.detach().clone()
    trainer.run()
    assert trainer.cpu_bf16 and net.seen == [torch.bfloat16, torch.bfloat16]
    assert net.w.weight.dtype == torch.float32 and not torch.equal(net.w.weight, before)
    assert torch.isfinite(trainer.state.output["loss"])
    trainer, net = _bf16_trainer(False)
    trainer.run()
    assert not trainer.cpu_bf16 and net.seen == [torch.float32, torch.float32]


def test_cpu_bf16_falls_back_to_float32_where_the_cpu_lacks_it(monkeypatch):
    import gkmvlp_monai.engine.trainer as pretrain

    monkeypatch.setattr(pretrain, "cpu_bf16_supported", lambda: False)
    trainer, net = _bf16_trainer(True)
    trainer.run()
    assert not trainer.cpu_bf16 and net.seen == [torch.float32, torch.float32]


def _eval_targets(inputs, **kwargs):
    from gkmvlp_monai.tasks.pretrain.engine import PretrainEvalInferer

    return PretrainEvalInferer(**kwargs)(inputs, lambda batch: {}).get("entity_targets")


def test_eval_inferer_reads_each_target_key_by_its_meaning():
    import pytest

    from gkmvlp_monai.core.keys import BatchContractError

    states = torch.tensor([[1, 0, -1, 2]])  # present, absent, unmentioned, uncertain
    truth = torch.tensor([[0.0, 1.0, -1.0, 1.0]])  # image truth: used as it is
    assert _eval_targets({"entity_state": states}).tolist() == [[1.0, 0.0, 0.0, -1.0]]
    assert _eval_targets({"entity_truth": truth, "entity_state": states}).tolist() == truth.tolist()
    assert _eval_targets(
        {"entity_truth": truth, "entity_state": states}, target_key="entity_state"
    ).tolist() == [[1.0, 0.0, 0.0, -1.0]]
    assert _eval_targets({"entity_state": states}, fallback_key=None) is None
    # the dtype no longer picks the meaning: the wrong one is an error naming the key
    with pytest.raises(
        BatchContractError, match=r"batch\['entity_truth'\]: expected float32 \[B, E\], got int64"
    ):
        _eval_targets({"entity_truth": states})
    with pytest.raises(
        BatchContractError, match=r"batch\['entity_state'\]: expected int64 \[B, E\], got float32"
    ):
        _eval_targets({"entity_state": truth})
    with pytest.raises(ValueError, match="unknown target key 'labels'"):
        _eval_targets({}, target_key="labels")
