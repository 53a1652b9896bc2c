"""GK-MVLP networks: encoders, region pooling, knowledge encoder, GK module, heads and the top model."""

from gkmvlp_monai.losses.grounding import boxes_to_patch_mask
from gkmvlp_monai.networks.decoder import ReportDecoder, apply_repetition_penalty
from gkmvlp_monai.networks.fusion import CrossModalEncoder
from gkmvlp_monai.networks.gk import GKLayer, GKModule
from gkmvlp_monai.networks.gkmvlp import GKMVLP, SIZES, GKMVLPEntityPredictor, build_gkmvlp
from gkmvlp_monai.networks.image import ImageEncoder
from gkmvlp_monai.networks.knowledge import KnowledgeEncoder
from gkmvlp_monai.networks.region import RegionPooling, roi_align
from gkmvlp_monai.networks.text import TextEncoder, TokenizeReportd, default_text_model_path, load_tokenizer

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
