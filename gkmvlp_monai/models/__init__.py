"""GK-MVLP networks: encoders, region pooling, knowledge encoder, GK module, heads and the top model."""

from gkmvlp_monai.core.boxes import boxes_to_patch_mask
from gkmvlp_monai.models.decoder import ReportDecoder, apply_repetition_penalty
from gkmvlp_monai.models.fusion import CrossModalEncoder
from gkmvlp_monai.models.gk import GKLayer, GKModule
from gkmvlp_monai.models.gkmvlp import GKMVLP, SIZES, GKMVLPEntityPredictor, build_gkmvlp
from gkmvlp_monai.models.image import ImageEncoder
from gkmvlp_monai.models.knowledge import KnowledgeEncoder
from gkmvlp_monai.models.region import RegionPooling, roi_align
from gkmvlp_monai.models.text import TextEncoder, TokenizeReportd, default_text_model_path, load_tokenizer

__all__ = [
    "GKMVLP",
    "SIZES",
    "CrossModalEncoder",
    "GKLayer",
    "GKMVLPEntityPredictor",
    "GKModule",
    "ImageEncoder",
    "KnowledgeEncoder",
    "RegionPooling",
    "ReportDecoder",
    "TextEncoder",
    "TokenizeReportd",
    "apply_repetition_penalty",
    "boxes_to_patch_mask",
    "build_gkmvlp",
    "default_text_model_path",
    "load_tokenizer",
    "roi_align",
]
