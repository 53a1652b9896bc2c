"""Ground truth of an iu-synth case measured from its rendered label maps.

Region boxes follow the data contract: ``[x1, y1, x2, y2]`` with ``x`` the column and ``y`` the row of
the picture, continuous coordinates (pixel ``i`` covers ``[i, i + 1)``). Region names come from
``gkmvlp_monai/core/vocabularies/regions.json``; this module only says how each of them is measured from the rendered
structures (lung zones are thirds of each lung's height, the apical zone its top fifth, the
costophrenic angle its lateral-basal corner).
"""

from __future__ import annotations

import numpy as np

from gkmvlp_monai.core.boxes import mask_box
from gkmvlp_monai.core.vocab import regions
from gkmvlp_monai.data.synth.anatomy import STRUCTURE_BITS

Box = list[float]


def bit_mask(labels: np.ndarray, *names: str) -> np.ndarray:
    """Union of the structures ``names`` in a bit-packed label map."""
    bits = 0
    for n in names:
        bits |= 1 << STRUCTURE_BITS[n]
    return (labels & np.uint32(bits)) != 0


def _lung_parts(lung: np.ndarray, lateral_is_left: bool) -> dict[str, np.ndarray]:
    """Zones of one lung: upper/mid/lower thirds, apical fifth, lateral-basal corner."""
    rows = np.flatnonzero(lung.any(axis=1))
    out: dict[str, np.ndarray] = {}
    if rows.size == 0:
        return out
    t, b = rows[0], rows[-1] + 1
    h = b - t
    r = np.arange(lung.shape[0])[:, None]
    cuts = [t, t + h / 3, t + 2 * h / 3, b]
    for k, zone in enumerate(("upper lung zone", "mid lung zone", "lower lung zone")):
        out[zone] = lung & (r >= cuts[k]) & (r < cuts[k + 1])
    out["apical zone"] = lung & (r < t + 0.2 * h)
    cols = np.flatnonzero(lung.any(axis=0))
    c0, c1 = cols[0], cols[-1] + 1
    c = np.arange(lung.shape[1])[None, :]
    lateral = c < c0 + 0.4 * (c1 - c0) if lateral_is_left else c >= c1 - 0.4 * (c1 - c0)
    out["costophrenic angle"] = lung & (r >= b - 0.2 * h) & lateral
    return out


def region_masks(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean mask of each of the 29 regions (vocabulary names) measured from a label map."""
    masks: dict[str, np.ndarray] = {}
    for side, lateral_left in (("right", True), ("left", False)):
        s = side[0]
        lung = bit_mask(labels, f"lung_{s}")
        masks[f"{side} lung"] = lung
        for zone, m in _lung_parts(lung, lateral_left).items():
            masks[f"{side} {zone}"] = m
        masks[f"{side} hilar structures"] = bit_mask(labels, f"hilum_{s}")
        masks[f"{side} hemidiaphragm"] = bit_mask(labels, f"hemidiaphragm_{s}")
        masks[f"{side} clavicle"] = bit_mask(labels, f"clavicle_{s}")
    masks["trachea"] = bit_mask(labels, "trachea")
    masks["spine"] = bit_mask(labels, "spine")
    masks["aortic arch"] = bit_mask(labels, "aortic_knob")
    masks["mediastinum"] = bit_mask(labels, "upper_mediastinum", "aortic_knob", "heart")
    masks["upper mediastinum"] = bit_mask(labels, "upper_mediastinum", "aortic_knob")
    masks["svc"] = bit_mask(labels, "svc")
    masks["cardiac silhouette"] = bit_mask(labels, "heart")
    masks["cavoatrial junction"] = bit_mask(labels, "cavoatrial")
    masks["right atrium"] = bit_mask(labels, "right_atrium")
    masks["carina"] = bit_mask(labels, "carina")
    masks["abdomen"] = bit_mask(labels, "abdomen")
    known = {r.name for r in regions()}
    missing = known - set(masks)
    if missing:
        raise KeyError(
            f"iu-synth does not measure regions {sorted(missing)} (gkmvlp_monai/core/vocabularies/regions.json changed?)"
        )
    return {r.name: masks[r.name] for r in regions()}


def region_boxes(labels: np.ndarray) -> dict[str, Box]:
    """Box of every region present in a label map, in vocabulary order (absent regions left out)."""
    out: dict[str, Box] = {}
    for name, m in region_masks(labels).items():
        box = mask_box(m)
        if box is not None:
            out[name] = box
    return out
