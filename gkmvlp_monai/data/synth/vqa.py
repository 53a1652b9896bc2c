"""VQA pairs of an iu-synth image, derived from its labels and drawn findings."""

from __future__ import annotations

import numpy as np


def make_qa(
    label_names: list[str],
    label: list[float],
    lesion_labels: list[str],
    lesion_regions: list[list[str]],
    rng: np.random.Generator,
    n_closed_neg: int = 2,
) -> list[dict[str, str]]:
    """Closed yes/no questions per positive label (plus sampled negatives) and open where/what questions.

    Args:
        label_names: class names (CheXpert-14 order).
        label: the image's label vector (1 positive, 0 negative, -1 uncertain).
        lesion_labels: entity of each drawn finding.
        lesion_regions: regions of each drawn finding.
        rng: random generator (which negatives are asked).
        n_closed_neg: number of negative closed questions.

    Returns:
        A list of ``{question, answer, answer_type, question_type}`` dicts.
    """
    qa: list[dict[str, str]] = []
    no_finding = label_names[0]
    findings = [n for n, v in zip(label_names, label) if v == 1 and n != no_finding]
    negatives = [n for n, v in zip(label_names, label) if v == 0 and n != no_finding]
    qa.append(
        {
            "question": "Is this chest radiograph normal?",
            "answer": "yes" if not findings and label[0] == 1 else "no",
            "answer_type": "CLOSED",
            "question_type": "normality",
        }
    )
    for name in findings:
        qa.append(
            {
                "question": f"Is there {name.lower()}?",
                "answer": "yes",
                "answer_type": "CLOSED",
                "question_type": "presence",
            }
        )
    for k in rng.permutation(len(negatives))[:n_closed_neg]:
        qa.append(
            {
                "question": f"Is there {negatives[k].lower()}?",
                "answer": "no",
                "answer_type": "CLOSED",
                "question_type": "presence",
            }
        )
    qa.append(
        {
            "question": "What abnormalities are seen?",
            "answer": ", ".join(n.lower() for n in findings) if findings else "none",
            "answer_type": "OPEN",
            "question_type": "what",
        }
    )
    seen: set[str] = set()
    for ent, regs in zip(lesion_labels, lesion_regions):
        if ent in seen or not regs:
            continue
        seen.add(ent)
        ename = ent.replace("_", " ")
        qa.append(
            {
                "question": f"Where is the {ename}?",
                "answer": ", ".join(regs),
                "answer_type": "OPEN",
                "question_type": "where",
            }
        )
        qa.append(
            {
                "question": f"What is seen in the {regs[0]}?",
                "answer": ename,
                "answer_type": "OPEN",
                "question_type": "what",
            }
        )
    return qa
