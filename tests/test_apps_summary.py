import json

import pytest

from gkmvlp_monai.studies.summary import load_rows, task_table, write_summary


def _row(variant, init, fraction, metric, value, task="vqa"):
    return {
        "task": task,
        "method": "gkmvlp",
        "variant": variant,
        "init": init,
        "fraction": fraction,
        "metric": metric,
        "value": value,
        "seed": 0,
        "command": f"python -m gkmvlp_monai.studies --task {task} --pretrained m.pt --dataset-dir d --out o",
        "commit": "abc1234",
    }


def test_summary_page_from_stage_outputs(tmp_path):
    (tmp_path / "pretrain" / "eval").mkdir(parents=True)
    (tmp_path / "pretrain" / "eval" / "metrics.json").write_text(
        json.dumps({"metrics": {"zs_macro_AUC": 0.9, "i2t_R1": 0.25, "t2i_R10": 0.5}})
    )
    (tmp_path / "pretrain" / "eval" / "params.json").write_text(
        json.dumps({"model_size": "cpu", "image_size": 128})
    )
    (tmp_path / "vqa").mkdir()
    rows = [
        _row("classifier", init, f, "overall_acc", acc)
        for init, f, acc in (
            ("pretrained", 0.1, 0.7),
            ("scratch", 0.1, 0.6),
            ("pretrained", 1.0, 0.8),
            ("scratch", 1.0, 0.75),
            ("baseline", 0.1, 0.4),
            ("baseline", 1.0, 0.45),
        )
    ]
    rows.append(_row("hybrid", "pretrained", 0.1, "overall_acc", 0.71))
    (tmp_path / "vqa" / "rows.json").write_text(json.dumps(rows))
    md, png = write_summary(tmp_path)
    text = md.read_text()
    assert "| zero-shot macro AUC, 8 most frequent drawn findings | 0.900 |" in text
    # each figure beside its from-scratch counterpart and the trivial baseline, per fraction
    assert (
        "| variant | metric | pretrained 10 % | scratch 10 % | baseline 10 % | pretrained 100 % | scratch 100 % "
        "| baseline 100 % |" in text
    )
    assert "| classifier | overall_acc | 0.700 | 0.600 | 0.400 | 0.800 | 0.750 | 0.450 |" in text
    assert "| hybrid | overall_acc | 0.710 | - | - | - | - | - |" in text
    assert "7 figures in `vqa/rows.json` (commit abc1234)" in text
    assert "python -m gkmvlp_monai.studies --task vqa" in text
    assert text.count("not run") == 3  # classification, localization, report generation
    assert png.stat().st_size > 1000


def test_untrained_variant_fills_every_fraction_and_hints_pick_the_metrics():
    rows = [
        _row("zero_shot", "pretrained", None, "macro_AUC", 0.6, "classification"),
        _row("zero_shot", "pretrained", None, "AUC_Edema", 0.9, "classification"),
        _row("finetune", "pretrained", 0.1, "macro_AUC", 0.7, "classification"),
        _row("finetune", "pretrained", 1.0, "macro_AUC", 0.8, "classification"),
    ]
    table = task_table(rows, ["macro_AUC"])
    assert "| zero_shot | macro_AUC | 0.600 | 0.600 |" in table
    assert "| finetune | macro_AUC | 0.700 | 0.800 |" in table
    assert "AUC_Edema" not in table and "repeats its figures under every fraction" in table
    # without a metric list every metric is shown; only untrained variants: one "no training" column
    table = task_table(rows[:2])
    assert (
        "| variant | metric | pretrained no training |" in table
        and "| zero_shot | AUC_Edema | 0.900 |" in table
    )


def test_load_rows_orders_tasks_and_names_a_bad_file(tmp_path):
    for task in ("vqa", "classification", "my_task"):
        (tmp_path / task).mkdir()
        (tmp_path / task / "rows.json").write_text(json.dumps([_row("v", "scratch", 1.0, "m", 1.0, task)]))
    assert list(load_rows(tmp_path)) == ["classification", "vqa", "my_task"]
    (tmp_path / "vqa" / "rows.json").write_text(json.dumps({"runs": []}))
    with pytest.raises(ValueError, match=r"vqa/rows\.json: expected a list of result rows"):
        load_rows(tmp_path)
