"""Medical VQA data: per-question items, answer normalisation, the answer vocabulary and the data set.

Two datalist layouts are read:

- image-level items with a ``qa`` list (iu-synth): :func:`flatten_qa` writes one item per question that
  keeps its image's split, so no image is in two splits;
- question-level items with ``question``/``answer``/``answer_type`` (the VQA-RAD / SLAKE adapters).

Answers are compared after :func:`normalize_answer`. The answer vocabulary (:class:`AnswerVocab`) is built
from the training questions actually used; a test answer outside it gets class ``-1`` (``UNKNOWN``): the
classifier cannot produce it, so the classifier's prediction counts as wrong, while generation may still
produce it.

:class:`VQADataset` loads and caches each *image* once and pairs it with each of its questions.
"""

from __future__ import annotations

import json
import os
import re
import string
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.transforms import Compose
from torch.utils.data import Dataset

from gkmvlp_monai.data.datalist import fraction_key, load_datalist
from gkmvlp_monai.data.dataset import is_skip_marker

__all__ = [
    "UNKNOWN",
    "AnswerVocab",
    "SkipSafeCompose",
    "VQADataset",
    "VQATextd",
    "flatten_qa",
    "image_items",
    "load_vqa_split",
    "normalize_answer",
    "vqa_augmentations",
]

UNKNOWN = -1
ANSWER_TYPES = ("CLOSED", "OPEN")
_ARTICLES = {"a", "an", "the"}
_YES = {"yes", "y", "yeah", "yep", "true", "positive", "present"}
_NO = {"no", "n", "nope", "false", "negative", "absent"}
_PUNCT = re.compile("[" + re.escape(string.punctuation) + "]")
_IMAGE_KEYS = ("image", "region_boxes", "image_size")


def normalize_answer(text: Any) -> str:
    """Canonical form of an answer for vocabulary look-up and exact-match accuracy.

    Lower-case; punctuation becomes a space; the articles *a/an/the* are dropped; white space is collapsed;
    a one-word yes/no synonym (``y``, ``true``, ``positive``, ...) becomes ``yes``/``no``.

    Args:
        text: the answer (``None`` gives ``""``).

    Returns:
        The normalised answer, e.g. ``"The Right Lung."`` -> ``"right lung"``.
    """
    words = [w for w in _PUNCT.sub(" ", str(text or "").lower()).split() if w not in _ARTICLES]
    out = " ".join(words)
    if out in _YES:
        return "yes"
    if out in _NO:
        return "no"
    return out


def _check_qa(qa: Mapping[str, Any], where: str) -> None:
    missing = [k for k in ("question", "answer", "answer_type") if k not in qa]
    if missing:
        raise ValueError(f"{where}: VQA entry lacks {missing}")
    if str(qa["answer_type"]).upper() not in ANSWER_TYPES:
        raise ValueError(f"{where}: answer_type {qa['answer_type']!r} is not CLOSED or OPEN")
    if not str(qa["question"]).strip():
        raise ValueError(f"{where}: empty question")


def flatten_qa(items: Sequence[Mapping[str, Any]], where: str = "datalist") -> list[dict[str, Any]]:
    """One item per question, each carrying its image's keys (the split stays the image's).

    Image-level items with a ``qa`` list give one item per entry; items that already hold a ``question``
    pass through. Each output has ``question``, ``answer``, ``answer_type`` (``CLOSED``/``OPEN``),
    ``question_type`` (``""`` when unknown), ``image`` and ``region_boxes`` when the image has them.

    Args:
        items: datalist items of one split.
        where: description used in error messages (e.g. the datalist file and split).

    Returns:
        Per-question items.

    Raises:
        ValueError: an item has neither ``qa`` nor ``question``, or a VQA entry is malformed (the message
            names the item and entry).
    """
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        name = f"{where}[{i}] ({item.get('image', '?')})"
        base = {k: item[k] for k in _IMAGE_KEYS if k in item}
        if "question" in item:
            entries = [item]
        elif "qa" in item:
            entries = item["qa"]
            if not isinstance(entries, list):
                raise ValueError(f"{name}: 'qa' must be a list of question dicts")
        else:
            raise ValueError(f"{name}: item has neither 'qa' nor 'question' (not a VQA datalist?)")
        for j, qa in enumerate(entries):
            _check_qa(qa, name if "question" in item else f"{name} qa[{j}]")
            out.append(
                {
                    **base,
                    "question": str(qa["question"]),
                    "answer": str(qa["answer"]),
                    "answer_type": str(qa["answer_type"]).upper(),
                    "question_type": str(qa.get("question_type", "")),
                }
            )
    return out


def load_vqa_split(
    datalist_file: str | os.PathLike,
    split: str = "training",
    fraction: float | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Per-question items of one split; a training fraction is drawn over *images*.

    The fraction uses the datalist's ``training_<p>pct`` key when it has one; otherwise the same nested
    deterministic subsets as the adapters (:func:`training_fractions` with ``seed``) over the distinct
    training images, so all questions of a chosen image come together.

    Args:
        datalist_file: datalist JSON.
        split: ``training``, ``validation`` or ``test`` (or a ``training_<p>pct`` key).
        fraction: training fraction in (0, 1]; ``None`` or 1.0 for the whole split.
        seed: seed of the subset when the datalist has no key for the fraction.

    Returns:
        Per-question items with absolute image paths.
    """
    where = f"{datalist_file} {split}"
    if fraction is None or fraction >= 1.0:
        return flatten_qa(load_datalist(datalist_file, split), where)
    if split != "training":
        raise ValueError(f"a training fraction applies to the training split, not {split!r}")
    key = fraction_key(fraction)
    return flatten_qa(
        load_datalist(datalist_file, split, fraction=fraction, seed=seed), f"{datalist_file} {key}"
    )


def image_items(questions: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[int]]:
    """Distinct images of per-question items, and each question's image index.

    Args:
        questions: per-question items.

    Returns:
        ``(images, index)``: image items (``image`` and ``region_boxes``/``image_size`` when present), in
        order of first appearance, and ``index[q]`` the image of question ``q``.
    """
    images: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    index = []
    for q in questions:
        key = str(q["image"])
        if key not in seen:
            seen[key] = len(images)
            images.append({k: q[k] for k in _IMAGE_KEYS if k in q})
        index.append(seen[key])
    return images, index


class AnswerVocab:
    """The answer classes: normalised training answers, ``yes`` and ``no`` always first (indices 0, 1).

    Args:
        answers: class answers in index order (normalised; ``yes``/``no`` are put first if missing).
    """

    def __init__(self, answers: Sequence[str]) -> None:
        rest = [a for a in dict.fromkeys(normalize_answer(a) for a in answers) if a not in ("yes", "no")]
        self.answers: list[str] = ["yes", "no", *rest]
        self._index = {a: i for i, a in enumerate(self.answers)}

    @classmethod
    def from_items(cls, items: Sequence[Mapping[str, Any]], min_count: int = 1) -> AnswerVocab:
        """Vocabulary of the answers in ``items`` seen at least ``min_count`` times (most frequent first).

        Args:
            items: per-question training items.
            min_count: minimum number of occurrences of an answer.

        Returns:
            The vocabulary.
        """
        if not items:
            raise ValueError("cannot build an answer vocabulary from no training questions")
        counts = Counter(normalize_answer(it["answer"]) for it in items)
        kept = sorted((a for a, n in counts.items() if n >= min_count), key=lambda a: (-counts[a], a))
        return cls(kept)

    @classmethod
    def load(cls, path: str | os.PathLike) -> AnswerVocab:
        """Read a vocabulary written by :meth:`save`.

        Raises:
            FileNotFoundError: the file is missing (it is written by training next to the checkpoints).
            ValueError: the file is not a JSON object with an ``answers`` list.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"answer vocabulary {path} not found (training writes it; train first)")
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or not isinstance(doc.get("answers"), list):
            raise ValueError(f"{path}: expected a JSON object with an 'answers' list")
        return cls(doc["answers"])

    @classmethod
    def next_to(cls, ckpt_file: str | os.PathLike) -> AnswerVocab:
        """The vocabulary training wrote beside a checkpoint (``<its folder>/answers.json``), see :meth:`load`."""
        return cls.load(Path(ckpt_file).parent / "answers.json")

    def save(self, path: str | os.PathLike) -> str:
        """Write the vocabulary as JSON; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"answers": self.answers}, indent=1), encoding="utf-8")
        return str(path)

    def __len__(self) -> int:
        return len(self.answers)

    def index(self, answer: str) -> int:
        """Class of an answer (normalised first), or ``UNKNOWN`` (-1)."""
        return self._index.get(normalize_answer(answer), UNKNOWN)

    def coverage(self, items: Sequence[Mapping[str, Any]]) -> float:
        """Share of ``items`` whose answer is in the vocabulary (the classifier's accuracy ceiling)."""
        if not items:
            return float("nan")
        return sum(self.index(it["answer"]) != UNKNOWN for it in items) / len(items)


class VQATextd:
    """Tokenise the question and the answer and attach the answer class.

    Adds ``question_ids``/``question_mask`` (``[question_max_length]``), ``answer_ids``/``answer_mask``
    (``[answer_max_length]``, [CLS] answer [SEP], the decoder's BOS/EOS), ``answer_label`` (int64 class or
    -1), ``is_closed`` (bool) and ``answer_text`` (normalised answer string).

    Args:
        tokenizer: tokenizer object, or a local path (loaded lazily); ``None`` gives the MiniLM default.
        vocab: the answer vocabulary.
        question_max_length: question token length.
        answer_max_length: answer token length.
    """

    def __init__(
        self,
        tokenizer: Any,
        vocab: AnswerVocab,
        question_max_length: int = 32,
        answer_max_length: int = 16,
    ) -> None:
        self._tokenizer = tokenizer
        self.vocab = vocab
        self.question_max_length = question_max_length
        self.answer_max_length = answer_max_length

    @property
    def tokenizer(self) -> Any:
        """The tokenizer object (loaded on first use)."""
        from gkmvlp_monai.models.text import resolve_tokenizer

        self._tokenizer = resolve_tokenizer(self._tokenizer)
        return self._tokenizer

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        from gkmvlp_monai.models.text import tokenize_texts

        d = dict(data)
        for key in ("question", "answer", "answer_type"):
            if key not in d:
                raise KeyError(f"VQA item ({d.get('image', '?')}) lacks {key!r}")
        q = tokenize_texts(self.tokenizer, [str(d["question"])], self.question_max_length)
        answer = normalize_answer(d["answer"])
        a = tokenize_texts(self.tokenizer, [answer], self.answer_max_length)
        d["question_ids"], d["question_mask"] = q["input_ids"][0], q["attention_mask"][0]
        d["answer_ids"], d["answer_mask"] = a["input_ids"][0], a["attention_mask"][0]
        d["answer_label"] = torch.tensor(self.vocab.index(answer), dtype=torch.long)
        d["is_closed"] = torch.tensor(str(d["answer_type"]).upper() == "CLOSED")
        d["answer_text"] = answer
        return d


def _plain(image: Any) -> torch.Tensor:
    """A plain tensor (random transforms return a ``MetaTensor`` only when they fire, the disk cache may give
    either, and a batch mixing both cannot be collated)."""
    return image.as_tensor() if hasattr(image, "as_tensor") else torch.as_tensor(image)


def _plain_tensors(sample: Any) -> Any:
    if not isinstance(sample, Mapping):
        return sample
    return {k: _plain(v) if isinstance(v, torch.Tensor) else v for k, v in sample.items()}


class SkipSafeCompose(Compose):
    """``Compose`` that hands a bad sample's skip marker on untouched (for ``EpochSeededDataset``) and
    returns the image as a plain tensor."""

    def __call__(self, input_: Any, *args: Any, **kwargs: Any) -> Any:
        if is_skip_marker(input_):
            return input_
        out = super().__call__(input_, *args, **kwargs)
        return _plain_tensors(out)


def vqa_augmentations(prob: float = 0.5) -> SkipSafeCompose:
    """Random intensity augmentations only: a VQA answer may name a position or side, so nothing moves or
    flips the image (no crop, affine or flip)."""
    from gkmvlp_monai.transforms.intensity import cxr_intensity_augmentations

    return SkipSafeCompose(cxr_intensity_augmentations("image", prob=prob))


_OUTPUT_KEYS = (
    "image",
    "region_boxes",
    "region_mask",
    "question",
    "question_ids",
    "question_mask",
    "answer_ids",
    "answer_mask",
    "answer_label",
    "is_closed",
    "answer_text",
    "image_index",
)


class VQADataset(Dataset):
    """Questions paired with their (once loaded, optionally cached) image.

    Args:
        questions: per-question items (``image`` and the question fields).
        image_dataset_fn: builds the image data set from the distinct image items, e.g.
            ``lambda items: make_dataset(items, cxr_transforms(64), cache="memory")``; a bad image gives a
            skip marker, which this data set passes on for every question of the image.
        text_transform: per-question transform (usually :class:`VQATextd`).
    """

    def __init__(
        self,
        questions: Sequence[Mapping[str, Any]],
        image_dataset_fn: Callable[[list[dict[str, Any]]], Dataset],
        text_transform: Callable[[Mapping[Hashable, Any]], dict[Hashable, Any]],
    ) -> None:
        self.questions = [dict(q) for q in questions]
        images, self.image_index = image_items(self.questions)
        self.images = image_dataset_fn(images)
        self.text_transform = text_transform

    def __len__(self) -> int:
        return len(self.questions)

    def __getitem__(self, index: int) -> Any:
        q = self.questions[index]
        sample = self.images[self.image_index[index]]
        if is_skip_marker(sample):
            return sample
        text = self.text_transform({k: v for k, v in q.items() if k not in _IMAGE_KEYS})
        merged = {**text, **{k: v for k, v in sample.items() if k in _OUTPUT_KEYS}}
        merged["image_index"] = torch.tensor(self.image_index[index], dtype=torch.long)
        return _plain_tensors({k: merged[k] for k in _OUTPUT_KEYS if k in merged})


def answer_stats(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts of closed and open questions and of distinct normalised answers (for logs and docs)."""
    types = Counter(it["answer_type"] for it in items)
    answers = {normalize_answer(it["answer"]) for it in items}
    return {
        "questions": len(items),
        "closed": types.get("CLOSED", 0),
        "open": types.get("OPEN", 0),
        "answers": len(answers),
        "images": len({it["image"] for it in items}),
        "open_share": float(np.float64(types.get("OPEN", 0)) / max(len(items), 1)),
    }
