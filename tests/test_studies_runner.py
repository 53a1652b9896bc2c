"""The study runner: one signature for every task's study, one result format (rows), its command line."""

from __future__ import annotations

import ast
import functools
import inspect
import json
import math
import re
import shlex
import subprocess
import sys

import pytest

from gkmvlp_monai.studies import runner
from gkmvlp_monai.studies.__main__ import main

# each task's study result, shaped as its run_study returns it (only what to_rows reads, plus extras)
RESULTS = {
    "classification": {
        "settings": {"seed": 0},
        "runs": {
            "finetune/pretrained/10pct": {
                "variant": "finetune",
                "init": "pretrained",
                "fraction": 0.1,
                "metrics": {"macro_AUC": 0.625, "AUC_Edema": None, "mean_accuracy": 1},
                "seconds": 3.0,
            },
            "zero_shot/scratch": {
                "variant": "zero_shot",
                "init": "scratch",
                "fraction": None,
                "metrics": {"macro_AUC": 0.5},
            },
        },
    },
    "localization": {
        "results": [
            {
                "variant": "zero-shot",
                "init": "pretrained",
                "fraction": None,
                "pointing_game": 0.5,
                "iou": 0.125,
                "dice": 0.25,
                "threshold": 0.05,
                "n_findings": 2.0,
                "seconds": 1.0,
            },
            {
                "variant": "fine-tuned",
                "init": "scratch",
                "fraction": 1,
                "train_items": 33,
                "pointing_game": 0.0,
                "iou": None,
                "dice": 0.5,
                "threshold": 0.4,
                "n_findings": 2.0,
            },
        ],
        "pretrained_beats_scratch": {},
    },
    "report_generation": {
        "runs": [
            {
                "init": "scratch",
                "fraction": 0.1,
                "train_items": 5,
                "updates": 1,
                "metrics": {"bleu4": 0.125, "cider": float("nan"), "ce_micro_f1": 0.0},
            }
        ]
    },
    "vqa": {
        "runs": [
            {
                "init": "pretrained",
                "fraction": 1.0,
                "steps": 4,
                "answer_coverage": 0.75,
                "metrics": {
                    "closed_acc": 0.5,
                    "open_acc": 0.25,
                    "hybrid_open_acc": 0.375,
                    "overall_acc": 0.4,
                    "hybrid_overall_acc": 0.45,
                },
            }
        ]
    },
}
# the figures each result holds, (variant, init, fraction, metric) -> value; undefined ones (None, NaN)
# give no row
FIGURES = {
    "classification": {
        ("finetune", "pretrained", 0.1, "macro_AUC"): 0.625,
        ("finetune", "pretrained", 0.1, "mean_accuracy"): 1.0,
        ("zero_shot", "scratch", None, "macro_AUC"): 0.5,
    },
    "localization": {
        ("zero-shot", "pretrained", None, "pointing_game"): 0.5,
        ("zero-shot", "pretrained", None, "iou"): 0.125,
        ("zero-shot", "pretrained", None, "dice"): 0.25,
        ("zero-shot", "pretrained", None, "threshold"): 0.05,
        ("zero-shot", "pretrained", None, "n_findings"): 2.0,
        ("fine-tuned", "scratch", 1.0, "pointing_game"): 0.0,
        ("fine-tuned", "scratch", 1.0, "dice"): 0.5,
        ("fine-tuned", "scratch", 1.0, "threshold"): 0.4,
        ("fine-tuned", "scratch", 1.0, "n_findings"): 2.0,
    },
    "report_generation": {
        ("fine-tuned", "scratch", 0.1, "bleu4"): 0.125,
        ("fine-tuned", "scratch", 0.1, "ce_micro_f1"): 0.0,
    },
    "vqa": {
        ("classifier", "pretrained", 1.0, "closed_acc"): 0.5,
        ("classifier", "pretrained", 1.0, "open_acc"): 0.25,
        ("classifier", "pretrained", 1.0, "overall_acc"): 0.4,
        ("classifier", "pretrained", 1.0, "answer_coverage"): 0.75,
        ("hybrid", "pretrained", 1.0, "open_acc"): 0.375,
        ("hybrid", "pretrained", 1.0, "overall_acc"): 0.45,
    },
}


@pytest.fixture
def studies(monkeypatch):
    """Every task's ``run_study`` replaced by one returning :data:`RESULTS` (its real ``to_rows`` kept);
    yields the calls it received, ``[(task, args, kwargs)]``."""
    calls = []
    for task, module in runner.STUDIES.items():

        @functools.wraps(module.run_study)  # the runner checks settings against the real signature
        def fake(*args, _task=task, **kwargs):
            calls.append((_task, args, kwargs))
            return RESULTS[_task]

        monkeypatch.setattr(module, "run_study", fake)
    return calls


@pytest.mark.parametrize("task", list(runner.STUDIES))
def test_rows_have_the_ten_fields_float_values_command_and_commit(tmp_path, studies, task):
    rows = runner.run_study(task, tmp_path / "model.pt", tmp_path / "data", tmp_path / "out", steps=7)
    assert rows == json.loads((tmp_path / "out" / task / "rows.json").read_text())
    for row in rows:
        assert tuple(row) == runner.ROW_FIELDS
        assert type(row["value"]) is float and math.isfinite(row["value"])
        assert row["fraction"] is None or type(row["fraction"]) is float
        assert (row["task"], row["method"], row["seed"]) == (task, "gkmvlp", 0)
        assert row["command"].startswith(f"python -m gkmvlp_monai.studies --task {task} --pretrained ")
        assert "--steps 7" in row["command"]
        assert re.fullmatch(r"[0-9a-f]{40}|gkmvlp-monai==\S+", row["commit"])
    assert {(r["variant"], r["init"], r["fraction"], r["metric"]): r["value"] for r in rows} == FIGURES[task]


def test_every_study_takes_the_runners_signature():
    for task, module in runner.STUDIES.items():
        params = list(inspect.signature(module.run_study).parameters.values())
        names = [p.name for p in params[:7]]
        assert names == [
            "pretrained_ckpt",
            "dataset_dir",
            "out_dir",
            "fractions",
            "steps",
            "seed",
            "inits",
        ], task
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[7:]), task
        assert params[6].default == runner.INITS and params[5].default == 0, task
        assert callable(module.to_rows), task


def test_runner_forwards_budget_settings_and_scratch(tmp_path, studies):
    runner.run_study("vqa", "m.pt", "data", tmp_path, fractions=[1], learning_rate=1e-3, seed=3)
    runner.run_study("vqa", "scratch", "data", tmp_path, steps=5, inits=("pretrained", "scratch"))
    (_, args1, kw1), (_, args2, kw2) = studies
    # no steps: the study's own budget (its default), never steps=None
    assert args1 == ("m.pt", "data", str(tmp_path / "vqa")) and "steps" not in kw1
    assert kw1 == {"fractions": (1.0,), "seed": 3, "inits": ("pretrained", "scratch"), "learning_rate": 1e-3}
    # "scratch": no checkpoint and only the scratch initialisation
    assert args2[0] is None and kw2["inits"] == ("scratch",) and kw2["steps"] == 5
    rows = json.loads((tmp_path / "vqa" / "rows.json").read_text())
    assert "--pretrained scratch" in rows[0]["command"] and "--inits scratch" in rows[0]["command"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (dict(task="segmentation"), "unknown study task 'segmentation'"),
        (dict(task="vqa", learning_rat=1e-3), "the vqa study .* has no setting learning_rat; its settings: "),
        (dict(task="vqa", fractions=(0.1, 1.5)), r"training fractions \[1.5\] outside \(0, 1\]"),
        (dict(task="vqa", inits=("finetuned",)), "initialisations"),
        (dict(task="vqa", pretrained_ckpt="scratch", inits=("pretrained",)), "nothing to run"),
    ],
)
def test_runner_refuses_what_no_study_runs(tmp_path, studies, call, message):
    call = {"pretrained_ckpt": "m.pt", "dataset_dir": "data", "out_dir": tmp_path, **call}
    with pytest.raises(ValueError, match=message):
        runner.run_study(**call)
    assert studies == []


@pytest.mark.parametrize("value", ["tiny", "1", "null", "", 1e-3, 16, None, True, ["finetune"], {"a": [1]}])
def test_settings_round_trip_through_the_command_line(value):
    assert runner.parse_setting(runner.format_setting("key", value)) == ("key", value)


def test_cli_writes_rows_whose_command_reruns_the_same_study(tmp_path, studies, capsys):
    argv = ["--task", "classification", "--pretrained", str(tmp_path / "m.pt"), "--dataset-dir", "d"]
    argv += ["--out", str(tmp_path / "o"), "--fractions", "0.1,1.0", "--steps", "12", "--seed", "2"]
    argv += ["--set", "model_size=tiny", "--set", "image_size=64", "--set", 'modes=["finetune"]']
    rows = main(argv)
    printed = capsys.readouterr().out
    assert "| finetune | macro_AUC | 0.625 |" in printed and "rows in" in printed
    assert rows == json.loads((tmp_path / "o" / "classification" / "rows.json").read_text())
    first = studies[-1]
    assert first[2] == {
        "fractions": (0.1, 1.0),
        "seed": 2,
        "inits": ("pretrained", "scratch"),
        "steps": 12,
        "model_size": "tiny",
        "image_size": 64,
        "modes": ["finetune"],
    }
    command = shlex.split(rows[0]["command"])
    assert command[:3] == ["python", "-m", "gkmvlp_monai.studies"]
    assert main(command[3:]) == rows  # the row's command regenerates the row
    assert studies[-1] == first


def test_cli_rejects_a_setting_without_a_value(capsys):
    with pytest.raises(SystemExit):
        main(["--task", "vqa", "--pretrained", "scratch", "--dataset-dir", "d", "--out", "o", "--set", "lr"])
    assert "expected key=value" in capsys.readouterr().err


def test_cli_help_runs_as_a_module():
    proc = subprocess.run(
        [sys.executable, "-m", "gkmvlp_monai.studies", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "--pretrained" in proc.stdout and "--set KEY=VALUE" in proc.stdout


def test_commit_is_the_checkouts_head_else_the_package_version(monkeypatch):
    import gkmvlp_monai

    head = subprocess.run(
        ["git", "-C", str(runner.Path(gkmvlp_monai.__file__).parent), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
    )
    if head.returncode == 0:
        assert runner.source_commit() == head.stdout.strip()

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(runner.subprocess, "run", no_git)
    assert runner.source_commit() == f"gkmvlp-monai=={gkmvlp_monai.__version__}"


REPO = runner.Path(__file__).resolve().parents[1]
# the README, the model cards and the modules whose docstrings show a study command
COMMAND_SOURCES = [
    REPO / "README.md",
    *sorted((REPO / "bundles").glob("*/docs/README.md")),
    REPO / "gkmvlp_monai" / "studies" / "__main__.py",
    *sorted((REPO / "gkmvlp_monai" / "tasks").glob("*/study.py")),
]


def _documented_study_commands() -> list[tuple[str, list[str]]]:
    """``(file, argv)`` of every ``python -m gkmvlp_monai.studies`` command written in the sources: in a
    code block (backslash continuations joined, a trailing ``#`` comment dropped) or in inline code."""
    found = []
    for path in COMMAND_SOURCES:
        text = path.read_text()
        text = ast.get_docstring(ast.parse(text)) or "" if path.suffix == ".py" else text
        text = re.sub(r"\\\n\s*", " ", text)  # backslash continuations
        # inline code runs to its closing backtick (across line breaks), a code block line to its end
        for match in re.finditer(
            r"`python -m gkmvlp_monai\.studies(?P<inline>[^`]*)|python -m gkmvlp_monai\.studies(?P<line>[^`\n]*)",
            text,
        ):
            args = (match.group("inline") or match.group("line") or "").split(" #")[0]
            if "<" not in args:  # not a synopsis such as ``--task <task>``
                found.append((str(path.relative_to(REPO)), shlex.split(args)))
    return found


def test_documented_study_commands_parse_and_name_real_settings():
    commands = _documented_study_commands()
    assert {task for _, argv in commands for task in runner.STUDIES if task in argv} == set(runner.STUDIES)
    from gkmvlp_monai.studies.__main__ import parser

    for where, argv in commands:
        if "--pretrained" not in argv:  # a mention such as `python -m gkmvlp_monai.studies --task vqa`
            assert argv[:1] == ["--task"] and argv[1] in runner.STUDIES, (where, argv)
            continue
        args = parser().parse_args(argv)
        runner.check_settings(args.task, runner.STUDIES[args.task], dict(args.settings))


def test_runner_hands_the_study_a_tuple_of_initialisations(tmp_path, studies):
    runner.run_study("vqa", "m.pt", "data", tmp_path, inits=["scratch"])
    assert studies[0][2]["inits"] == ("scratch",)
