"""Matching compiled rules against a text: find every phrase (walking the trie token by token), split
sentences into clauses, drop negated and excluded occurrences, and report the categories met."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

from medchat.chat.safety.lexicon import PUNCTUATION, tokenize
from medchat.chat.safety.rules.compiler import CONJUNCTIONS, CompiledRules, PhraseNode
from medchat.chat.safety.rules.model import Document, Hit, Span

NEGATION_WINDOW = 10
"""A negation cue reaches at most this many tokens (words and commas) ahead."""
_CLAUSE_SHIFT = 16
"""Clause ids are ``first token of the sentence << 16 | clause number in it``: unique in a document."""


class RuleSet(CompiledRules):
    """Compiled rules of one or more files: ``analyse`` a text, then ``match`` it. Immutable once loaded."""

    def analyse(self, text: str) -> Document:
        """Split ``text`` into sentences and find every phrase of every rule and word list in it."""
        tokens: list[str] = []
        sentence_of: list[int] = []
        sentences: list[range] = []
        for sentence in tokenize(text):
            start = len(tokens)
            tokens += sentence
            sentence_of += [len(sentences)] * len(sentence)
            sentences.append(range(start, len(tokens)))
        return Document(tokens, sentence_of, sentences, self._find(tokens, sentence_of), self)

    def _find(self, tokens: list[str], sentence_of: list[int]) -> dict[int, list[tuple[int, int]]]:
        entries = list(map(self._entries.__getitem__, tokens))
        count = len(tokens)
        found: dict[int, list[tuple[int, int]]] = {}
        for start in [i for i, entry in enumerate(entries) if entry[1]]:
            after = start + 1
            open_ = after < count and sentence_of[after] == sentence_of[start] and tokens[after] not in PUNCTUATION
            next_keys = entries[after][0] if open_ else ()
            for node in entries[start][1]:
                for term in node.ends:
                    found.setdefault(term, []).append((start, after))
                if open_ and (node.any is not None or (next_keys and node.children)):
                    self._walk(node, start, entries=entries, tokens=tokens, sentence_of=sentence_of, found=found)
        return found

    @staticmethod
    def _walk(
        root: PhraseNode,
        start: int,
        *,
        entries: list[tuple[frozenset[int], tuple[PhraseNode, ...]]],
        tokens: list[str],
        sentence_of: list[int],
        found: dict[int, list[tuple[int, int]]],
    ) -> None:
        """Follow the trie from ``root`` (already matched at ``start``) through the next tokens."""
        sentence = sentence_of[start]
        count = len(tokens)
        pending = [(root, start + 1)]
        while pending:
            node, end = pending.pop()
            if node is not root:
                for term in node.ends:
                    found.setdefault(term, []).append((start, end))
            if end >= count or sentence_of[end] != sentence or tokens[end] in PUNCTUATION:
                continue
            children = node.children
            if children:
                for key in entries[end][0]:
                    if key in children:
                        pending.append((children[key], end + 1))
            if node.any is not None:
                pending.append((node.any, end + 1))

    def clause_ids(self, tokens: list[str], sentence: range) -> list[int]:
        """Clause id of each token of one sentence (the clause rules are in the module docstring)."""
        words = tokens[sentence.start : sentence.stop]
        base = sentence.start << _CLAUSE_SHIFT
        if self._clause_markers.isdisjoint(words):
            return [base] * len(words)
        ids = [base]
        number = 0
        for previous, token in pairwise(words):
            if (
                previous == ":"
                or token in self._terminators
                or (token in self._clause_starts and (previous == "," or previous in CONJUNCTIONS))
            ):
                number += 1
            ids.append(base | number)
        return ids

    def match(self, document: Document, keep: Callable[[str, Span], bool] | None = None) -> list[Hit]:
        """The categories whose rules the document meets, in file order, one ``Hit`` per category.

        ``keep(category, span)`` lets the caller drop occurrences it judges irrelevant (a general
        question, a past event); negated and excluded occurrences are dropped before it is asked.
        """
        found = document.found
        cues = self._negation_cues(document)
        excluded = self._excluded(document)
        valid: dict[tuple[str, int], set[int]] = {}

        def negated(start: int, sentence: int) -> bool:
            return any(
                cue_sentence == sentence
                and cue_end <= start
                and start - cue_end <= NEGATION_WINDOW
                and document.clause(cue_start) == document.clause(start)
                for cue_start, cue_end, cue_sentence in cues
            )

        def sentences_with(category: str, term: int, within: set[int] | None = None) -> set[int]:
            """The sentences (among ``within``, if given) holding a counted occurrence of ``term``."""
            if within is None and (category, term) in valid:
                return valid[(category, term)]
            result: set[int] = set()
            blocked, blocked_clauses = excluded.get(category, (set(), set()))
            for start, end in found.get(term, ()):
                sentence = document.sentence_of[start]
                if (
                    sentence in result
                    or (within is not None and sentence not in within)
                    or (blocked_clauses and document.clause(start) in blocked_clauses)
                    or (blocked and any(position in blocked for position in range(start, end)))
                    or (cues and negated(start, sentence))
                    or (keep is not None and not keep(category, Span(start, end, sentence)))
                ):
                    continue
                result.add(sentence)
            if within is None:
                valid[(category, term)] = result
            return result

        def group_sentences(category: str, group: tuple[int, ...]) -> set[int]:
            """Sentences where every term of the group counts; the rarest term first, the rest only there."""
            ordered = sorted(group, key=lambda term: len(found[term]))
            common = sentences_with(category, ordered[0])
            for term in ordered[1:]:
                if not common:
                    break
                common = sentences_with(category, term, common)
            return common

        hits: dict[str, Hit] = {}
        for rule in self.rules:
            if rule.category in hits or any(term not in found for group in rule.groups for term in group):
                continue
            chosen: list[int] = []
            for group in rule.groups:
                common = group_sentences(rule.category, group)
                if not common:
                    break
                chosen.append(min(common))
            else:
                hits[rule.category] = Hit(rule.category, rule, tuple(chosen))
        return [hits[category] for category in self.categories if category in hits]

    def rule_spans(self, document: Document) -> list[tuple[int, int]]:
        """Every occurrence of a rule phrase as ``(start, end)``, before negation and exclusions."""
        return [span for term, spans in document.found.items() if term in self._rule_terms for span in spans]

    def _negation_cues(self, document: Document) -> list[tuple[int, int, int]]:
        """``(start, end, sentence)`` of each negation cue not inside a rule phrase or a pseudo-negation."""
        cue_spans = document.spans("@negation")
        if not cue_spans:
            return []
        inside = set(self.directive_terms("@pseudo_negation")) | self._rule_terms
        covered = {p for term, spans in document.found.items() if term in inside for s, e in spans for p in range(s, e)}
        return [span for span in cue_spans if covered.isdisjoint(range(span.start, span.end))]

    def _excluded(self, document: Document) -> dict[str, tuple[set[int], set[int]]]:
        """Per category: token positions overlapped by its one-term exclusions, clauses of the others."""
        found = document.found
        excluded: dict[str, tuple[set[int], set[int]]] = {}
        for category, exclusions in self._exclusions.items():
            positions: set[int] = set()
            clauses: set[int] = set()
            for terms in exclusions:
                if len(terms) == 1:
                    positions.update(p for start, end in found.get(terms[0], ()) for p in range(start, end))
                elif all(term in found for term in terms):
                    clauses |= set.intersection(*({document.clause(s) for s, _ in found[term]} for term in terms))
            if positions or clauses:
                excluded[category] = (positions, clauses)
        return excluded
