"""Evaluation glue for the VQA bundle: the inferer that turns network outputs into answers, and a writer
of per-question predictions. Training uses the stock trainer with the pre-training glue
(``prepare_dict_batch``, ``select_loss``, ``LossComponents``, ``TrainingCheckpoints``).

Answers produced per question:

- ``pred_answer``: the classifier's answer (a class of the training answer vocabulary);
- ``gen_answer``: the report decoder's generated answer (open questions; closed ones too with
  ``generate="all"``; ``""`` where not generated);
- ``hybrid_answer``: the classifier for closed questions, generation for open ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.inferers import Inferer
from monai.utils import CommonKeys as Keys

from gkmvlp_monai.tasks.vqa.data import AnswerVocab, normalize_answer

__all__ = ["VQAEvalInferer", "answers_from_pred"]


class VQAEvalInferer(Inferer):
    """Forward, classifier answers and (optionally) generated answers.

    Args:
        vocab: the answer vocabulary (class index -> answer).
        generate: ``"none"``, ``"open"`` (generate for open questions) or ``"all"``.
        max_answer_length: maximum generated tokens.
        num_beams: beams of the generation (1: greedy).
    """

    def __init__(
        self,
        vocab: AnswerVocab | Sequence[str],
        generate: str = "open",
        max_answer_length: int = 16,
        num_beams: int = 1,
    ) -> None:
        super().__init__()
        if generate not in ("none", "open", "all"):
            raise ValueError(f"generate must be 'none', 'open' or 'all', got {generate!r}")
        self.answers = list(vocab.answers if isinstance(vocab, AnswerVocab) else vocab)
        self.generate = generate
        self.max_answer_length = max_answer_length
        self.num_beams = num_beams

    def __call__(self, inputs: dict[str, Any], network: torch.nn.Module, *args: Any, **kwargs: Any) -> dict:
        model = getattr(network, "module", network)  # DistributedDataParallel
        out = dict(network(inputs))
        logits = out["answer_logits"]
        if logits.shape[1] != len(self.answers):
            raise ValueError(
                f"the network has {logits.shape[1]} answer classes but the vocabulary {len(self.answers)}"
                " (answers.json does not belong to this checkpoint?)"
            )
        cls_answers = [self.answers[i] for i in logits.argmax(-1).tolist()]
        b = logits.shape[0]
        closed = (
            inputs["is_closed"].bool().cpu() if "is_closed" in inputs else torch.zeros(b, dtype=torch.bool)
        )
        gen = [""] * b
        if self.generate != "none":
            rows = list(range(b)) if self.generate == "all" else [i for i in range(b) if not closed[i]]
            if rows:
                texts = model.generate(out["memory"][rows], self.max_answer_length, self.num_beams)
                for i, t in zip(rows, texts):
                    gen[i] = normalize_answer(t)
        out.pop("memory")
        out["pred_answer"] = cls_answers
        out["gen_answer"] = gen
        out["hybrid_answer"] = [
            c if closed[i] or self.generate == "none" else gen[i] for i, c in enumerate(cls_answers)
        ]
        out["answer_text"] = list(inputs.get("answer_text", [""] * b))
        out["question"] = list(inputs.get("question", [""] * b))
        out["is_closed"] = closed
        return out


def answers_from_pred(answer_key: str = "pred_answer"):
    """Output transform for :class:`~gkmvlp_monai.tasks.vqa.metrics.VQAAccuracy`: ``(answers, truth, is_closed)``."""

    def _get(output: dict) -> Any:
        pred = output.get(Keys.PRED) if isinstance(output, dict) else None
        if pred is None:
            return None
        return pred[answer_key], pred["answer_text"], pred["is_closed"]

    return _get
