"""Assertion words come from gkmvlp_monai/core/vocabularies/context.json (one place) and drive the ConText classifier."""

from __future__ import annotations

import json

import pytest

from gkmvlp_monai.core import vocab
from gkmvlp_monai.knowledge import context
from gkmvlp_monai.knowledge.context import Category, ConTextClassifier, Span, sentence_tokens, split_sentences


def test_context_vocab_loads_and_feeds_the_classifier() -> None:
    cv = vocab.context_vocab()
    rows = set(cv.triggers)
    assert ("no", "negated", "forward") in rows
    assert ("cannot be excluded", "uncertain", "backward") in rows
    assert ("no change", "pseudo", "both") in rows
    assert ("but", "terminate", "both") in rows
    assert {"findings", "impression", "clinical history"} <= cv.section_headers
    assert "within normal limits" in cv.normal_words
    table = ConTextClassifier().table
    assert len(table) == len({tuple(vocab.tokenize(p)) for p, _, _ in cv.triggers})
    assert not hasattr(context, "TRIGGERS") and not hasattr(context, "_HEADERS")


def test_classifier_uses_the_config_words() -> None:
    toks = sentence_tokens("Pneumothorax cannot be excluded")
    assert ConTextClassifier().classify(toks, [Span(0, 1)]) == ["uncertain"]
    only_no = ((p, Category.NEGATED, "forward") for p in ["no"])
    assert ConTextClassifier(triggers=tuple(only_no)).classify(toks, [Span(0, 1)]) == ["present"]
    assert split_sentences("FINDINGS: No effusion. IMPRESSION: Normal.") == ["No effusion", "Normal"]


def test_context_vocab_validation(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = json.loads(vocab.vocab_path("context.json").read_text(encoding="utf-8"))
    bad_docs = [
        ({**good, "triggers": {**good["triggers"], "hedged": {"forward": ["maybe"]}}}, "category"),
        ({**good, "triggers": {**good["triggers"], "negated": {"sideways": ["no"]}}}, "direction"),
        (
            {**good, "triggers": {**good["triggers"], "pseudo": {"both": ["no change", "No  change"]}}},
            "twice",
        ),
    ]
    for doc, message in bad_docs:
        monkeypatch.setattr(vocab, "load_vocab_file", lambda name, doc=doc: doc)
        vocab.context_vocab.cache_clear()
        try:
            with pytest.raises(ValueError, match=message):
                vocab.context_vocab()
        finally:
            monkeypatch.undo()
            vocab.context_vocab.cache_clear()
    assert vocab.context_vocab().triggers
