"""Rules kept as data: a compiler for the ``category<TAB>pattern`` files, and the matcher they run on.

``model`` holds what a match is made of (``Document``, ``Span``, ``Rule``, ``Hit``), ``compiler`` reads
the rule files into a phrase trie, ``matcher`` finds the rules a text meets (``RuleSet``).

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

from medchat.chat.safety.lexicon import RulesError, normalise, tokenize
from medchat.chat.safety.rules.compiler import RULES_DIR, check_categories
from medchat.chat.safety.rules.matcher import NEGATION_WINDOW, RuleSet
from medchat.chat.safety.rules.model import Document, Hit, Rule, Span

__all__ = [
    "NEGATION_WINDOW",
    "RULES_DIR",
    "Document",
    "Hit",
    "Rule",
    "RuleSet",
    "RulesError",
    "Span",
    "check_categories",
    "normalise",
    "tokenize",
]
