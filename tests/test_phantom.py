"""The chest phantom: its anatomy and boxes, and that it is the project's only phantom generator."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

import gkmvlp_monai
from gkmvlp_monai.apps.image_pipeline_demo import write_demo_samples
from gkmvlp_monai.core.boxes import boxes_from_dict
from gkmvlp_monai.core.vocab import region_names
from gkmvlp_monai.data.synth.phantom import PhantomPose, chest_phantom

REPO = Path(gkmvlp_monai.__file__).resolve().parents[1]
PHANTOM = "gkmvlp_monai/data/synth/phantom.py"


def _mean_in(img: np.ndarray, box: np.ndarray) -> float:
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    return float(img[x1:x2, y1:y2].mean())


def test_phantom_lungs_are_dark_and_boxes_follow_the_pose() -> None:
    img, boxes = chest_phantom(160, 200, noise=0.0)
    names = region_names()
    assert img.shape == (160, 200) and img.dtype == np.float32 and 0 <= img.min() < img.max() <= 1
    assert boxes.shape == (len(names), 4) and (boxes[:, 2:] > boxes[:, :2]).all()
    lung = boxes[names.index("right lung")]
    heart = boxes[names.index("cardiac silhouette")]
    assert _mean_in(img, lung) < _mean_in(img, heart) - 0.2  # air is dark, the heart is dense
    moved, moved_boxes = chest_phantom(160, 200, PhantomPose(shift_x=0.1), noise=0.0)
    np.testing.assert_allclose(moved_boxes[:, [0, 2]], boxes[:, [0, 2]] + 16, atol=1e-4)
    # the picture moved with its boxes (but for pixels right on a shape's edge, where rounding decides)
    assert np.mean(np.abs(moved[16:] - img[:-16]) > 0.02) < 0.002
    noisy = [chest_phantom(64, 64, seed=s)[0] for s in (0, 0, 1)]
    assert np.array_equal(noisy[0], noisy[1]) and not np.array_equal(noisy[0], noisy[2])


def test_demo_samples_carry_the_phantom_boxes(tmp_path: Path) -> None:
    items = write_demo_samples(tmp_path)
    truth = chest_phantom(520, 600)[1]
    boxes, mask = boxes_from_dict(items[0]["region_boxes"])
    assert mask.sum() == 2 and np.allclose(boxes[mask], truth[mask])


def _calls(node: ast.AST) -> set[str]:
    return {
        n.func.id if isinstance(n.func, ast.Name) else n.func.attr
        for n in ast.walk(node)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name | ast.Attribute)
    }


def test_chest_phantom_is_the_only_phantom_generator() -> None:
    files = [p for d in ("gkmvlp_monai", "tests", "bench") for p in sorted((REPO / d).rglob("*.py"))]
    phantom_tree = ast.parse((REPO / PHANTOM).read_text(encoding="utf-8"))
    returns_pictures = {
        n.name
        for n in phantom_tree.body
        if isinstance(n, ast.FunctionDef) and "np.clip(img" in ast.unparse(n)
    }
    assert returns_pictures == {"chest_phantom"}
    for path in files:
        rel = path.relative_to(REPO).as_posix()
        if rel == PHANTOM:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            named = isinstance(node, ast.FunctionDef | ast.ClassDef) and "phantom" in node.name.lower()
            if named and not node.name.startswith("test"):
                assert "chest_phantom" in _calls(node), f"{rel}: {node.name} draws a phantom of its own"
    # the pictures the image-pipeline demo and the input-scope tests write are the phantom's
    for rel, helper in (
        ("gkmvlp_monai/apps/image_pipeline_demo.py", "_picture"),
        ("tests/test_input_scope.py", "_picture"),
    ):
        tree = ast.parse((REPO / rel).read_text(encoding="utf-8"))
        (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == helper]
        assert "chest_phantom" in _calls(fn), f"{rel}: {helper} no longer draws the chest phantom"
