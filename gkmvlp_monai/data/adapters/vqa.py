"""VQA-RAD and SLAKE: one datalist item per question.

VQA-RAD (OSF, Lau et al. 2018)::

    <root>/VQA_RAD Dataset Public.json     list of {qid, image_name, image_organ, question, answer,
                                           answer_type, question_type, phrase_type, ...}
    <root>/VQA_RAD Image Folder/<image_name>

``phrase_type`` ``test_freeform``/``test_para`` marks the official test questions; the rest is split
per image into training/validation.

SLAKE 1.0 (med-vqa.com/slake)::

    <root>/train.json, validate.json, test.json   list of {img_id, img_name, question, answer, q_lang,
                                                  modality, location, answer_type, content_type, qid, ...}
    <root>/imgs/xmlab0/source.jpg

Only English questions (``q_lang == "en"``) are kept (the others are counted); ``chest_only`` keeps
X-Ray images whose ``location`` is chest or lung.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gkmvlp_monai.data.adapters.base import AdapterError, AdapterResult, require_file
from gkmvlp_monai.data.datalist import SkipLog, assign_splits, relative_to


def _load_json_list(path: Path) -> list[dict[str, Any]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise AdapterError(f"{path}: cannot read JSON ({err})") from err
    if not isinstance(doc, list):
        raise AdapterError(f"{path}: expected a JSON list of questions")
    return doc


def _answer_type(raw: Any, where: str) -> str:
    text = str(raw).strip().upper()
    if text not in ("CLOSED", "OPEN"):
        raise AdapterError(f"{where}: answer_type {raw!r} is not CLOSED or OPEN")
    return text


def _need(entry: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in entry]
    if missing:
        raise AdapterError(f"{where}: missing key(s) {missing}")


def adapt_vqa_rad(
    root: Path, out_dir: Path, seed: int = 0, val_ratio: float = 0.1, chest_only: bool = False, **_: Any
) -> AdapterResult:
    """Build the VQA-RAD datalist.

    Args:
        root: VQA-RAD folder.
        out_dir: datalist folder.
        seed: split seed.
        val_ratio: validation share of training images.
        chest_only: keep only ``image_organ == "CHEST"`` questions (others counted as skipped).

    Returns:
        The adapter result.

    Raises:
        AdapterError: missing file or key, bad answer type.
    """
    qfile = require_file(root, "VQA_RAD Dataset Public.json")
    img_dir = require_file(root, "VQA_RAD Image Folder")
    skipped = SkipLog()
    items, official = [], {}
    for i, q in enumerate(_load_json_list(qfile)):
        where = f"{qfile} entry {i}"
        _need(q, ("qid", "image_name", "question", "answer", "answer_type", "phrase_type"), where)
        if chest_only and str(q.get("image_organ", "")).strip().upper() != "CHEST":
            skipped.add("not a chest image (chest_only)", str(q["image_name"]))
            continue
        image = img_dir / str(q["image_name"]).strip()
        if not image.is_file():
            skipped.add("image file missing", str(q["image_name"]))
            continue
        qid = str(q["qid"])
        items.append(
            {
                "image": relative_to(image, out_dir),
                "image_id": str(q["image_name"]).strip(),
                "subject_id": str(q["image_name"]).strip(),
                "question_id": qid,
                "question": str(q["question"]).strip(),
                "answer": str(q["answer"]).strip(),
                "answer_type": _answer_type(q["answer_type"], where),
                "question_type": str(q.get("question_type", "")).strip(),
            }
        )
        official[qid] = "test" if str(q["phrase_type"]).startswith("test") else "train"
    splits = assign_splits(items, official, val_ratio=val_ratio, seed=seed, split_key="question_id")
    return AdapterResult(
        name="vqa_rad",
        splits=splits,
        description="VQA-RAD; one item per question; official test = phrase_type test_*",
        skipped=skipped,
    )


def adapt_slake(
    root: Path, out_dir: Path, seed: int = 0, chest_only: bool = False, **_: Any
) -> AdapterResult:
    """Build the SLAKE (English) datalist with its official train/validate/test files.

    Args:
        root: SLAKE folder.
        out_dir: datalist folder.
        seed: unused split seed (SLAKE has official splits); kept for a uniform signature.
        chest_only: keep only X-Ray questions about the chest or lungs.

    Returns:
        The adapter result.

    Raises:
        AdapterError: missing file or key, bad answer type.
    """
    img_dir = require_file(root, "imgs")
    skipped = SkipLog()
    splits: dict[str, list[dict[str, Any]]] = {"training": [], "validation": [], "test": []}
    for fname, split in (("train.json", "training"), ("validate.json", "validation"), ("test.json", "test")):
        qfile = require_file(root, fname)
        for i, q in enumerate(_load_json_list(qfile)):
            where = f"{qfile} entry {i}"
            _need(q, ("qid", "img_name", "question", "answer", "answer_type", "q_lang"), where)
            if q["q_lang"] != "en":
                skipped.add("not English (q_lang != en)", "")
                continue
            loc = str(q.get("location", "")).lower()
            if chest_only and not (q.get("modality") == "X-Ray" and ("chest" in loc or "lung" in loc)):
                skipped.add("not a chest X-ray (chest_only)", str(q["img_name"]))
                continue
            image = img_dir / str(q["img_name"])
            if not image.is_file():
                skipped.add("image file missing", str(q["img_name"]))
                continue
            img_id = str(q.get("img_id", Path(str(q["img_name"])).parent.name))
            splits[split].append(
                {
                    "image": relative_to(image, out_dir),
                    "image_id": img_id,
                    "subject_id": img_id,
                    "question_id": str(q["qid"]),
                    "question": str(q["question"]).strip(),
                    "answer": str(q["answer"]).strip(),
                    "answer_type": _answer_type(q["answer_type"], where),
                    "question_type": str(q.get("content_type", "")).strip(),
                }
            )
    return AdapterResult(
        name="slake" + ("_chest" if chest_only else ""),
        splits=splits,
        description="SLAKE 1.0 English; one item per question; official splits"
        + ("; chest X-ray only" if chest_only else ""),
        skipped=skipped,
    )
