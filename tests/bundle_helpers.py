"""Helpers for running bundles in tests (subprocesses, as a user would), and the tiny data sets they share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "configs" / "bundle" / "metadata_schema.json"


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def bundle_cmd(
    bundle: str,
    args: list[str],
    timeout: int = 600,
    cwd: Path | None = None,
    label: str | None = None,
    tail: int = 6000,
) -> str:
    """Run ``python -m monai.bundle <args>`` in ``bundles/<bundle>``; return its output, fail with it.

    With ``label``, print one line ``[e2e] <bundle> <label>: <seconds> s`` (the end-to-end tier's timing).
    The output is captured; on failure the last ``tail`` characters are shown.
    """
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "monai.bundle", *args],
        cwd=cwd or REPO / "bundles" / bundle,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if label:
        print(f"[e2e] {bundle} {label}: {time.perf_counter() - start:.1f} s", flush=True)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise AssertionError(f"monai.bundle {' '.join(args[:3])} failed ({proc.returncode}):\n{out[-tail:]}")
    return out


def overrides(**kw: object) -> list[str]:
    """``--key value`` pairs (values as Python literals, the way fire parses them)."""
    out: list[str] = []
    for k, v in kw.items():
        out += [f"--{k}", repr(v) if isinstance(v, str) else str(v)]
    return out


def _random_png(path: Path, rng) -> None:
    import numpy as np
    from PIL import Image

    Image.fromarray(rng.integers(0, 255, (40, 48), dtype=np.uint8)).save(path)


def build_chexpert_datalist(folder: Path) -> str:
    """A CheXpert-14 multi-label datalist of random 48x40 PNGs with region boxes (14 train / 6 / 6)."""
    import numpy as np

    from gkmvlp_monai.core.vocab import label_set, region_names

    rng = np.random.default_rng(0)
    names = label_set("chexpert14")
    boxes = {r: [4.0, 4.0, 30.0, 30.0] for r in region_names()[:5]}
    doc = {"name": "tiny", "label_names": names, "label_type": "multilabel", "seed": 0}
    for split, n in (("training", 14), ("validation", 6), ("test", 6)):
        items = []
        for i in range(n):
            _random_png(folder / f"{split}_{i}.png", rng)
            label = [0.0] * len(names)
            label[i % 3] = 1.0
            label[4] = -1.0 if i == 1 else label[4]
            items.append({"image": f"{split}_{i}.png", "label": label, "region_boxes": boxes})
        doc[split] = items
    path = folder / "datalist.json"
    path.write_text(json.dumps(doc))
    return str(path)


def build_vqa_datalist(folder: Path) -> str:
    """iu-synth-style datalist: random 48x40 PNGs with region boxes and image-level qa lists (6 / 2 / 2)."""
    import numpy as np

    from gkmvlp_monai.core.vocab import region_names

    rng = np.random.default_rng(0)
    boxes = {r: [4.0, 4.0, 30.0, 30.0] for r in region_names()[:5]}
    doc = {"name": "tiny-vqa", "label_names": [], "label_type": "multilabel"}
    for split, n in (("training", 6), ("validation", 2), ("test", 2)):
        items = []
        for i in range(n):
            _random_png(folder / f"{split}_{i}.png", rng)
            qa = [
                {
                    "question": "Is there cardiomegaly?",
                    "answer": "yes" if i % 2 else "no",
                    "answer_type": "CLOSED",
                },
                {
                    "question": "Where is the nodule?",
                    "answer": ["right lung", "left lung"][i % 2],
                    "answer_type": "OPEN",
                },
            ]
            items.append({"image": f"{split}_{i}.png", "region_boxes": boxes, "qa": qa})
        doc[split] = items
    path = folder / "datalist.json"
    path.write_text(json.dumps(doc))
    return str(path)


RESUME_MARK = 1000


def mark_resume_point(ckpt_dir: Path) -> int:
    """Tag the checkpoint ``--resume True`` will load: add ``RESUME_MARK`` to its optimizer step counts.

    Returns the iterations trained so far. A run that resumes continues these counts, so its final
    checkpoint holds ``RESUME_MARK + iterations``; a run that restarted from scratch holds only its own
    iterations (``resumed_steps`` reads them back). The project's behaviour, not an engine's log wording.
    """
    import torch

    from gkmvlp_monai.engine.handlers import latest_checkpoint

    path = latest_checkpoint(str(ckpt_dir))
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["optimizer"]["state"], f"{path}: no optimizer state to mark"
    for state in ckpt["optimizer"]["state"].values():
        state["step"] = state["step"] + RESUME_MARK
    torch.save(ckpt, path)
    return int(ckpt["trainer"]["iteration"])


def resumed_steps(ckpt_dir: Path) -> tuple[set[int], int, int]:
    """(optimizer step counts, trainer iteration, completed epochs) in ``checkpoint_final.pt``."""
    import torch

    ckpt = torch.load(Path(ckpt_dir) / "checkpoint_final.pt", weights_only=True)
    steps = {int(s["step"]) for s in ckpt["optimizer"]["state"].values()}
    trainer = ckpt["trainer"]
    return steps, int(trainer["iteration"]), int(trainer["iteration"]) // int(trainer["epoch_length"])
