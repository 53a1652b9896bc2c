"""The downstream studies' shared update budget (same number of optimizer steps whatever the fraction)."""

from __future__ import annotations

from gkmvlp_monai.engine.budget import budget_overrides, epochs_for_steps, step_budget


def test_step_budget_whole_epochs_over_a_small_set():
    # 277 items, batch 16 -> 17 drop_last batches per epoch: 120 steps need 8 epochs (136 updates)
    assert epochs_for_steps(120, 277, 16) == 8
    assert step_budget(120, 277, 16) == (8, None)
    assert step_budget(17, 277, 16) == (1, None)  # exactly one epoch


def test_step_budget_cuts_one_epoch_of_a_large_set():
    # 2768 items, batch 16 -> 173 batches per epoch: one epoch cut at 120 batches
    assert step_budget(120, 2768, 16) == (1, 120)
    assert step_budget(200, 2768, 16) == (2, None)  # more than one epoch: whole epochs


def test_budget_overrides_spread_the_validations():
    # 10 %: 8 whole epochs, validated twice (every 4th epoch) or once (after the last)
    assert budget_overrides(120, 277, 16, validations=2) == {
        "max_epochs": 8,
        "epoch_length": None,
        "val_interval": 4,
    }
    assert budget_overrides(120, 277, 16) == {"max_epochs": 8, "epoch_length": None, "val_interval": 8}
    # 100 %: one cut epoch, validated at its end whatever was asked
    assert budget_overrides(120, 2768, 16, validations=2) == {
        "max_epochs": 1,
        "epoch_length": 120,
        "val_interval": 1,
    }


def test_classification_study_runs_skip_the_ood_statistics_pass(tmp_path, monkeypatch):
    """Study runs are scored, never served: none of them pays the OOD embedding pass after training."""
    import json

    from gkmvlp_monai.tasks.classification import study as classification_study

    calls = []

    def fake_workflow(configs, overrides, workflow_type):
        calls.append(dict(overrides))
        sub = ("zero_shot",) if "zero_shot.json" in configs else ()
        out = tmp_path.joinpath(overrides["output_dir"], *sub)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps({"metrics": {"macro_AUC": 0.5}}))

    monkeypatch.setattr(classification_study, "_workflow", fake_workflow)
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"")
    data = tmp_path / "data"
    data.mkdir()
    (data / "datalist.json").write_text(json.dumps({"training": [], "validation": [], "test": []}))
    classification_study.run_study(str(ckpt), str(data), str(tmp_path / "out"), fractions=(1.0,))
    assert calls and all(c["ood#enabled"] is False for c in calls)
