"""Visual question answering: the VQA network, question/answer data, accuracy metrics, predictions."""
