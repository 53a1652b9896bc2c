"""GK-MVLP objectives: ITC, ITM, LM, ECLS and the grounding term (one module each)."""

from gkmvlp_monai.models.losses.ecls import ECLSLoss
from gkmvlp_monai.models.losses.grounding import GroundingLoss
from gkmvlp_monai.models.losses.itc import ITCLoss, report_keys, same_report_matrix
from gkmvlp_monai.models.losses.itm import ITMLoss, mine_hard_negatives
from gkmvlp_monai.models.losses.lm import LMLoss

__all__ = [
    "ECLSLoss",
    "GroundingLoss",
    "ITCLoss",
    "ITMLoss",
    "LMLoss",
    "mine_hard_negatives",
    "report_keys",
    "same_report_matrix",
]
