"""Metrics: retrieval recall, multi-label AUC (and, for downstream tasks, more)."""

from .classification import MultiLabelAUC, macro_auc, masked_multilabel_auc
from .retrieval import RetrievalRecall, recall_at_k, retrieval_scores, text_match_matrix

__all__ = [
    "MultiLabelAUC",
    "RetrievalRecall",
    "macro_auc",
    "masked_multilabel_auc",
    "recall_at_k",
    "retrieval_scores",
    "text_match_matrix",
]
