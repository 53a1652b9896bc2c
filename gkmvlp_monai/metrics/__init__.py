"""Metrics: retrieval recall, multi-label AUC (and, for downstream tasks, more)."""

from .classification import MeanScalar, MultiLabelAUC, macro_auc, masked_multilabel_auc
from .retrieval import RetrievalRecall, recall_at_k, retrieval_scores, text_match_matrix

__all__ = [
    "MeanScalar",
    "MultiLabelAUC",
    "RetrievalRecall",
    "macro_auc",
    "masked_multilabel_auc",
    "recall_at_k",
    "retrieval_scores",
    "text_match_matrix",
]
