"""Tests of the iu-synth demo data set builder: determinism, truth consistent with pixels, formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gkmvlp_monai.core.vocab import entity_names, label_set, region_names
from gkmvlp_monai.data.synth.anatomy import MaskRejectedError, clean_lung_mask, load_lung_templates
from gkmvlp_monai.data.synth.case import render_case
from gkmvlp_monai.data.synth.findings import drawer_table
from gkmvlp_monai.data.synth.truth import bit_mask
from gkmvlp_monai.data.xrv_assets import AssetUnavailableError, iter_lung_masks

GRID = 128
SIZE = 256


@pytest.fixture(scope="module")
def templates():
    try:
        tpls, _ = load_lung_templates(iter_lung_masks(download=False), GRID, limit=6)
    except AssetUnavailableError as err:
        pytest.skip(f"torchxrayvision wheel not available: {err}")
    return tpls


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from gkmvlp_monai.data.synth import build_iu_synth

    out = tmp_path_factory.mktemp("iu_synth")
    try:
        path = build_iu_synth(out / "a", limit=12, seed=3, size=SIZE, workers=1)
    except AssetUnavailableError as err:
        pytest.skip(f"torchxrayvision wheel not available: {err}")
    return path


def _two_blobs(h: int = 200, w: int = 240) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    a = ((yy - 100) / 70) ** 2 + ((xx - 70) / 40) ** 2 < 1
    b = ((yy - 100) / 75) ** 2 + ((xx - 170) / 45) ** 2 < 1
    return ((a | b) * 255).astype(np.uint8)


def test_clean_lung_mask_orders_sides_and_rejects_junk():
    tpl = clean_lung_mask(_two_blobs(), GRID)
    # the patient's right lung is the one on the picture's left
    assert np.nonzero(tpl.right)[1].mean() < np.nonzero(tpl.left)[1].mean()
    assert not (tpl.right & tpl.left).any()
    with pytest.raises(MaskRejectedError):
        clean_lung_mask(np.zeros((50, 50), np.uint8), GRID)
    one = _two_blobs()
    one[:, 120:] = 0
    with pytest.raises(MaskRejectedError):
        clean_lung_mask(one, GRID)


def test_drawer_table_names_known_entities():
    assert set(drawer_table()) <= set(entity_names())


def test_render_is_deterministic_and_seed_dependent(templates):
    tags = ["Opacity/lung/base/right", "Cardiomegaly/mild"]
    a = render_case(templates[0], tags, (0, 1), size=SIZE)
    b = render_case(templates[0], tags, (0, 1), size=SIZE)
    c = render_case(templates[0], tags, (1, 1), size=SIZE)
    np.testing.assert_array_equal(a.image, b.image)
    assert a.lesion_boxes == b.lesion_boxes and a.region_boxes == b.region_boxes
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize(
    "tags",
    [
        ["Nodule/lung/upper lobe/left"],
        ["Opacity/lung/base/right", "Calcified Granuloma/lung/upper lobe/left"],
        ["Pleural Effusion/right/moderate"],
        ["Pneumothorax/apex/left/moderate"],
        ["Pulmonary Atelectasis/base/left", "Catheters, Indwelling/right"],
    ],
)
def test_lesion_boxes_cover_the_drawn_pixels(templates, tags):
    with_f = render_case(templates[1], tags, (5, 2), size=SIZE)
    without = render_case(templates[1], tags, (5, 2), size=SIZE, draw_findings=False)
    assert with_f.lesion_boxes, "nothing was drawn"
    diff = np.abs(with_f.image - without.image)
    strong = diff > 0.3 * diff.max()
    cover = np.zeros_like(strong)
    for (x1, y1, x2, y2), m in zip(with_f.lesion_boxes, with_f.lesion_masks):
        # the box is the tight box of the mask (x = column, y = row)
        rows, cols = np.nonzero(m)
        assert [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1] == [x1, y1, x2, y2]
        cover[max(0, int(y1) - 1) : int(y2) + 1, max(0, int(x1) - 1) : int(x2) + 1] = True
    assert strong.any()
    assert (strong & ~cover).sum() <= 0.01 * strong.sum(), "drawn pixels outside the lesion boxes"


def test_region_boxes_cover_the_rendered_anatomy(templates):
    case = render_case(templates[2], ["normal"], (0, 7), size=SIZE)
    assert list(case.region_boxes) == [n for n in region_names() if n in case.region_boxes]
    assert len(case.region_boxes) >= 27
    img = case.image
    for name, struct in (
        ("right lung", "lung_r"),
        ("left lung", "lung_l"),
        ("cardiac silhouette", "heart"),
        ("spine", "spine"),
    ):
        x1, y1, x2, y2 = case.region_boxes[name]
        rows, cols = np.nonzero(bit_mask(case.labels, struct))
        assert cols.min() >= x1 and cols.max() < x2 and rows.min() >= y1 and rows.max() < y2
    # pixels: the lung fields are dark, the mediastinum between them bright
    lungs = bit_mask(case.labels, "lung_r", "lung_l")
    med = bit_mask(case.labels, "upper_mediastinum")
    assert img[lungs].mean() + 0.15 < img[med].mean()
    # the darkest body pixels (away from the skin line, where tissue fades to air) lie in the lung boxes
    from scipy import ndimage as ndi

    body = ndi.binary_erosion(bit_mask(case.labels, "body"), iterations=SIZE // 32)
    dark = body & (img < np.percentile(img[body], 10))
    inside = np.zeros_like(dark)
    for name in ("right lung", "left lung"):
        x1, y1, x2, y2 = (int(v) for v in case.region_boxes[name])
        inside[y1:y2, x1:x2] = True
    assert (dark & inside).sum() >= 0.9 * dark.sum()
    # the patient's right lung is on the picture's left
    assert case.region_boxes["right lung"][0] < case.region_boxes["left lung"][0]


def test_build_writes_consistent_datalist(built: Path):
    doc = json.loads(built.read_text())
    assert doc["label_names"] == label_set("chexpert14")
    items = [it for k in ("training", "validation", "test") for it in doc[k]]
    assert len(items) == 12
    subjects = {k: {it["subject_id"] for it in doc[k]} for k in ("training", "validation", "test")}
    assert not (subjects["training"] & subjects["test"]) and not (
        subjects["training"] & subjects["validation"]
    )
    base = built.parent
    kinds = set()
    for it in items:
        assert it["image"] in (it["image_png"], it["image_dcm"])
        kinds.add(it["image"].rsplit(".", 1)[1])
        png = np.asarray(Image.open(base / it["image_png"]))
        assert png.shape == (SIZE, SIZE) and it["image_size"] == [SIZE, SIZE]
        assert len(it["label"]) == 14
        assert len(it["lesion_boxes"]) == len(it["lesion_labels"]) == len(it["masks"])
        for box, rel in zip(it["lesion_boxes"], it["masks"]):
            rows, cols = np.nonzero(np.asarray(Image.open(base / rel)))
            assert [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1] == box
        if not it["lesion_labels"]:
            assert it["label"][0] == 1.0
        assert any(q["answer_type"] == "CLOSED" for q in it["qa"])
        assert all(v["state"] in ("present", "absent", "uncertain") for v in it["entities"].values())
    assert kinds == {"png", "dcm"}
    info = json.loads((base / "build_info.json").read_text())
    assert info["counts"]["reports"] == 12 and info["seed"] == 3


def test_dicom_matches_png(built: Path):
    pydicom = pytest.importorskip("pydicom")
    doc = json.loads(built.read_text())
    base = built.parent
    for it in [it for k in ("training", "validation", "test") for it in doc[k]][:6]:
        ds = pydicom.dcmread(base / it["image_dcm"])
        arr = ds.pixel_array.astype(np.float64)
        top = 2 ** int(ds.BitsStored) - 1
        if ds.PhotometricInterpretation == "MONOCHROME1":
            arr = top - arr
        png = np.asarray(Image.open(base / it["image_png"])).astype(np.float64)
        assert ds.Modality == "DX" and arr.shape == png.shape
        assert np.abs(arr / top * 255 - png).max() <= 1.0


def test_build_is_deterministic(built: Path, tmp_path: Path):
    from gkmvlp_monai.data.synth import build_iu_synth

    again = build_iu_synth(tmp_path / "b", limit=12, seed=3, size=SIZE, workers=2)
    a, b = json.loads(built.read_text()), json.loads(again.read_text())
    assert a == b
    for it in a["training"][:4]:
        assert (built.parent / it["image_png"]).read_bytes() == (again.parent / it["image_png"]).read_bytes()
        # DICOM too: UIDs, dates and times derive from the seed, so the files are byte-identical
        assert (built.parent / it["image_dcm"]).read_bytes() == (again.parent / it["image_dcm"]).read_bytes()


def test_shipped_patient_split_is_the_seed0_draw():
    """configs/splits holds the patient-level 70/10/20 split of all IU reports (seed 0, per-subject hash);
    the builder's draw must reproduce it exactly, so the shipped file and the code never disagree."""
    import csv

    from gkmvlp_monai.core.paths import configs_dir
    from gkmvlp_monai.data.synth.builder import patient_split

    with open(configs_dir() / "splits" / "iu_synth_patient_split_seed0.csv") as f:
        shipped = {r["subject_id"]: r["split"] for r in csv.DictReader(f)}
    assert len(shipped) == 3955
    assert patient_split(list(shipped), seed=0) == shipped
    counts = {k: sum(v == k for v in shipped.values()) for k in ("training", "validation", "test")}
    assert counts == {"training": 2773, "validation": 408, "test": 774}


def test_patient_split_of_fewer_reports_moves_no_subject():
    """A build from fewer reports (a failed download, a ``--limit``) keeps every remaining subject where the
    full build puts it."""
    from gkmvlp_monai.data.synth.builder import patient_split

    subjects = [f"CXR{i}" for i in range(1, 401)]
    full = patient_split(subjects, seed=0)
    for gone in ("CXR1", "CXR200", "CXR400"):
        rest = patient_split([s for s in subjects if s != gone], seed=0)
        assert rest == {s: full[s] for s in subjects if s != gone}
    assert patient_split(subjects[:300], seed=0) == {s: full[s] for s in subjects[:300]}
