"""Scope limits: requests the organisation marks out of scope, such as a dose for one person.

The topics and their rules are data (``scope_rules.tsv``, same syntax as ``red_flags.tsv``); the
organisation chooses which topics it refuses. Negation is handled by the rule engine; there is no
general-question exemption, because each rule already asks for a personal element (``should I``,
``my son``, a body weight), which is what makes a request individual advice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from medchat.chat.safety.rules import RULES_DIR, RulesError, RuleSet, check_categories

MESSAGES: dict[str, str] = {
    "individual_dosing": (
        "medchat cannot work out a dose for a particular person. Please ask the prescriber or a "
        "pharmacist, who can check the person's age, weight, other medicines and conditions."
    ),
    "personal_diagnosis": (
        "medchat cannot diagnose you or someone else. Please see a doctor or nurse, who can examine "
        "the person and order tests if needed."
    ),
    "medication_change": (
        "medchat cannot advise starting, stopping or changing a medicine for a particular person. "
        "Please talk to the prescriber or a pharmacist before making any change."
    ),
}


@dataclass(frozen=True)
class ScopeDecision:
    refuse: bool
    topic: str | None = None
    """The out-of-scope topic the request falls under (the first one of ``out_of_scope_topics``)."""
    message: str | None = None
    """What to tell the user instead of answering; ``None`` when ``refuse`` is false."""


IN_SCOPE = ScopeDecision(refuse=False)


@cache
def _rules() -> RuleSet:
    rules = RuleSet.load(RULES_DIR / "language.tsv", RULES_DIR / "scope_rules.tsv")
    missing = [topic for topic in rules.categories if topic not in MESSAGES]
    if missing:
        raise RulesError(f"scope_rules.tsv: topics without a message in scope.py: {missing}")
    return rules


def scope_topics() -> list[str]:
    """Every topic ``assess_scope`` knows."""
    return list(_rules().categories)


def scope_message(topic: str) -> str:
    """The reviewed refusal for ``topic`` (what ``assess_scope`` puts in ``ScopeDecision.message``)."""
    return MESSAGES[topic]


def assess_scope(text: str, *, out_of_scope_topics: Sequence[str]) -> ScopeDecision:
    """Whether ``text`` asks for something in ``out_of_scope_topics``; unknown topic names raise ``RulesError``."""
    if not out_of_scope_topics:
        return IN_SCOPE
    rules = _rules()
    check_categories(rules, out_of_scope_topics, "out_of_scope_topics")
    document = rules.analyse(text)
    if not document.found:
        return IN_SCOPE
    matched = {hit.category for hit in rules.match(document)}
    for topic in out_of_scope_topics:
        if topic in matched:
            return ScopeDecision(refuse=True, topic=topic, message=MESSAGES[topic])
    return IN_SCOPE
