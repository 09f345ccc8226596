"""How the rule engine reads text: normalisation, tokens, and the typo-tolerant lexicon.

Text and patterns are normalised the same way (``normalise``): NFKC, lower case, apostrophes
dropped (``can't`` -> ``cant``), ``cannot`` and ``can not`` become ``cant``, a decimal keeps its
integer part (``38.5`` -> ``38``); everything that is not a letter or digit separates words. Sentences
end at ``. ! ? ;`` and line breaks. Commas and colons stay in a sentence as tokens of their own, so a
phrase never runs across one. ASCII text (nearly every message) takes a fast path through
``bytes.translate`` and ``str.split``: regular expressions cost about 0.3 µs a token here.

Typo tolerance is opt-in: a word (5+ letters) or stem (6+ letters) listed in ``@typo_tolerant`` also
matches a token one edit away (insertion, deletion, substitution, swap of neighbours) that starts with
the same letter and is neither a word of any rule or list nor in ``@not_typo``. Tolerating typos in
every word was measured on MedQuAD's vocabulary and rejected: ``women`` read as ``woken``,
``thought`` as ``though``, ``drink`` as ``drank``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

ANY = -1
"""The matcher key of a bare ``*`` (any one word)."""
FUZZY_MIN_WORD = 5
"""The shortest word ``@typo_tolerant`` may list; shorter words have too many real neighbours."""
FUZZY_MIN_STEM = 6
"""The shortest prefix stem ``@typo_tolerant`` may list."""
CACHE_LIMIT = 50_000
"""Token caches are emptied when they reach this size (a bound on memory, not a tuning knob)."""
PUNCTUATION = frozenset({",", ":"})
"""The tokens that are not words."""

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'"})
_CANT = re.compile(r"\bcan(?:not|\s+not)\b")
_SENTENCES = re.compile(r"[.!?;\n]+")
TOKENS = re.compile(r"[^\W\d_]+|\d+|[,:]")
"""Words, numbers, commas and colons of normalised text (the general, non-ASCII path)."""
_DIGIT_LETTER = re.compile(r"[a-z]+|\d+|[,:]")
_ASCII_TABLE = bytes(
    c if chr(c).isalnum() or chr(c) in ",:" else ord("\n") if chr(c) in ".!?;\n" else ord(" ") for c in range(256)
)
"""ASCII fast path (``bytes.translate``): sentence ends become line breaks, other symbols spaces."""
_NOT_DIGITS = bytes(c for c in range(256) if not chr(c).isdigit())


class RulesError(ValueError):
    """A rules file does not parse; the message names the file and the line."""


def normalise(text: str) -> str:
    """Text as the matcher reads it (see the module docstring), punctuation still in place."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    text = text.lower()
    if "'" in text:
        text = text.replace("'", "")
    if "cannot" in text or "can not" in text:
        text = _CANT.sub("cant", text)
    if "." in text:
        text = _drop_fractions(text)
    return text


def _drop_fractions(text: str) -> str:
    """``38.5`` -> ``38``, so a decimal point does not end a sentence (a ``str.find`` loop: no regex scan)."""
    parts = []
    kept = 0
    dot = text.find(".")
    while dot != -1:
        end = dot + 1
        if dot and text[dot - 1].isdigit() and text[end : end + 1].isdigit():
            while end < len(text) and text[end].isdigit():
                end += 1
            parts.append(text[kept:dot])
            kept = end
        dot = text.find(".", end)
    if not parts:
        return text
    parts.append(text[kept:])
    return "".join(parts)


def tokenize(text: str) -> list[list[str]]:
    """The sentences of ``text``, each a list of words, commas and colons."""
    text = normalise(text)
    if not text.isascii():
        return [tokens for chunk in _SENTENCES.split(text) if (tokens := TOKENS.findall(chunk))]
    data = text.encode("ascii").translate(_ASCII_TABLE)
    if b"," in data:
        data = data.replace(b",", b" , ")
    if b":" in data:
        data = data.replace(b":", b" : ")
    sentences = []
    for chunk in data.split(b"\n"):
        if chunk.translate(None, _NOT_DIGITS):
            tokens = _DIGIT_LETTER.findall(chunk.decode("ascii"))  # "1000mg" is two words
        else:
            tokens = chunk.decode("ascii").split()
        if tokens:
            sentences.append(tokens)
    return sentences


def _within_one_edit(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by at most one insertion, deletion, substitution or adjacent swap."""
    if a == b:
        return True
    if len(a) < len(b):
        a, b = b, a
    if len(a) - len(b) > 1:
        return False
    i = 0
    while i < len(b) and a[i] == b[i]:
        i += 1
    if len(a) > len(b):
        return a[i + 1 :] == b[i:]
    if a[i + 1 :] == b[i + 1 :]:
        return True
    return a[i : i + 2] == b[i + 1 : i + 2] + b[i : i + 1] and a[i + 2 :] == b[i + 2 :]


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


class _FuzzyIndex:
    """Finds the entries within one edit of a string that share its first letter (symmetric deletions)."""

    def __init__(self, entries: Iterable[str]) -> None:
        self._by_variant: dict[str, list[str]] = {}
        for entry in entries:
            for variant in (entry, *_deletions(entry)):
                self._by_variant.setdefault(variant, []).append(entry)

    def near(self, text: str) -> set[str]:
        if not text or not self._by_variant:
            return set()
        candidates: set[str] = set()
        for variant in (text, *_deletions(text)):
            candidates.update(self._by_variant.get(variant, ()))
        return {entry for entry in candidates if entry[0] == text[0] and _within_one_edit(text, entry)}


class Lexicon(dict[str, tuple[int, ...]]):
    """Token -> the matcher keys it satisfies (exact words, prefix stems, typo-tolerant words).

    The mapping is its own cache: ``lexicon[token]`` computes a token once (``__missing__``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.keys: dict[str, int] = {}
        self.exact: dict[str, int] = {}
        self.stems: dict[str, int] = {}
        self.protected: set[str] = set()
        self.fuzzy_words: dict[str, int] = {}
        self._fuzzy_word_index = _FuzzyIndex(())
        self._fuzzy_stem_index = _FuzzyIndex(())
        self._stem_lengths: tuple[int, ...] = ()
        self._fuzzy_prefix_lengths: tuple[int, ...] = ()

    def key(self, spelling: str) -> int:
        """The key of one pattern word (``abc``, ``abc*`` or ``*``)."""
        if spelling == "*":
            return ANY
        if spelling not in self.keys:
            key = self.keys[spelling] = len(self.keys)
            if spelling.endswith("*"):
                self.stems[spelling[:-1]] = key
            else:
                self.exact[spelling] = key
            self.protected.add(spelling.removesuffix("*"))
        return self.keys[spelling]

    def freeze(self, typo_tolerant: Sequence[str]) -> None:
        fuzzy_stems: list[str] = []
        for entry in typo_tolerant:
            stem = entry.removesuffix("*")
            if entry.endswith("*"):
                if stem not in self.stems or len(stem) < FUZZY_MIN_STEM:
                    raise RulesError(f"@typo_tolerant {entry!r} must be a stem used in a rule, 6+ letters")
                fuzzy_stems.append(stem)
            elif entry not in self.exact or len(entry) < FUZZY_MIN_WORD:
                raise RulesError(f"@typo_tolerant {entry!r} must be a word used in a rule, 5+ letters")
            else:
                self.fuzzy_words[entry] = self.exact[entry]
        self._fuzzy_word_index = _FuzzyIndex(self.fuzzy_words)
        self._fuzzy_stem_index = _FuzzyIndex(fuzzy_stems)
        self._stem_lengths = tuple(sorted({len(stem) for stem in self.stems}))
        self._fuzzy_prefix_lengths = tuple(sorted({n for s in fuzzy_stems for n in (len(s) - 1, len(s), len(s) + 1)}))
        self.clear()

    def __missing__(self, token: str) -> tuple[int, ...]:
        if len(self) >= CACHE_LIMIT:
            self.clear()
        found = set()
        if token in self.exact:
            found.add(self.exact[token])
        for length in self._stem_lengths:
            if length > len(token):
                break
            if token[:length] in self.stems:
                found.add(self.stems[token[:length]])
        if token not in self.protected and len(token) >= FUZZY_MIN_WORD - 1 and token.isalpha():
            found.update(self.fuzzy_words[word] for word in self._fuzzy_word_index.near(token))
            for prefix in {token[:n] for n in self._fuzzy_prefix_lengths if n <= len(token)}:
                found.update(self.stems[stem] for stem in self._fuzzy_stem_index.near(prefix))
        keys = tuple(sorted(found))
        self[token] = keys
        return keys
