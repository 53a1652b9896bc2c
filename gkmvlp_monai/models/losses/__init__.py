"""GK-MVLP objectives: ITC, ITM, LM, ECLS and the grounding term (one module each).

Every loss is parameter-free: what it needs that is learned (the ITC temperature, the ITM head) is a module
of the network (``gkmvlp_monai.models.heads``, ``GKMVLP.itm_head``) and reaches the loss as an input.
"""

from gkmvlp_monai.models.losses.ecls import ECLSLoss
from gkmvlp_monai.models.losses.grounding import GroundingLoss
from gkmvlp_monai.models.losses.itc import ITCLoss, report_keys, same_report_matrix
from gkmvlp_monai.models.losses.itm import ITMLoss, itm_pairs, mine_hard_negatives
from gkmvlp_monai.models.losses.lm import LMLoss

__all__ = [
    "ECLSLoss",
    "GroundingLoss",
    "ITCLoss",
    "ITMLoss",
    "LMLoss",
    "itm_pairs",
    "mine_hard_negatives",
    "report_keys",
    "same_report_matrix",
]
