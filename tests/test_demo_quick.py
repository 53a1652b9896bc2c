"""The README's main command in --quick mode, end to end (slow: a few minutes)."""

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_quick_runs_every_stage(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gkmvlp_monai.apps.demo",
            "--quick",
            "--out",
            str(tmp_path / "out"),
            "--data",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=3000,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = tmp_path / "out"
    for task in ("classification", "localization", "report_generation", "vqa"):
        rows = json.loads((out / task / "rows.json").read_text())
        assert rows and all(r["task"] == task and isinstance(r["value"], float) for r in rows), task
    summary = (out / "summary.md").read_text()
    assert "not run" not in summary and (out / "summary.png").is_file()
    assert json.loads((out / "demo_report.json").read_text())["quick"] is True
