"""Compiling rule files: each ``category<TAB>pattern`` line into a phrase trie of terms, word lists kept
by name, and the lexicon frozen for matching. A file that does not parse raises ``RulesError`` naming
its line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from medchat.chat.safety.lexicon import ANY, CACHE_LIMIT, PUNCTUATION, TOKENS, Lexicon, RulesError, normalise
from medchat.chat.safety.rules.model import Rule

RULES_DIR = Path(__file__).parent.parent
"""Where the reviewed rule files live (packaged with the code, beside the safety checks)."""
CONJUNCTIONS = frozenset({"and", "or", "so", "then"})
"""Words that can start a new clause (with a ``@clause_start`` word after them)."""
_WORD_SETS = ("@terminator", "@clause_start", "@typo_tolerant", "@not_typo")
"""Word lists the engine reads as plain sets, never searched for in the text (also any ``@..._words``)."""


class PhraseNode:
    """A node of the phrase trie: terms whose phrase ends here, and the keys that continue it."""

    __slots__ = ("any", "children", "ends")

    def __init__(self) -> None:
        self.ends: list[int] = []
        self.children: dict[int, PhraseNode] = {}
        self.any: PhraseNode | None = None

    def add(self, keys: Sequence[int], term: int) -> None:
        node = self
        for key in keys:
            if key == ANY:
                node.any = node.any or PhraseNode()
                node = node.any
            else:
                node = node.children.setdefault(key, PhraseNode())
        if term not in node.ends:
            node.ends.append(term)


class _Entries(dict[str, tuple[frozenset[int], tuple[PhraseNode, ...]]]):
    """Token -> (its matcher keys, the trie nodes of phrases it can begin); a cache."""

    def __init__(self, lexicon: Lexicon, trie: PhraseNode) -> None:
        super().__init__()
        self._lexicon = lexicon
        self._trie = trie

    def __missing__(self, token: str) -> tuple[frozenset[int], tuple[PhraseNode, ...]]:
        if len(self) >= CACHE_LIMIT:
            self.clear()
        keys = self._lexicon[token]
        children = self._trie.children
        entry = (frozenset(keys), tuple(children[key] for key in keys if key in children))
        self[token] = entry
        return entry


class CompiledRules:
    """The rules of one or more files, compiled: ``RuleSet`` (``matcher``) adds analysing and matching."""

    def __init__(self) -> None:
        self._lexicon = Lexicon()
        self._trie = PhraseNode()
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

    @classmethod
    def load(cls, *paths: Path) -> Self:
        ruleset = cls()
        for path in paths:
            ruleset._parse(path.read_text(encoding="utf-8"), path.name)
        ruleset._freeze()
        return ruleset

    @classmethod
    def from_text(cls, *texts: str) -> Self:
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
        self._clause_markers = self._terminators | CONJUNCTIONS | PUNCTUATION
        unknown = [category for category in self._exclusions if category not in self.categories]
        if unknown:
            raise RulesError(f"exclusions for categories without rules: {unknown}")

    def words(self, name: str) -> list[str]:
        """The alternatives of a word list, as written in the file."""
        return list(self._words.get(name, ()))

    def directive_terms(self, name: str) -> list[int]:
        return self._directives.get(name, [])


def check_categories(ruleset: CompiledRules, names: Sequence[str], where: str) -> None:
    """Raise ``RulesError`` unless every name is a category of ``ruleset``."""
    unknown = [name for name in names if name not in ruleset.categories]
    if unknown:
        raise RulesError(f"{where}: unknown categories {unknown}; known: {ruleset.categories}")
