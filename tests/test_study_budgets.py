"""The downstream studies' shared update budget (same number of optimizer steps whatever the fraction)."""

from __future__ import annotations

import pytest

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


# what the demo handed each study before the study runner (apps/demo.py DEMO_BUDGETS / QUICK_BUDGETS):
# the same steps, epochs, learning rates and batch sizes must reach the studies through the runner
DEMO_CALLS = {
    "classification": {"steps": 100},
    "localization": {"steps": 100},
    "report_generation": {"steps": 34, "batch_size": 16, "num_threads": None},
    "vqa": {"steps": 100, "learning_rate": 1e-3},
}
QUICK_CALLS = {
    "classification": {"epochs": 1},
    "localization": {"steps": 4},
    "report_generation": {"epochs": 1, "test_max_items": 8},
    "vqa": {"steps": 4},
}


@pytest.mark.parametrize("quick", [False, True])
def test_demo_budgets_reach_each_study_unchanged(tmp_path, monkeypatch, quick):
    import functools
    import inspect
    import json

    from gkmvlp_monai.apps import demo
    from gkmvlp_monai.studies import runner

    calls = {}
    for task, module in runner.STUDIES.items():

        @functools.wraps(module.run_study)  # the runner checks the settings against this signature
        def fake(pretrained_ckpt, dataset_dir, out_dir, *args, _task=task, **kwargs):
            calls[_task] = (pretrained_ckpt, dataset_dir, out_dir, args, kwargs)
            return {}

        monkeypatch.setattr(module, "run_study", fake)
        monkeypatch.setattr(module, "to_rows", lambda result, **fields: [])
    out = tmp_path / "demo"
    (out / "pretrain" / "eval").mkdir(parents=True)
    (out / "pretrain" / "eval" / "params.json").write_text(
        json.dumps({"model_size": "tiny", "image_size": 64})
    )
    ckpt = str(out / "pretrain" / "models" / "model.pt")
    report = demo.stage_downstream(
        out, tmp_path / "data" / "datalist.json", ckpt, quick, False, list(demo.TASKS)
    )
    expected = QUICK_CALLS if quick else DEMO_CALLS
    assert set(calls) == set(expected) == set(report)
    for task, (got_ckpt, dataset_dir, out_dir, args, kwargs) in calls.items():
        assert (got_ckpt, dataset_dir, out_dir, args) == (ckpt, str(tmp_path / "data"), str(out / task), ())
        defaults = inspect.signature(runner.STUDIES[task].run_study).parameters
        # seed and initialisations: what each study defaulted to when the demo did not pass them
        assert kwargs.pop("seed") == defaults["seed"].default == 0
        assert kwargs.pop("inits") == defaults["inits"].default == ("pretrained", "scratch")
        assert kwargs == {"fractions": (0.1, 1.0), "model_size": "tiny", "image_size": 64, **expected[task]}
        assert json.loads((out / task / "rows.json").read_text()) == []
