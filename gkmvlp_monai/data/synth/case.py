"""Render one iu-synth case: a report's MeSH tags + a real lung template → picture and truth."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gkmvlp_monai.core.boxes import mask_box
from gkmvlp_monai.data.synth.anatomy import AnatomyParams, LungTemplate, build_anatomy
from gkmvlp_monai.data.synth.findings import (
    CaseFindings,
    LesionPainter,
    anatomy_mask,
    apply_anatomy,
    specs_from_tags,
)
from gkmvlp_monai.data.synth.render import (
    add_noise,
    compose,
    develop,
    random_exposure,
    random_positioning,
    vessel_markings,
    warp_density,
    warp_labels,
)
from gkmvlp_monai.data.synth.truth import region_boxes

#: at most this many findings per case are drawn (their bits share the label warp; 2**53 is exact)
_MAX_FINDINGS = 20


@dataclass
class RenderedCase:
    """One rendered case in picture coordinates.

    Attributes:
        image: float32 ``(size, size)`` display intensities in [0, 1] (dense = bright).
        labels: uint32 structure bit map warped into the picture.
        region_boxes: region name → ``[x1, y1, x2, y2]``.
        lesion_masks: bool ``(size, size)`` mask per drawn finding.
        lesion_boxes: tight box of each mask.
        lesion_labels: entity name of each drawn finding.
        lesion_regions: regions each finding was placed in.
        lesion_tags: MeSH tag each finding came from.
        uncertain: entities drawn from a ``borderline`` tag.
        undrawn: entities of the report that iu-synth cannot show.
    """

    image: np.ndarray
    labels: np.ndarray
    region_boxes: dict[str, list[float]]
    lesion_masks: list[np.ndarray] = field(default_factory=list)
    lesion_boxes: list[list[float]] = field(default_factory=list)
    lesion_labels: list[str] = field(default_factory=list)
    lesion_regions: list[list[str]] = field(default_factory=list)
    lesion_tags: list[str] = field(default_factory=list)
    uncertain: list[str] = field(default_factory=list)
    undrawn: list[str] = field(default_factory=list)


def _random_params(rng: np.random.Generator) -> AnatomyParams:
    return AnatomyParams(
        ctr=float(rng.uniform(0.4, 0.48)),
        inflation=float(rng.uniform(0.97, 1.03)),
        knob=float(rng.uniform(0.85, 1.15)),
        mediastinum_width=float(rng.uniform(0.9, 1.1)),
        body_margin=float(rng.uniform(0.08, 0.2)),
        breast=float(rng.uniform(0.3, 0.8)) if rng.random() < 0.45 else 0.0,
        rib_phase=float(rng.uniform(-0.15, 0.15)),
    )


def render_case(
    tpl: LungTemplate,
    tags: list[str],
    seed: int | tuple[int, ...],
    size: int = 512,
    draw_findings: bool = True,
) -> RenderedCase:
    """Render one frontal radiograph and its truth.

    Args:
        tpl: real lung template (its grid is the canonical resolution; ``size // 2`` is typical).
        tags: the report's MeSH major tags.
        seed: case seed (an int or a tuple such as ``(build_seed, report_index)``).
        size: picture side in pixels.
        draw_findings: False renders the same patient, positioning, exposure and noise without the
            findings (used to check that the truth covers the drawn pixels).

    Returns:
        The :class:`RenderedCase`.
    """
    ss = np.random.SeedSequence(list(seed) if isinstance(seed, tuple) else seed)
    rng_anat, rng_mark, rng_find, rng_pic = (np.random.default_rng(s) for s in ss.spawn(4))
    params = _random_params(rng_anat)
    case = specs_from_tags(tags) if draw_findings else CaseFindings()
    apply_anatomy(case, params, rng_find)
    anat = build_anatomy(tpl, params)
    markings = vessel_markings(anat, rng_mark, density=case.markings)
    painter = LesionPainter(anat, rng_find)
    extra = np.zeros_like(anat.layers["body"])
    masks: list[np.ndarray] = []
    specs = []
    for spec in case.specs:
        if spec.kind == "anatomy":
            m = anatomy_mask(spec, anat, rng_find)
            if m.any():
                masks.append(m)
                specs.append(spec)
            continue
        lesion = painter.draw(spec)
        if lesion is None:
            continue
        extra += lesion.density
        if lesion.suppress is not None:
            markings = markings * (1.0 - lesion.suppress)
        masks.append(lesion.mask)
        specs.append(spec)
    masks, specs = masks[:_MAX_FINDINGS], specs[:_MAX_FINDINGS]
    atten = compose(anat, extra=extra, markings=markings, lung_air=case.lung_air)
    pos = random_positioning(rng_pic)
    exp = random_exposure(rng_pic)
    picture = add_noise(warp_density(develop(atten, exp), size, pos), exp, rng_pic)
    # one nearest-neighbour warp carries the structure bits (low 32) and the finding bits (high)
    packed = anat.labels.astype(np.uint64)
    for k, m in enumerate(masks):
        packed[m] |= np.uint64(1 << (32 + k))
    warped = warp_labels(packed, size, pos)
    labels = (warped & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    out = RenderedCase(
        image=picture, labels=labels, region_boxes=region_boxes(labels), undrawn=list(case.undrawn)
    )
    if masks:
        for k, spec in enumerate(specs):
            m = (warped & np.uint64(1 << (32 + k))) != 0
            box = mask_box(m)
            if box is None:  # the finding left the field of view
                continue
            out.lesion_masks.append(m)
            out.lesion_boxes.append(box)
            out.lesion_labels.append(spec.entity)
            out.lesion_regions.append(list(spec.regions))
            out.lesion_tags.append(spec.tag)
            if spec.uncertain and spec.entity not in out.uncertain:
                out.uncertain.append(spec.entity)
    return out
