"""Build the iu-synth demo data set: one rendered radiograph (PNG + DICOM DX) per real IU report.

Layout under ``out``: ``images/<uid>.png``, ``dicom/<uid>.dcm``, ``masks/<uid>_<k>.png``,
``datalist.json`` (splits ``training``/``validation``/``test`` by patient, 70/10/20), one
``<split>.json`` per split, and ``build_info.json``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gkmvlp_monai.data.datalist import split_subjects
from gkmvlp_monai.data.dicom_writer import write_cxr_dicom
from gkmvlp_monai.data.synth.anatomy import LungTemplate, load_lung_templates
from gkmvlp_monai.data.synth.case import render_case
from gkmvlp_monai.data.synth.vqa import make_qa
from gkmvlp_monai.data.xrv_assets import XRV_VERSION, iter_iu_report_xml, iter_lung_masks
from gkmvlp_monai.knowledge.iu_xml import parse_iu_xml
from gkmvlp_monai.core.vocab import entity, label_set

#: DICOM variants: (share, photometric, bits_stored, transfer syntax), chosen per case by its seed
DICOM_VARIANTS: list[tuple[float, str, int, str]] = [
    (0.45, "MONOCHROME2", 12, "explicit"),
    (0.17, "MONOCHROME1", 12, "explicit"),
    (0.18, "MONOCHROME2", 16, "explicit"),
    (0.08, "MONOCHROME1", 16, "rle"),
    (0.08, "MONOCHROME2", 12, "jpeg-ls"),
    (0.04, "MONOCHROME2", 16, "jpeg2000-lossless"),
]
SPLIT_FRACTIONS = {"training": 0.7, "validation": 0.1, "test": 0.2}

_STATE: dict[str, Any] = {}


def chexpert_label(lesion_labels: list[str], uncertain: list[str], names: list[str]) -> list[float]:
    """CheXpert-14 vector from the drawn findings' entities (``entities.json`` label map): 1 shown,
    -1 shown only as borderline, 0 otherwise; *No Finding* when no pathology label is set."""
    vec = [0.0] * len(names)
    for ent in lesion_labels:
        for lab in entity(ent).chexpert:
            i = names.index(lab)
            val = -1.0 if ent in uncertain else 1.0
            vec[i] = 1.0 if vec[i] == 1.0 else val
    pathology = [v for n, v in zip(names, vec) if n not in (names[0], "Support Devices")]
    vec[0] = 1.0 if not any(pathology) else 0.0
    return vec


def _pick_variant(rng: np.random.Generator) -> tuple[str, int, str]:
    u = rng.random()
    acc = 0.0
    for share, photo, bits, syntax in DICOM_VARIANTS:
        acc += share
        if u < acc:
            return photo, bits, syntax
    return DICOM_VARIANTS[0][1:]  # type: ignore[return-value]


def _init_worker(templates: list[LungTemplate], out: str, size: int, seed: int) -> None:
    from gkmvlp_monai.knowledge.report_filter import ReportFilter

    _STATE.update(templates=templates, out=Path(out), size=size, seed=seed, report_filter=ReportFilter())


def _build_one(job: tuple[int, dict[str, Any], int]) -> dict[str, Any]:
    index, rep, tpl_index = job
    out: Path = _STATE["out"]
    size: int = _STATE["size"]
    seed: int = _STATE["seed"]
    tpl: LungTemplate = _STATE["templates"][tpl_index]
    case = render_case(tpl, rep["mesh"], (seed, index), size=size)
    rng = np.random.default_rng([seed, index, 7])
    uid = rep["uid"]
    png_rel, dcm_rel = f"images/{uid}.png", f"dicom/{uid}.dcm"
    Image.fromarray(np.round(case.image * 255).astype(np.uint8)).save(out / png_rel, compress_level=1)
    photo, bits, syntax = _pick_variant(rng)
    pixels = np.round(case.image * (2**bits - 1)).astype(np.uint16)
    from pydicom.uid import generate_uid

    write_cxr_dicom(
        out / dcm_rel,
        pixels,
        photometric=photo,
        bits_stored=bits,
        transfer_syntax=syntax,
        patient_id=uid,
        window=(float(2 ** (bits - 1)), float(2**bits)),
        study_uid=generate_uid(entropy_srcs=[f"iu-synth/{seed}/{uid}/study"]),
        sop_uid=generate_uid(entropy_srcs=[f"iu-synth/{seed}/{uid}/image"]),
        # fixed date/time and seeded series UID: the same seed writes byte-identical files
        extra={
            "SeriesInstanceUID": generate_uid(entropy_srcs=[f"iu-synth/{seed}/{uid}/series"]),
            "StudyDate": "20130801",
            "StudyTime": "120000",
        },
    )
    mask_rel = []
    for k, m in enumerate(case.lesion_masks):
        rel = f"masks/{uid}_{k}.png"
        Image.fromarray(m).convert("1").save(out / rel, compress_level=1)
        mask_rel.append(rel)
    names = label_set("chexpert14")
    label = chexpert_label(case.lesion_labels, case.uncertain, names)
    report = " ".join(t for t in (rep["findings"], rep["impression"]) if t)
    item: dict[str, Any] = {
        "image": dcm_rel if index % 2 == 0 else png_rel,
        "image_png": png_rel,
        "image_dcm": dcm_rel,
        "dicom": {"photometric": photo, "bits_stored": bits, "transfer_syntax": syntax},
        "subject_id": uid,
        "study_id": uid,
        "image_id": uid,
        "view": "PA",
        "findings": rep["findings"],
        "impression": rep["impression"],
        "indication": rep["indication"],
        "report": report,
        "mesh": rep["mesh"],
        "label": label,
        "region_boxes": case.region_boxes,
        "lesion_boxes": case.lesion_boxes,
        "lesion_labels": case.lesion_labels,
        "lesion_regions": case.lesion_regions,
        "lesion_tags": case.lesion_tags,
        "masks": mask_rel,
        "undrawn": case.undrawn,
        "entities": _STATE["report_filter"].annotate(report),
        "qa": make_qa(names, label, case.lesion_labels, case.lesion_regions, rng),
        "image_size": [size, size],
        "lung_template": tpl.name,
    }
    if mask_rel:
        item["mask"] = mask_rel[0]
    return item


def patient_split(subjects: list[str], seed: int) -> dict[str, str]:
    """Assign each subject to ``training``/``validation``/``test`` (70/10/20 in expectation).

    The same per-subject hash rule as every adapter (:func:`gkmvlp_monai.data.datalist.split_subjects`),
    so a build from fewer reports leaves every remaining subject in its split.
    """
    return split_subjects(subjects, SPLIT_FRACTIONS, seed)


def build_iu_synth(
    out: str | Path, limit: int | None = None, seed: int = 0, size: int = 512, workers: int = 2
) -> Path:
    """Build the iu-synth data set.

    Args:
        out: output folder (created).
        limit: build only the first ``limit`` reports (in report-number order).
        seed: build seed; the same seed gives the same images and truth.
        size: picture side in pixels (anatomy is composed at ``size // 2``).
        workers: worker processes (1 renders in this process).

    Returns:
        Path of ``datalist.json``.

    Raises:
        gkmvlp_monai.data.xrv_assets.AssetUnavailableError: the torchxrayvision wheel (reports, masks)
            cannot be found or downloaded; the message says how to provide it.
    """
    t0 = time.perf_counter()
    out = Path(out)
    for sub in ("images", "dicom", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    reports = []
    for name, xml in iter_iu_report_xml():
        r = parse_iu_xml(xml, name)
        reports.append(
            {
                "uid": r.uid,
                "findings": r.findings,
                "impression": r.impression,
                "indication": r.indication,
                "mesh": r.mesh_major,
            }
        )
        if limit is not None and len(reports) >= limit:
            break
    templates, rejected = load_lung_templates(iter_lung_masks(), max(32, size // 2))
    if not templates:
        raise RuntimeError("no usable lung mask in the torchxrayvision wheel")
    t_load = time.perf_counter() - t0
    order = np.random.default_rng([seed, 2]).permutation(len(templates))
    jobs = [(i, rep, int(order[i % len(templates)])) for i, rep in enumerate(reports)]
    if workers > 1:
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
        with ctx.Pool(workers, initializer=_init_worker, initargs=(templates, str(out), size, seed)) as pool:
            items = pool.map(_build_one, jobs, chunksize=8)
    else:
        _init_worker(templates, str(out), size, seed)
        items = [_build_one(j) for j in jobs]
    split_of = patient_split([it["subject_id"] for it in items], seed)
    splits: dict[str, list[dict[str, Any]]] = {k: [] for k in SPLIT_FRACTIONS}
    for it in items:
        splits[split_of[it["subject_id"]]].append(it)
    names = label_set("chexpert14")
    doc = {
        "name": "iu-synth",
        "description": "Synthetic frontal chest radiographs rendered from the 3,955 real IU X-ray reports "
        "(MeSH tags place the findings) on real lung masks; demo and test data only.",
        "label_names": names,
        "label_type": "multilabel",
        **splits,
    }
    datalist = out / "datalist.json"
    datalist.write_text(json.dumps(doc), encoding="utf-8")
    for k, v in splits.items():
        (out / f"{k}.json").write_text(
            json.dumps({"name": f"iu-synth {k}", "label_names": names, "label_type": "multilabel", k: v}),
            encoding="utf-8",
        )
    import pydicom
    import scipy

    info = {
        "seed": seed,
        "size": size,
        "limit": limit,
        "workers": workers,
        "counts": {
            "reports": len(items),
            **{k: len(v) for k, v in splits.items()},
            "lung_templates": len(templates),
            "lung_masks_rejected": len(rejected),
            "dicom_variants": {
                f"{p}/{b}/{s}": sum(
                    1
                    for it in items
                    if it["dicom"] == {"photometric": p, "bits_stored": b, "transfer_syntax": s}
                )
                for _, p, b, s in DICOM_VARIANTS
            },
        },
        "seconds": {"load": round(t_load, 2), "total": round(time.perf_counter() - t0, 2)},
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "pydicom": pydicom.__version__,
            "torchxrayvision_wheel": XRV_VERSION,
        },
    }
    (out / "build_info.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    return datalist
