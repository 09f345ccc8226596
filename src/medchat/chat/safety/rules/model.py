"""What rules and their matches are made of: a text analysed into a ``Document``, where phrases were
found (``Span``), the compiled ``Rule`` lines and the ``Hit`` of a category."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Protocol


class Analyser(Protocol):
    """What a ``Document`` asks of the rule set that analysed it (``RuleSet`` satisfies this)."""

    def clause_ids(self, tokens: list[str], sentence: range) -> list[int]: ...

    def directive_terms(self, name: str) -> list[int]: ...


class Span(NamedTuple):
    """Where a phrase was found: token positions ``[start, end)`` and the sentence it is in.

    Its clause is ``Document.clause(span.start)``, computed only when asked (most checks never need it).
    """

    start: int
    end: int
    sentence: int


@dataclass(frozen=True, slots=True)
class Rule:
    category: str
    groups: tuple[tuple[int, ...], ...]
    """Term ids: every group must be met somewhere, every term of a group inside one sentence."""
    source: str
    """``file:line``, so a match can be traced back to the reviewed line."""


@dataclass(frozen=True, slots=True)
class Hit:
    category: str
    rule: Rule
    sentences: tuple[int, ...]
    """The sentence meeting each group of the rule, in group order."""


@dataclass(slots=True)
class Document:
    """One analysed text: its tokens by sentence, and where every phrase of the rule set occurs."""

    tokens: list[str]
    """Words, commas and colons of all sentences, one flat list."""
    sentence_of: list[int]
    sentences: list[range]
    found: dict[int, list[tuple[int, int]]]
    """Term id -> ``(start, end)`` token spans of its alternatives, in text order."""
    _ruleset: Analyser
    _clauses: dict[int, list[int]] = field(default_factory=dict)

    def clause(self, position: int) -> int:
        """The clause id of a token position (computed per sentence on first use)."""
        sentence = self.sentence_of[position]
        clauses = self._clauses.get(sentence)
        if clauses is None:
            clauses = self._clauses[sentence] = self._ruleset.clause_ids(self.tokens, self.sentences[sentence])
        return clauses[position - self.sentences[sentence].start]

    def spans(self, directive: str) -> list[Span]:
        """Where any phrase of the word list ``directive`` (``@anchor``...) occurs, in text order."""
        terms = self._ruleset.directive_terms(directive)
        return sorted(Span(s, e, self.sentence_of[s]) for term in terms for s, e in self.found.get(term, ()))
