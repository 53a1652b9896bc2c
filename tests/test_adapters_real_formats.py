"""Adapters on excerpts of the REAL label files (NIH, RSNA, SIIM-ACR, IU X-ray), checked against an
independent parse of the same excerpts.

The excerpts in ``tests/fixtures/label_excerpts/`` are verbatim rows of the files shipped in the
torchxrayvision 1.5.7 wheel (see its README.md); each test copies them unchanged into a data set root in
the adapter's official layout, makes placeholder images for their ids, prepares the data set and
compares every item with what this file reads from the excerpt with ``csv``/``gzip``/``zipfile`` alone.
Each test then deletes one subject's images and prepares again: no other item may change split or
``training_10pct`` membership (splits and fractions are a per-subject hash).
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from gkmvlp_monai.core.vocab import label_set
from gkmvlp_monai.data.adapters import prepare_dataset
from gkmvlp_monai.data.dicom_writer import write_cxr_dicom

EXCERPTS = Path(__file__).parent / "fixtures" / "label_excerpts"


def _cached_wheel() -> str:
    """The torchxrayvision wheel as the demo finds it (``$GKMVLP_XRV_WHEEL``, else its cache), or ``""``."""
    from gkmvlp_monai.data.xrv_assets import AssetUnavailableError, wheel_path

    try:
        return str(wheel_path(download=False))
    except AssetUnavailableError:
        return ""


WHEEL = _cached_wheel()
SPLITS = ("training", "validation", "test")


# ---------------------------------------------------------------- independent readers and checks


def _gz_rows(path: Path) -> list[list[str]]:
    """All CSV rows (header first) of a gzipped CSV, read with the csv module."""
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline="")))


def _png(path: Path, size: int = 16) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (size, size), color=128).save(path)


def _prepare(name: str, root: Path, out: Path, **options: Any) -> tuple[dict[str, dict[str, Any]], Any]:
    """Prepare with one worker; return image_id -> item (with its ``split``) and the adapter result."""
    path, res = prepare_dataset(name, root, out, workers=1, **options)
    doc = json.loads(path.read_text(encoding="utf-8"))
    items: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        for item in doc[split]:
            assert item["image_id"] not in items, f"{item['image_id']} appears twice"
            items[item["image_id"]] = {**item, "split": split}
    return items, res


def _split_rows(out: Path) -> dict[str, dict[str, str]]:
    """id -> row of the ``<name>_splits.csv`` written next to the datalist."""
    (path,) = out.glob("*_splits.csv")
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["id"]: row for row in csv.DictReader(fh)}


def _subject_to_drop(rows: dict[str, dict[str, str]]) -> str:
    """A training subject whose removal may not move anybody: a member of ``training_10pct`` when the
    subset has two or more subjects (so it is not the "nobody selected" fallback), else a non-member."""
    training = [r for r in rows.values() if r["split"] == "training"]
    members = sorted({r["subject_id"] for r in training if r["training_10pct"] == "1"})
    others = sorted({r["subject_id"] for r in training} - set(members))
    return members[0] if len(members) >= 2 else others[0]


def _assert_stable_without(
    before: dict[str, dict[str, str]], after: dict[str, dict[str, str]], subject: str
) -> None:
    gone = {i for i, r in before.items() if r["subject_id"] == subject}
    assert gone, f"subject {subject} has no items"
    assert set(after) == set(before) - gone
    moved = {
        i: ((before[i]["split"], before[i]["training_10pct"]), (r["split"], r["training_10pct"]))
        for i, r in after.items()
        if (r["split"], r["training_10pct"]) != (before[i]["split"], before[i]["training_10pct"])
    }
    assert not moved, f"removing subject {subject} moved other items: {moved}"


def _assert_subject_level(items: dict[str, dict[str, Any]]) -> None:
    """All items of one subject share a split, and more than one split is populated."""
    by_subject: dict[str, set[str]] = {}
    for item in items.values():
        by_subject.setdefault(item["subject_id"], set()).add(item["split"])
    assert all(len(s) == 1 for s in by_subject.values())
    assert len({item["split"] for item in items.values()}) >= 2


def _drop_and_recheck(
    name: str, root: Path, out: Path, files_of_subject: Any, **options: Any
) -> tuple[str, Any]:
    """Delete one subject's image files, prepare into ``<out>_drop`` and check nobody else moved."""
    before = _split_rows(out)
    subject = _subject_to_drop(before)
    files = list(files_of_subject(subject))
    assert files
    for path in files:
        path.unlink()
    _, res = _prepare(name, root, out.with_name(out.name + "_drop"), **options)
    _assert_stable_without(before, _split_rows(out.with_name(out.name + "_drop")), subject)
    return subject, res


# ---------------------------------------------------------------- the excerpts themselves


def test_excerpts_are_small_and_documented() -> None:
    files = sorted(p for p in EXCERPTS.glob("*/*") if p.is_file())
    names = {p.relative_to(EXCERPTS).as_posix() for p in files}
    assert names == {
        "nih/Data_Entry_2017_v2020.csv.gz",
        "nih/BBox_List_2017.csv.gz",
        "rsna/stage_2_train_labels.csv.zip",
        "siim/train-rle.csv.gz",
        "iu/nlmcxr_dicom_metadata.csv.gz",
    }
    assert sum(p.stat().st_size for p in files) < 150_000
    readme = (EXCERPTS / "README.md").read_text(encoding="utf-8")
    for word in (
        "torchxrayvision 1.5.7",
        "make_excerpts.py",
        "CC BY-NC-ND",
        "CheXpert",
        "Wang",
        "Demner-Fushman",
    ):
        assert word in readme


@pytest.mark.skipif(not WHEEL, reason="torchxrayvision wheel not cached (the demo's data stage fetches it)")
def test_excerpts_are_reproducible_from_the_wheel(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_excerpts", EXCERPTS / "make_excerpts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with zipfile.ZipFile(WHEEL) as wheel:
        for make in (module.make_nih, module.make_rsna, module.make_siim, module.make_iu):
            make(wheel, tmp_path)
    for path in sorted(EXCERPTS.glob("*/*")):
        assert (tmp_path / path.relative_to(EXCERPTS)).read_bytes() == path.read_bytes(), path


# ---------------------------------------------------------------- NIH ChestX-ray14


def _nih_expected() -> dict[str, dict[str, Any]]:
    classes = label_set("nih14")
    entry = _gz_rows(EXCERPTS / "nih" / "Data_Entry_2017_v2020.csv.gz")
    assert entry[0][:7] == [
        "Image Index",
        "Finding Labels",
        "Follow-up #",
        "Patient ID",
        "Patient Age",
        "Patient Gender",
        "View Position",
    ]
    boxes = _gz_rows(EXCERPTS / "nih" / "BBox_List_2017.csv.gz")
    assert boxes[0] == ["Image Index", "Finding Label", "Bbox [x", "y", "w", "h]", "", "", ""]
    expected: dict[str, dict[str, Any]] = {}
    for row in entry[1:]:
        found = row[1].split("|")
        label = [0.0] * len(classes) if found == ["No Finding"] else [float(c in found) for c in classes]
        assert found == ["No Finding"] or all(f in classes for f in found), row
        expected[row[0][: -len(".png")]] = {
            "file": row[0],
            "subject_id": str(int(row[3])),
            "view": row[6],
            "label": label,
        }
    for row in boxes[1:]:
        x, y, w, h = (float(v) for v in row[2:6])
        item = expected[row[0][: -len(".png")]]
        item.setdefault("lesion_boxes", []).append([x, y, x + w, y + h])
        item.setdefault("lesion_labels", []).append("Infiltration" if row[1] == "Infiltrate" else row[1])
    return expected


def _nih_root(root: Path, expected: dict[str, dict[str, Any]], archives: bool) -> dict[str, Path]:
    """Copy the label files and make a 16 x 16 PNG per image: ``images/`` or ``images_00N/images``."""
    root.mkdir(parents=True)
    for name in ("Data_Entry_2017_v2020.csv.gz", "BBox_List_2017.csv.gz"):
        shutil.copyfile(EXCERPTS / "nih" / name, root / name)
    paths = {}
    for k, (image_id, exp) in enumerate(sorted(expected.items())):
        folder = root / f"images_{1 + k % 3:03d}" / "images" if archives else root / "images"
        paths[image_id] = folder / exp["file"]
        _png(paths[image_id])
    return paths


def test_nih_real_label_files(tmp_path: Path) -> None:
    expected = _nih_expected()
    assert any("|" in e["file"] or sum(e["label"]) > 1 for e in expected.values())
    assert any(sum(e["label"]) == 0 for e in expected.values())
    assert any(len(e.get("lesion_boxes", [])) >= 3 for e in expected.values())
    assert "Infiltration" in {lab for e in expected.values() for lab in e.get("lesion_labels", [])}
    root = tmp_path / "nih"
    paths = _nih_root(root, expected, archives=False)
    items, res = _prepare("nih", root, tmp_path / "out")
    assert res.layout == "images/ (one folder)"
    assert res.skipped.total == 0 and any("test_list.txt" in w for w in res.warnings)
    assert res.label_names == label_set("nih14")
    assert set(items) == set(expected)
    for image_id, exp in expected.items():
        item = items[image_id]
        assert item["subject_id"] == exp["subject_id"], image_id
        assert item["view"] == exp["view"] and item["view"] in ("PA", "AP"), image_id
        assert item["label"] == exp["label"], image_id
        assert item["image_size"] == [16, 16]
        assert (tmp_path / "out" / item["image"]).resolve() == paths[image_id].resolve()
        if "lesion_boxes" in exp:
            assert item["lesion_boxes"] == exp["lesion_boxes"], image_id
            assert item["lesion_labels"] == exp["lesion_labels"], image_id
        else:
            assert "lesion_boxes" not in item and "lesion_labels" not in item, image_id
    _assert_subject_level(items)

    def files_of(subject: str) -> list[Path]:
        return [paths[i] for i, e in expected.items() if e["subject_id"] == subject]

    subject, res2 = _drop_and_recheck("nih", root, tmp_path / "out", files_of)
    assert res2.skipped.counts == {"image file missing": len(files_of(subject))}


def test_nih_archive_folder_layout_gives_the_same_items(tmp_path: Path) -> None:
    expected = _nih_expected()
    _nih_root(tmp_path / "flat", expected, archives=False)
    paths = _nih_root(tmp_path / "archives", expected, archives=True)
    flat, _ = _prepare("nih", tmp_path / "flat", tmp_path / "out_flat")
    parts, res = _prepare("nih", tmp_path / "archives", tmp_path / "out_archives")
    assert res.layout == "images_001/images ... images_003/images (3 archive folders)"
    assert set(parts) == set(flat) == set(expected)
    for image_id, item in parts.items():
        assert (tmp_path / "out_archives" / item["image"]).resolve() == paths[image_id].resolve()
        assert {k: v for k, v in item.items() if k != "image"} == {
            k: v for k, v in flat[image_id].items() if k != "image"
        }


# ---------------------------------------------------------------- RSNA Pneumonia


def _rsna_expected() -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    with zipfile.ZipFile(EXCERPTS / "rsna" / "stage_2_train_labels.csv.zip") as zf:
        assert zf.namelist() == ["stage_2_train_labels.csv"]
        rows = list(csv.reader(io.StringIO(zf.read("stage_2_train_labels.csv").decode("utf-8"), newline="")))
    assert rows[0] == ["patientId", "x", "y", "width", "height", "Target"]
    expected: dict[str, dict[str, Any]] = {}
    n_rows: dict[str, int] = {}
    for pid, x, y, w, h, target in rows[1:]:
        exp = expected.setdefault(pid, {"label": [float(target)], "lesion_boxes": []})
        n_rows[pid] = n_rows.get(pid, 0) + 1
        assert exp["label"] == [float(target)]
        if target == "1":
            exp["lesion_boxes"].append([float(x), float(y), float(x) + float(w), float(y) + float(h)])
        else:
            assert (x, y, w, h) == ("", "", "", "")
    return expected, n_rows


def test_rsna_real_label_file(tmp_path: Path) -> None:
    expected, n_rows = _rsna_expected()
    assert max(len(e["lesion_boxes"]) for e in expected.values()) >= 3
    assert any(e["label"] == [0.0] for e in expected.values())
    root = tmp_path / "rsna"
    root.mkdir()
    shutil.copyfile(EXCERPTS / "rsna" / "stage_2_train_labels.csv.zip", root / "stage_2_train_labels.csv.zip")
    # 64 x 64 placeholders: the boxes (1024 x 1024 frame) lie outside them, and the adapter keeps
    # boxes as they are in the label file (no clipping), which is what is checked here
    pixels = np.zeros((64, 64), dtype=np.uint16)
    views = {}
    for k, pid in enumerate(sorted(expected)):
        views[pid] = "PA" if k % 2 else "AP"
        write_cxr_dicom(root / "stage_2_train_images" / f"{pid}.dcm", pixels, view_position=views[pid])
    items, res = _prepare("rsna", root, tmp_path / "out")
    assert res.skipped.total == 0 and res.label_names == ["Lung Opacity"]
    assert set(items) == set(expected)
    for pid, exp in expected.items():
        item = items[pid]
        assert item["subject_id"] == pid
        assert item["label"] == exp["label"], pid
        assert item["lesion_boxes"] == exp["lesion_boxes"], pid
        assert item["lesion_labels"] == ["Lung Opacity"] * len(exp["lesion_boxes"]), pid
        assert item["view"] == views[pid] and item["image_size"] == [64, 64]
    _assert_subject_level(items)
    subject, res2 = _drop_and_recheck(
        "rsna", root, tmp_path / "out", lambda pid: [root / "stage_2_train_images" / f"{pid}.dcm"]
    )
    assert res2.skipped.counts == {"image file missing": n_rows[subject]}


# ---------------------------------------------------------------- SIIM-ACR Pneumothorax


def _decode_column_major(rle: str, height: int, width: int) -> np.ndarray:
    """Independent SIIM decode: relative offsets (each from the end of the previous run), pixel ``p``
    of the column-major flattening at row ``p % height``, column ``p // height``."""
    mask = np.zeros((height, width), dtype=np.uint8)
    if rle.strip() == "-1":
        return mask
    values = [int(v) for v in rle.split()]
    assert len(values) % 2 == 0
    pixels, end = [], 0
    for offset, length in zip(values[0::2], values[1::2]):
        start = end + offset
        pixels.extend(range(start, start + length))
        end = start + length
    p = np.asarray(pixels, dtype=np.int64)
    assert p.size == 0 or p.max() < height * width
    mask[p % height, p // height] = 1
    return mask


def test_siim_real_rle_file(tmp_path: Path) -> None:
    text = gzip.decompress((EXCERPTS / "siim" / "train-rle.csv.gz").read_bytes()).decode("utf-8")
    lines = text.splitlines()
    assert lines[0] == "ImageId, EncodedPixels"
    rles: dict[str, list[str]] = {}
    for line in lines[1:]:
        image_id, rle = line.split(",", 1)
        rles.setdefault(image_id, []).append(rle)
    assert max(len(r) for r in rles.values()) >= 3
    assert any(r == ["-1"] for r in rles.values()) and any(r != ["-1"] for r in rles.values())
    size = 1024
    root = tmp_path / "siim"
    root.mkdir()
    shutil.copyfile(EXCERPTS / "siim" / "train-rle.csv.gz", root / "train-rle.csv.gz")
    pixels = np.zeros((size, size), dtype=np.uint16)
    paths, views = {}, {}
    for k, image_id in enumerate(sorted(rles)):
        views[image_id] = "PA" if k % 3 else "AP"
        study, series = f"1.2.276.0.7230010.3.1.2.{k}", f"1.2.276.0.7230010.3.1.3.{k}"
        paths[image_id] = root / "dicom-images-train" / study / series / f"{image_id}.dcm"
        write_cxr_dicom(paths[image_id], pixels, view_position=views[image_id])
    options = {"val_ratio": 0.25, "test_ratio": 0.25}
    items, res = _prepare("siim", root, tmp_path / "out", **options)
    assert res.skipped.total == 0 and res.label_names == ["Pneumothorax"]
    assert set(items) == set(rles)
    for image_id, image_rles in rles.items():
        expected = np.zeros((size, size), dtype=np.uint8)
        for rle in image_rles:
            part = _decode_column_major(rle, size, size)
            assert rle.strip() == "-1" or part.any()
            expected |= part
        item = items[image_id]
        written = np.asarray(Image.open(tmp_path / "out" / item["mask"]))
        assert written.shape == (size, size) and set(np.unique(written)) <= {0, 255}
        np.testing.assert_array_equal(written, expected * 255, err_msg=image_id)
        assert item["label"] == [float(expected.any())], image_id
        assert item["subject_id"] == image_id and item["view"] == views[image_id]
        assert item["image_size"] == [size, size]
        assert (tmp_path / "out" / item["image"]).resolve() == paths[image_id].resolve()
    _assert_subject_level(items)
    subject, res2 = _drop_and_recheck("siim", root, tmp_path / "out", lambda i: [paths[i]], **options)
    assert res2.skipped.counts == {"image file missing": len(rles[subject])}


# ---------------------------------------------------------------- IU X-ray (views table)

IU_XML = """<?xml version="1.0" encoding="utf-8"?>
<eCitation><uId id="{uid}"/><MedlineCitation><Article><Abstract>
<AbstractText Label="COMPARISON">None.</AbstractText>
<AbstractText Label="INDICATION">Cough</AbstractText>
<AbstractText Label="FINDINGS">The lungs are clear.</AbstractText>
<AbstractText Label="IMPRESSION">No acute disease.</AbstractText>
</Abstract></Article></MedlineCitation>
<MeSH><major>normal</major></MeSH>
{images}</eCitation>"""

# DICOM "View Position" values of the table -> the datalist's view (written out here, not imported)
IU_VIEWS = {
    "PA": "PA",
    "AP": "AP",
    "LL": "LL",
    "LATERAL": "LATERAL",
    "RL": "LATERAL",
    "LARGE LATERAL": "LATERAL",
    "": "",
}


def test_iu_xray_real_dicom_metadata_views(tmp_path: Path) -> None:
    rows = _gz_rows(EXCERPTS / "iu" / "nlmcxr_dicom_metadata.csv.gz")
    header = rows[0]
    assert all(len(r) == len(header) for r in rows), "a record was split: quoted newlines misread"
    id_col, view_col = header.index("imageid"), header.index("View Position")
    views = {r[id_col]: r[view_col] for r in rows[1:]}
    assert len(views) == len(rows) - 1
    assert {"PA", "AP", "LL", ""} <= set(views.values())
    by_report: dict[str, list[str]] = {}
    for image_id in views:
        by_report.setdefault(image_id.split("_")[0], []).append(image_id)
    root = tmp_path / "iu"
    (root / "ecgen-radiology").mkdir(parents=True)
    shutil.copyfile(EXCERPTS / "iu" / "nlmcxr_dicom_metadata.csv.gz", root / "nlmcxr_dicom_metadata.csv.gz")
    for n, (uid, image_ids) in enumerate(sorted(by_report.items()), start=1):
        images = "".join(f'<parentImage id="{i}"><caption>x</caption></parentImage>' for i in image_ids)
        (root / "ecgen-radiology" / f"{n}.xml").write_text(
            IU_XML.format(uid=uid, images=images), encoding="utf-8"
        )
        for image_id in image_ids:
            _png(root / "images" / f"{image_id}.png", size=8)
    items, res = _prepare("iu-xray", root, tmp_path / "out")
    assert res.skipped.total == 0
    assert set(items) == set(views)
    for image_id, raw_view in views.items():
        item = items[image_id]
        assert item["view"] == IU_VIEWS[raw_view], (image_id, raw_view)
        assert item["subject_id"] == image_id.split("_")[0]
        assert item["report"] == "The lungs are clear. No acute disease."
    _assert_subject_level(items)
    subject, res2 = _drop_and_recheck(
        "iu-xray", root, tmp_path / "out", lambda uid: [root / "images" / f"{i}.png" for i in by_report[uid]]
    )
    assert res2.skipped.counts == {"image file missing": len(by_report[subject])}
