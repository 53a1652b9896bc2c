"""GK-MVLP pre-training: evaluation inferer, retrieval and zero-shot metrics, embedding predictions."""
