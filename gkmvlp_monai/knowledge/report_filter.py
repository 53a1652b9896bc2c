"""Report filter: per report, the state of every entity and the regions the report places it in.

For each sentence the filter finds entity mentions (longest phrase of ``entities.json`` first), reads
their assertion with the ConText-style classifier of :mod:`gkmvlp_monai.knowledge.context`, applies the
clause rules of ``entities.json`` (``relabel``: "heart ... enlarged" → cardiomegaly; ``absent_if``:
"normal heart size" → cardiomegaly absent; ``normal_means_absent``), marks "A or B" alternatives
uncertain, and grounds each mention to the location phrase nearest to it in the sentence (resolved by
:func:`gkmvlp_monai.core.vocab.resolve_locations`), falling back to the entity's default regions.
Mentions of one entity combine as present > uncertain > absent; unmentioned entities are left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gkmvlp_monai.core.vocab import (
    LocationMatch,
    anatomical_phrases,
    compound_phrases,
    context_vocab,
    entities,
    entity,
    entity_phrases,
    find_locations,
    location_lexicon,
    region_names,
    resolve_locations,
    tokenize,
)
from gkmvlp_monai.knowledge.context import ConTextClassifier, Span, sentence_tokens, split_sentences

STATES = ("absent", "present", "uncertain")
_RANK = {"absent": 0, "uncertain": 1, "present": 2}
_LOCATION_GLUE = frozenset({"and", "or", "the", "of", "both", "to", "at", "in", "within", "from"})


@dataclass
class _Mention:
    start: int
    end: int
    name: str
    state: str = "present"
    regions: list[str] = field(default_factory=list)
    hosts: set[str] = field(default_factory=set)


def report_text(item: dict[str, Any]) -> str:
    """The text the filter reads from a datalist item: ``findings`` then ``impression``, else ``report``."""
    parts = [str(item.get(k) or "").strip() for k in ("findings", "impression")]
    text = " . ".join(p for p in parts if p)
    return text or str(item.get("report") or "").strip()


class ReportFilter:
    """Entity states and grounded regions from free-text chest X-ray reports.

    Args:
        max_scope: largest number of tokens a negation/uncertainty trigger reaches.
        location_window: largest token distance between an entity mention and a location phrase
            grounded to it.
        alternatives_uncertain: mark both sides of "A or B" uncertain. Off by default: IU indexers tag
            both alternatives of "atelectasis or scarring" as present, and the bench agrees.
    """

    def __init__(
        self, max_scope: int = 12, location_window: int = 8, alternatives_uncertain: bool = False
    ) -> None:
        self.context = ConTextClassifier(max_scope=max_scope)
        self.phrases = entity_phrases()
        self.compounds = compound_phrases()
        self.anatomical = anatomical_phrases()
        self.max_len = max(len(k) for k in [*self.phrases, *self.anatomical])
        self.location_window = location_window
        self.alternatives_uncertain = alternatives_uncertain
        self.rules = {e.name: e.rules for e in entities() if e.rules}
        self._normal_kind = frozenset(e.name for e in entities() if e.kind == "normal")
        self._normal = [tuple(tokenize(w)) for w in context_vocab().normal_words]

    # -- matching -------------------------------------------------------------------------------------
    def _find_entities(self, tokens: list[str]) -> list[_Mention]:
        """Longest entity phrase first, left to right. A compound phrase ("calcified granuloma") gives one
        mention per part on the same tokens; an anatomical use of a device word ("septal lines", "tip of
        the scapula") longer than any entity phrase at that token gives none."""
        out: list[_Mention] = []
        i = 0
        while i < len(tokens):
            found = blocked = 0
            for n in range(min(self.max_len, len(tokens) - i), 0, -1):
                key = tuple(tokens[i : i + n])
                if not blocked and key in self.anatomical:
                    blocked = n
                name = self.phrases.get(key)
                if name:
                    found = n
                    break
            if blocked > found:
                i += blocked
            elif found:
                key = tuple(tokens[i : i + found])
                for name in self.compounds.get(key, (self.phrases[key],)):
                    out.append(_Mention(i, i + found, name))
                i += found
            else:
                i += 1
        return out

    @staticmethod
    def _has(tokens: list[str], start: int, end: int, phrases: list[tuple[str, ...]]) -> bool:
        window = tokens[max(0, start) : end]
        for p in phrases:
            for i in range(len(window) - len(p) + 1):
                if tuple(window[i : i + len(p)]) == p:
                    return True
        return False

    def _clause(self, clauses: list[tuple[int, int]], pos: int) -> tuple[int, int]:
        for a, b in clauses:
            if a <= pos < b:
                return a, b
        return 0, 0

    def _apply_rules(
        self, tokens: list[str], mentions: list[_Mention], clauses: list[tuple[int, int]]
    ) -> None:
        for target, rules in self.rules.items():
            relabel = rules.get("relabel")
            if relabel:
                anchors = [tuple(tokenize(a)) for a in relabel["anchors"]]
                for m in mentions:
                    a, b = self._clause(clauses, m.start)
                    lo, hi = max(a, m.start - 6), min(b, m.end + 6)
                    if m.name in relabel["from"] and self._has(tokens, lo, hi, anchors):
                        m.name = target
        for m in mentions:
            if self.rules.get(m.name, {}).get("normal_means_absent") and m.state == "present":
                a, b = self._clause(clauses, m.start)
                if self._has(tokens, a, b, self._normal):
                    m.state = "absent"
        # "A or B": alternatives are uncertain unless negated
        for left, right in zip(mentions, mentions[1:]):
            gap = tokens[left.end : right.start]
            if self.alternatives_uncertain and gap and "or" in gap and len(gap) <= 4 and ";" not in gap:
                for m in (left, right):
                    if m.state == "present":
                        m.state = "uncertain"

    def _absent_if(
        self, tokens: list[str], mentions: list[_Mention], clauses: list[tuple[int, int]]
    ) -> list[_Mention]:
        extra = []
        for target, rules in self.rules.items():
            cond = rules.get("absent_if")
            if not cond:
                continue
            anchors = [tuple(tokenize(a)) for a in cond["anchors"]]
            normals = [tuple(tokenize(w)) for w in cond["with"]]
            for a, b in clauses:
                if any(m.name == target and a <= m.start < b for m in mentions):
                    continue
                if self._has(tokens, a, b, anchors) and self._has(tokens, a, b, normals):
                    extra.append(_Mention(a, a, target, "absent"))
        return extra

    def _attributes(
        self, tokens: list[str], mentions: list[_Mention], clauses: list[tuple[int, int]]
    ) -> list[_Mention]:
        """Apply ``attribute_of`` rules: drop phrase-scope attributes, record report-scope hosts."""
        dropped: set[int] = set()
        for k, m in enumerate(mentions):
            for rule in self.rules.get(m.name, {}).get("attribute_of", []):
                host = rule["entity"]
                a, b = self._clause(clauses, m.start)
                if rule["scope"] == "phrase":
                    # the next mention, skipping normal-kind modifiers ("calcified stable ... granuloma")
                    nxt = next((o for o in mentions[k + 1 :] if o.name not in self._normal_kind), None)
                    gap = tokens[m.end : nxt.start] if nxt else []
                    if (
                        nxt is not None
                        and nxt.name == host
                        and (
                            "host_phrases" not in rule
                            or " ".join(tokens[nxt.start : nxt.end]) in rule["host_phrases"]
                        )
                        and len(gap) <= rule["window"]
                        and ";" not in gap
                        and not set(gap) & set(rule.get("breaks", []))
                    ):
                        dropped.add(k)
                else:
                    anchors = [tuple(tokenize(w)) for w in rule.get("anchors", [])]
                    if self._has(tokens, a, b, anchors) or any(
                        o.name == host and a <= o.start < b for o in mentions
                    ):
                        m.hosts.add(host)
        return [m for k, m in enumerate(mentions) if k not in dropped]

    @staticmethod
    def _resolve_hosts(mentions: list[_Mention]) -> list[_Mention]:
        """Drop mentions that only describe a report-scope host entity the text asserts (not absent)."""
        asserted = {m.name for m in mentions if m.state != "absent"}
        return [m for m in mentions if not (m.hosts & asserted)]

    # -- grounding ------------------------------------------------------------------------------------
    def _location_groups(self, tokens: list[str]) -> list[list[LocationMatch]]:
        groups: list[list[LocationMatch]] = []
        for m in find_locations(tokens):
            if (
                groups
                and all(t in _LOCATION_GLUE or t == ";" for t in tokens[groups[-1][-1].end : m.start])
                and ";" not in tokens[groups[-1][-1].end : m.start]
                and m.start - groups[-1][-1].end <= 3
            ):
                groups[-1].append(m)
            else:
                groups.append([m])
        return groups

    def _ground(self, tokens: list[str], mentions: list[_Mention]) -> None:
        live = [m for m in mentions if m.state != "absent" and m.end > m.start]
        # keyed by the mention's tokens: the parts of a compound share its locations
        assigned: dict[tuple[int, int], list[list[LocationMatch]]] = {}
        for group in self._location_groups(tokens):
            g0, g1 = group[0].start, group[-1].end
            best, best_d = None, self.location_window + 1
            for k, m in enumerate(live):
                if m.start < g1 and g0 < m.end:  # the location is part of the mention ("hiatal hernia")
                    d = 0
                else:
                    d = m.start - g1 if g1 <= m.start else g0 - m.end
                # a ";" or a clause break between them keeps them apart
                lo, hi = (g1, m.start) if g1 <= m.start else (m.end, g0)
                if ";" in tokens[lo:hi]:
                    continue
                if d < best_d or (d == best_d and best is not None and g1 <= m.start):
                    best, best_d = k, d
            if best is not None:
                assigned.setdefault((live[best].start, live[best].end), []).append(group)
        lex = location_lexicon()
        for m in live:
            default = list(entity(m.name).default_regions)
            regs: list[str] = []
            for group in assigned.get((m.start, m.end), []):
                if all(x.kind == "side" for x in group):
                    sides = {s for x in group for s in lex.sides[x.key]}
                    sided = [r for r in default if any(r.startswith(s) for s in sides)]
                    regs.extend(sided or [f"{s} lung" for s in sorted(sides)])
                else:
                    regs.extend(resolve_locations(group))
            m.regions = regs or default

    def _sentence_mentions(self, sentence: str) -> list[_Mention]:
        """Entity mentions of one sentence with states, clause rules, phrase attributes and regions."""
        tokens = sentence_tokens(sentence)
        mentions = self._find_entities(tokens)
        # a word that is part of a longer trigger ("free of", "clear of") is the trigger, not an entity
        spans = [(t.start, t.end) for t in self.context.find_triggers(tokens)]
        mentions = [
            m
            for m in mentions
            if not any(a <= m.start and m.end <= b and b - a > m.end - m.start for a, b in spans)
        ]
        if not mentions:
            return self._absent_if(tokens, [], [(0, len(tokens))])
        states = self.context.classify(tokens, [Span(m.start, m.end) for m in mentions])
        for m, s in zip(mentions, states):
            m.state = s
        clauses = self.context.clause_bounds(tokens, self.context.find_triggers(tokens))
        self._apply_rules(tokens, mentions, clauses)
        mentions = self._attributes(tokens, mentions, clauses)
        mentions += self._absent_if(tokens, mentions, clauses)
        self._ground(tokens, mentions)
        for m in mentions:
            if m.state == "absent" or m.end == m.start:
                m.regions = []
        return mentions

    # -- public ---------------------------------------------------------------------------------------
    def annotate_sentence(self, sentence: str) -> list[tuple[str, str, list[str]]]:
        """``(entity, state, regions)`` for each entity mention of one sentence (read as a whole report,
        so report-scope ``attribute_of`` rules look only at this sentence)."""
        mentions = self._resolve_hosts(self._sentence_mentions(sentence))
        return [(m.name, m.state, m.regions) for m in mentions]

    def annotate(self, text: str) -> dict[str, dict[str, Any]]:
        """Entity states of a report: ``{entity: {"state": present|absent|uncertain, "regions": [...]}}``.

        Only mentioned entities appear (the design.md ``entities`` item key). Regions are listed for
        present and uncertain entities, in canonical region order.
        """
        out: dict[str, dict[str, Any]] = {}
        order = {r: i for i, r in enumerate(region_names())}
        mentions = [m for sentence in split_sentences(text) for m in self._sentence_mentions(sentence)]
        for m in self._resolve_hosts(mentions):
            cur = out.get(m.name)
            if cur is None or _RANK[m.state] > _RANK[cur["state"]]:
                out[m.name] = {"state": m.state, "regions": list(m.regions)}
            elif m.state == cur["state"] and m.state != "absent":
                cur["regions"].extend(r for r in m.regions if r not in cur["regions"])
        for v in out.values():
            v["regions"].sort(key=order.__getitem__)
        return out

    def annotate_item(self, item: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Entities of one datalist item's report text (see :func:`report_text`)."""
        return self.annotate(report_text(item))

    def annotate_datalist(
        self, path_in: str | Path, path_out: str | Path, overwrite: bool = False
    ) -> dict[str, int]:
        """Fill ``entities`` for every item of a datalist JSON and write it to ``path_out``.

        Args:
            path_in: datalist JSON (split keys holding lists of items).
            path_out: where to write the annotated datalist (may equal ``path_in``).
            overwrite: recompute ``entities`` of items that already have it.

        Returns:
            Counts: ``items``, ``annotated``, ``no_text`` (items with neither findings, impression nor
            report; they get an empty ``entities``), ``kept`` (items whose existing entities were kept).
        """
        doc = json.loads(Path(path_in).read_text(encoding="utf-8"))
        counts = {"items": 0, "annotated": 0, "no_text": 0, "kept": 0}
        for value in doc.values():
            if not isinstance(value, list):
                continue
            for item in value:
                if not isinstance(item, dict):
                    continue
                counts["items"] += 1
                if "entities" in item and not overwrite:
                    counts["kept"] += 1
                    continue
                text = report_text(item)
                if not text:
                    counts["no_text"] += 1
                    item["entities"] = {}
                    continue
                item["entities"] = self.annotate(text)
                counts["annotated"] += 1
        Path(path_out).write_text(json.dumps(doc, indent=1), encoding="utf-8")
        return counts
