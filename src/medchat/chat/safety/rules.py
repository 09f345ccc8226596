"""Rules kept as data: a compiler for the ``category<TAB>pattern`` files, and the matcher they run on.

The syntax is documented at the top of ``red_flags.tsv``. In short::

    pattern := ['!'] group (' & ' group)*    all groups somewhere in the message; '!' marks an exclusion
    group   := term (' + ' term)*            all terms inside one sentence, in any order
    term    := phrase ('|' phrase)*          any one alternative
    phrase  := word (' ' word)*              consecutive words
    word    := abc | abc* | *                a word, a prefix, any one word

Text is read as ``lexicon.tokenize`` splits it (normalised words by sentence; commas and colons kept
as tokens, so a phrase never runs across one), and a pattern word matches as ``lexicon.Lexicon`` says
(exactly, by prefix, or within one typo when the word is listed in ``@typo_tolerant``).

A term occurrence does not count when it is *negated*: a cue from ``@negation`` stands before it in
the same clause, at most ``NEGATION_WINDOW`` tokens away, and that cue is not itself part of a matched
phrase (``not breathing``) or of a ``@pseudo_negation`` (``not sure``). A clause ends at a ``:``, at a
``@terminator`` word (``but``), and at a ``,`` / ``and`` / ``or`` / ``so`` / ``then`` followed by a
``@clause_start`` word (``no fever, he is sweating``); a plain comma list keeps the negation going
(``denies chest pain, sweating or nausea``).

An exclusion (``!``) with one term drops every occurrence of its category's terms that overlaps one
of its phrases (``stroke of luck``); with several terms (``!face + numb* + dentist``) it drops the
category from each clause where all of them meet.

Lines whose category starts with ``@`` are word lists: the matcher reads ``@negation``,
``@pseudo_negation``, ``@terminator``, ``@clause_start``, ``@typo_tolerant`` and ``@not_typo``;
other lists are for the caller: searched for in the text (``Document.spans``), except those named
``@..._words`` (plain sets of single words) and ``@..._categories`` (category names).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import NamedTuple

from medchat.chat.safety.lexicon import ANY, CACHE_LIMIT, PUNCTUATION, TOKENS, Lexicon, RulesError, normalise, tokenize

__all__ = ["RULES_DIR", "Document", "Hit", "Rule", "RuleSet", "RulesError", "Span", "check_categories", "tokenize"]

RULES_DIR = Path(__file__).parent
"""Where the reviewed rule files live (packaged with the code)."""
NEGATION_WINDOW = 10
"""A negation cue reaches at most this many tokens (words and commas) ahead."""
_CLAUSE_SHIFT = 16
"""Clause ids are ``first token of the sentence << 16 | clause number in it``: unique in a document."""
_CONJUNCTIONS = frozenset({"and", "or", "so", "then"})
_WORD_SETS = ("@terminator", "@clause_start", "@typo_tolerant", "@not_typo")
"""Word lists the engine reads as plain sets, never searched for in the text (also any ``@..._words``)."""


class _Node:
    """A node of the phrase trie: terms whose phrase ends here, and the keys that continue it."""

    __slots__ = ("any", "children", "ends")

    def __init__(self) -> None:
        self.ends: list[int] = []
        self.children: dict[int, _Node] = {}
        self.any: _Node | None = None

    def add(self, keys: Sequence[int], term: int) -> None:
        node = self
        for key in keys:
            if key == ANY:
                node.any = node.any or _Node()
                node = node.any
            else:
                node = node.children.setdefault(key, _Node())
        if term not in node.ends:
            node.ends.append(term)


class _Entries(dict[str, tuple[frozenset[int], tuple[_Node, ...]]]):
    """Token -> (its matcher keys, the trie nodes of phrases it can begin); a cache."""

    def __init__(self, lexicon: Lexicon, trie: _Node) -> None:
        super().__init__()
        self._lexicon = lexicon
        self._trie = trie

    def __missing__(self, token: str) -> tuple[frozenset[int], tuple[_Node, ...]]:
        if len(self) >= CACHE_LIMIT:
            self.clear()
        keys = self._lexicon[token]
        children = self._trie.children
        entry = (frozenset(keys), tuple(children[key] for key in keys if key in children))
        self[token] = entry
        return entry


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
    _ruleset: RuleSet
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


class RuleSet:
    """Compiled rules of one or more files: ``analyse`` a text, then ``match`` it. Immutable once loaded."""

    def __init__(self) -> None:
        self._lexicon = Lexicon()
        self._trie = _Node()
        self._entries = _Entries(self._lexicon, self._trie)
        self._term_count = 0
        self._rule_terms: set[int] = set()
        self._exclusions: dict[str, list[tuple[int, ...]]] = {}
        self._directives: dict[str, list[int]] = {}
        self._words: dict[str, list[str]] = {}
        self._terminators: frozenset[str] = frozenset()
        self._clause_starts: frozenset[str] = frozenset()
        self._clause_markers: frozenset[str] = frozenset()
        self.rules: list[Rule] = []
        self.categories: list[str] = []

    # --- compiling ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, *paths: Path) -> RuleSet:
        ruleset = cls()
        for path in paths:
            ruleset._parse(path.read_text(encoding="utf-8"), path.name)
        ruleset._freeze()
        return ruleset

    @classmethod
    def from_text(cls, *texts: str) -> RuleSet:
        ruleset = cls()
        for number, text in enumerate(texts, start=1):
            ruleset._parse(text, f"<rules {number}>")
        ruleset._freeze()
        return ruleset

    def _parse(self, text: str, source: str) -> None:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            where = f"{source}:{number}"
            category, tab, pattern = line.partition("\t")
            category, pattern = category.strip(), pattern.strip()
            if not tab or not category or not pattern:
                raise RulesError(f"{where}: expected 'category<TAB>pattern', got {line!r}")
            if not re.fullmatch(r"@?[a-z][a-z0-9_]*", category):
                raise RulesError(f"{where}: category {category!r} must be lower_snake_case")
            if category.startswith("@"):
                self._parse_word_list(category, pattern, where)
            elif pattern.startswith("!"):
                if "&" in pattern:
                    raise RulesError(f"{where}: an exclusion cannot use '&'")
                terms = tuple(self._term(term, where, rule=True) for term in pattern[1:].split("+"))
                self._exclusions.setdefault(category, []).append(terms)
            else:
                groups = tuple(
                    tuple(self._term(term, where, rule=True) for term in group.split("+"))
                    for group in pattern.split("&")
                )
                self.rules.append(Rule(category, groups, where))
                if category not in self.categories:
                    self.categories.append(category)

    def _parse_word_list(self, name: str, pattern: str, where: str) -> None:
        if "+" in pattern or "&" in pattern or pattern.startswith("!"):
            raise RulesError(f"{where}: a word list ({name}) takes '|' alternatives only")
        alternatives = [alternative.strip() for alternative in pattern.split("|")]
        if (name in _WORD_SETS or name.endswith("_words")) and any(" " in a or not a for a in alternatives):
            raise RulesError(f"{where}: {name} takes single words")
        self._words.setdefault(name, []).extend(alternatives)
        if name not in _WORD_SETS and not name.endswith(("_categories", "_words")):
            self._directives.setdefault(name, []).append(self._term(pattern, where, rule=False))

    def _term(self, text: str, where: str, *, rule: bool) -> int:
        term = self._term_count
        self._term_count += 1
        if rule:
            self._rule_terms.add(term)
        for alternative in text.split("|"):
            keys = []
            for spelling in alternative.split():
                core = spelling.removesuffix("*") if spelling != "*" else "*"
                words = TOKENS.findall(normalise(core)) if core != "*" else ["*"]
                if len(words) != 1 or words[0] in PUNCTUATION:
                    raise RulesError(f"{where}: {spelling!r} is not one word (write words apart, no punctuation)")
                keys.append(self._lexicon.key(words[0] + ("*" if spelling.endswith("*") and core != "*" else "")))
            if not keys:
                raise RulesError(f"{where}: empty alternative in {text!r}")
            if keys[0] == ANY or keys[-1] == ANY:
                raise RulesError(f"{where}: a phrase cannot begin or end with '*' ({alternative.strip()!r})")
            self._trie.add(keys, term)
        return term

    def _freeze(self) -> None:
        for name in ("@terminator", "@clause_start", "@not_typo"):
            self._lexicon.protected.update(self._words.get(name, ()))
        self._lexicon.freeze(self._words.get("@typo_tolerant", ()))
        self._entries.clear()
        self._terminators = frozenset(self._words.get("@terminator", ()))
        self._clause_starts = frozenset(self._words.get("@clause_start", ()))
        self._clause_markers = self._terminators | _CONJUNCTIONS | PUNCTUATION
        unknown = [category for category in self._exclusions if category not in self.categories]
        if unknown:
            raise RulesError(f"exclusions for categories without rules: {unknown}")

    def words(self, name: str) -> list[str]:
        """The alternatives of a word list, as written in the file."""
        return list(self._words.get(name, ()))

    def directive_terms(self, name: str) -> list[int]:
        return self._directives.get(name, [])

    # --- analysing ---------------------------------------------------------------------------------
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
        root: _Node,
        start: int,
        *,
        entries: list[tuple[frozenset[int], tuple[_Node, ...]]],
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
                or (token in self._clause_starts and (previous == "," or previous in _CONJUNCTIONS))
            ):
                number += 1
            ids.append(base | number)
        return ids

    # --- matching ----------------------------------------------------------------------------------
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


def check_categories(ruleset: RuleSet, names: Sequence[str], where: str) -> None:
    """Raise ``RulesError`` unless every name is a category of ``ruleset``."""
    unknown = [name for name in names if name not in ruleset.categories]
    if unknown:
        raise RulesError(f"{where}: unknown categories {unknown}; known: {ruleset.categories}")
