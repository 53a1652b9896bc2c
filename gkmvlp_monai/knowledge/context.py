"""A ConText-style assertion classifier for chest X-ray report sentences (this project's own code).

ConText (Harkema et al., 2009) decides whether a mention is negated or uncertain from *trigger* phrases
that act on the words after them (forward), before them (backward) or both, up to the end of the
sentence or a *termination* phrase ("but", "however", ";"); *pseudo-triggers* ("no change", "not only",
"no increase in") look like triggers but negate nothing. We implement it here instead of depending on
medspaCy, which pins spaCy < 3.8 and numpy 1.26 (breaking pandas in our environment) and whose default
rules call "Cannot exclude X" negated and miss "FINDINGS: No X." (see ``docs/decisions/042-context-assertion-classifier.md``).

The assertion words (triggers, section headers, "normal" words) live in one place,
``gkmvlp_monai/core/vocabularies/context.json``, loaded through :func:`gkmvlp_monai.core.vocab.context_vocab`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from gkmvlp_monai.core.vocab import context_vocab, tokenize


class Category(str, Enum):
    """What a trigger does to the mentions in its scope."""

    NEGATED = "negated"
    UNCERTAIN = "uncertain"
    PSEUDO = "pseudo"
    TERMINATE = "terminate"


FORWARD, BACKWARD, BOTH = "forward", "backward", "both"


def default_triggers() -> tuple[tuple[str, Category, str], ...]:
    """The ``(phrase, category, direction)`` trigger table of ``gkmvlp_monai/core/vocabularies/context.json``."""
    return tuple((p, Category(c), d) for p, c, d in context_vocab().triggers)


_SENTENCE_SPLIT = re.compile(r"(?<!\d)\.(?!\d)|[!?\n:]|(?<=\s)\d+\)\s|\s-\s")
_CLAUSE_MARK = re.compile(r";")


@dataclass(frozen=True)
class TriggerMatch:
    """A trigger phrase found in a sentence's tokens ``[start, end)``."""

    start: int
    end: int
    phrase: str
    category: Category
    direction: str


@dataclass(frozen=True)
class Span:
    """A target mention: tokens ``[start, end)`` of a sentence."""

    start: int
    end: int


def split_sentences(text: str) -> list[str]:
    """Split report text into sentences; section headers ("FINDINGS:") and list numbers end a sentence.

    Colons end a sentence so a header never becomes part of the scope of what follows it, and a
    ``"word: no"`` pattern cannot override the negation of the following words.
    """
    parts = _SENTENCE_SPLIT.split(text or "")
    headers = context_vocab().section_headers
    return [p.strip() for p in parts if p and tokenize(p) and " ".join(tokenize(p)) not in headers]


def sentence_tokens(sentence: str) -> list[str]:
    """Tokens of one sentence, with ``;`` kept as its own token (a termination)."""
    out: list[str] = []
    for i, piece in enumerate(_CLAUSE_MARK.split(sentence)):
        if i:
            out.append(";")
        out.extend(tokenize(piece))
    return out


class ConTextClassifier:
    """Assign present / absent / uncertain to target spans of a tokenised sentence.

    Args:
        triggers: ``(phrase, category, direction)`` rows; defaults to :func:`default_triggers` (the
            trigger table of ``gkmvlp_monai/core/vocabularies/context.json``).
        max_scope: the most tokens a trigger reaches (ConText uses the sentence; a cap keeps long
            run-on sentences from carrying a negation too far).
    """

    def __init__(
        self, triggers: tuple[tuple[str, Category, str], ...] | None = None, max_scope: int = 12
    ) -> None:
        if triggers is None:
            triggers = default_triggers()
        table: dict[tuple[str, ...], list[tuple[Category, str, str]]] = {}
        for phrase, category, direction in triggers:
            table.setdefault(tuple(tokenize(phrase)), []).append((category, direction, phrase))
        self.table = table
        self.max_len = max(len(k) for k in table)
        self.max_scope = max_scope

    def find_triggers(self, tokens: list[str], blocked: set[int] | None = None) -> list[TriggerMatch]:
        """Triggers in ``tokens``, longest first left to right; tokens in ``blocked`` (target words) are
        skipped. A ``;`` token is a termination."""
        blocked = blocked or set()
        out: list[TriggerMatch] = []
        i = 0
        while i < len(tokens):
            if tokens[i] == ";":
                out.append(TriggerMatch(i, i + 1, ";", Category.TERMINATE, BOTH))
                i += 1
                continue
            hit = None
            for n in range(min(self.max_len, len(tokens) - i), 0, -1):
                if any(j in blocked for j in range(i, i + n)):
                    continue
                rows = self.table.get(tuple(tokens[i : i + n]))
                if rows:
                    hit = [TriggerMatch(i, i + n, rows[0][2], c, d) for c, d, _ in rows]
                    break
            if hit:
                out.extend(hit)
                i = hit[0].end
            else:
                i += 1
        return out

    def clause_bounds(self, tokens: list[str], triggers: list[TriggerMatch]) -> list[tuple[int, int]]:
        """Clauses of the sentence: token ranges between terminations."""
        cuts = [0]
        for t in triggers:
            if t.category is Category.TERMINATE:
                cuts.extend([t.start, t.end])
        cuts.append(len(tokens))
        return [(a, b) for a, b in zip(cuts[::2], cuts[1::2])]

    def classify(self, tokens: list[str], targets: list[Span]) -> list[str]:
        """State of each target: ``present``, ``absent`` or ``uncertain``.

        Negation and uncertainty are read from triggers whose scope covers the target: a forward trigger
        covers the words after it up to the next termination or trigger of another kind... in practice up
        to the next termination, the sentence end or ``max_scope`` tokens; a backward trigger covers the
        words before it likewise. Negation wins over uncertainty when both cover a target ("no definite
        ... may" is rare; "cannot exclude" is an uncertainty trigger, never a negation).
        """
        blocked = {j for t in targets for j in range(t.start, t.end)}
        triggers = self.find_triggers(tokens, blocked)
        terms = sorted({t.start for t in triggers if t.category is Category.TERMINATE})
        states = []
        for tgt in targets:
            negated = uncertain = False
            for trig in triggers:
                if trig.category in (Category.PSEUDO, Category.TERMINATE):
                    continue
                if trig.direction in (FORWARD, BOTH) and trig.end <= tgt.start:
                    if tgt.start - trig.end <= self.max_scope and not any(
                        trig.end <= s < tgt.start for s in terms
                    ):
                        negated |= trig.category is Category.NEGATED
                        uncertain |= trig.category is Category.UNCERTAIN
                if trig.direction in (BACKWARD, BOTH) and trig.start >= tgt.end:
                    if trig.start - tgt.end <= self.max_scope and not any(
                        tgt.end <= s < trig.start for s in terms
                    ):
                        negated |= trig.category is Category.NEGATED
                        uncertain |= trig.category is Category.UNCERTAIN
            states.append("absent" if negated else "uncertain" if uncertain else "present")
        return states
