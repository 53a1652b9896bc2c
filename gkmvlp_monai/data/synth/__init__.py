"""iu-synth: an offline demo data set of rendered chest radiographs driven by the real IU X-ray reports.

``build_iu_synth(out, limit=None, seed=0, size=512, workers=2)`` writes PNG and DICOM DX images with
region boxes, finding boxes and masks, CheXpert-14 labels and VQA pairs; see ``docs/iu_synth.md``.
"""

from gkmvlp_monai.data.synth.builder import build_iu_synth
from gkmvlp_monai.data.synth.case import RenderedCase, render_case

__all__ = ["build_iu_synth", "render_case", "RenderedCase"]
