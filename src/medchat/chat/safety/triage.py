"""Emergency triage: a deterministic check of a user's message for red flags, before anything else runs.

The rules are data (``red_flags.tsv``, whose header explains the syntax and how a message is read);
this module decides which occurrences describe a live situation:

* **Negation** is handled by the rule engine (``no chest pain``, ``not suicidal``).
* **General information vs a live situation.** A message with no personal anchor anywhere (``I``,
  ``my``, ``he``, ``she``, ``we``...) is general information when the sentence starts with a question
  word (``what are the symptoms of a stroke?``, ``is face drooping a sign of...``) or holds a general
  frame (``symptoms of``, ``people with``). Any anchor makes the whole message live, even a
  hypothetical one (``what do I do if my baby is choking``): a notice too many costs little, a missed
  emergency costs a life. For the ``@strict_categories`` (self-harm, breathing) only a general frame
  makes a sentence informational, so ``is it normal to want to die`` still triggers.
* **Past events** (``years ago``, ``as a child``) in the same clause do not count, except for the
  strict categories.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from medchat.chat.safety.notices import FIRST_STEPS, build_notice
from medchat.chat.safety.rules import RULES_DIR, Document, RulesError, RuleSet, Span, check_categories


@dataclass(frozen=True)
class EmergencyAssessment:
    emergency: bool
    categories: list[str] = field(default_factory=list)
    """Stable machine names (``cardiac``, ``self_harm``...) in the order of ``red_flags.tsv``."""
    notice: str | None = None
    """What to do now, for the user; ``None`` when ``emergency`` is false."""


@dataclass(frozen=True)
class _Triage:
    rules: RuleSet
    strict: frozenset[str]
    questions: frozenset[str]
    fillers: frozenset[str]
    anchors: frozenset[str]


@cache
def _triage() -> _Triage:
    rules = RuleSet.load(RULES_DIR / "language.tsv", RULES_DIR / "red_flags.tsv")
    strict = rules.words("@strict_categories")
    check_categories(rules, strict, "red_flags.tsv @strict_categories")
    missing = [category for category in rules.categories if category not in FIRST_STEPS]
    if missing:
        raise RulesError(f"red_flags.tsv: categories without first steps in notices.py: {missing}")
    fillers = frozenset([*rules.words("@filler_words"), ",", ":"])
    return _Triage(
        rules,
        strict=frozenset(strict),
        questions=frozenset(rules.words("@question_words")),
        fillers=fillers,
        anchors=frozenset(rules.words("@anchor_words")),
    )


def load_rules() -> None:
    """Compile the rules now (at start-up) rather than on the first message; raises ``RulesError``."""
    _triage()


def categories() -> list[str]:
    """Every category the rules can report."""
    return list(_triage().rules.categories)


def assess_emergency(text: str, *, emergency_number: str = "112") -> EmergencyAssessment:
    """Whether ``text`` describes a possible emergency now, which kinds, and the notice to show."""
    triage = _triage()
    document = triage.rules.analyse(text)
    hits = triage.rules.match(document, keep=_Liveness(triage, document)) if document.found else []
    if not hits:
        return EmergencyAssessment(emergency=False)
    found = [hit.category for hit in hits]
    return EmergencyAssessment(True, found, build_notice(found, emergency_number=emergency_number))


class _Liveness:
    """Decides, per occurrence, whether it describes a live situation (see the module docstring)."""

    def __init__(self, triage: _Triage, document: Document) -> None:
        self.strict = triage.strict
        self.document = document
        self.anchored = not triage.anchors.isdisjoint(document.tokens)
        self.historic = {document.clause(span.start) for span in document.spans("@historic")}
        self.general: set[int] = set()
        self.questions: set[int] = set()
        if not self.anchored:
            inside = triage.rules.rule_spans(document)
            self.general = {
                frame.sentence
                for frame in document.spans("@general")
                # a frame inside a longer rule phrase is part of a symptom: "no signs of life"
                if not any(s <= frame.start and frame.end <= e and e - s > frame.end - frame.start for s, e in inside)
            }
            for number, sentence in enumerate(document.sentences):
                first = next((document.tokens[i] for i in sentence if document.tokens[i] not in triage.fillers), "")
                if first in triage.questions:
                    self.questions.add(number)

    def __call__(self, category: str, span: Span) -> bool:
        strict = category in self.strict
        if not strict and self.historic and self.document.clause(span.start) in self.historic:
            return False
        if self.anchored:
            return True
        return span.sentence not in self.general and (strict or span.sentence not in self.questions)
