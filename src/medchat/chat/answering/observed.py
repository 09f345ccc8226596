"""What the answer pipeline tells operators: the triage span and outcome, stored answers, streams in flight.

Labels and span attributes are small fixed sets (a triage category, an answer's status); never the text.
"""

from __future__ import annotations

from typing import Literal

from medchat.chat.answering.ports import SafetyChecks
from medchat.chat.models import Safety
from medchat.platform.metrics import ANSWERS, TRIAGE_OUTCOMES
from medchat.platform.spans import TRACER

TriageCategory = Literal["crisis", "emergency", "out_of_scope", "none"]
Grounding = Literal["grounded", "ungrounded", "none"]

CRISIS_CATEGORIES = frozenset({"self_harm"})
"""Red-flag categories (``red_flags.tsv``) counted as ``crisis`` rather than ``emergency``."""


def triage(safety: SafetyChecks, text: str) -> Safety:
    """``safety.assess(text)`` in a ``chat.triage`` span, counted by its category."""
    with TRACER.start_as_current_span("chat.triage") as span:
        assessment = safety.assess(text)
        category = triage_category(assessment)
        span.set_attribute("medchat.triage.category", category)
    TRIAGE_OUTCOMES.labels(category=category).inc()
    return assessment


def triage_category(assessment: Safety) -> TriageCategory:
    """One category per question: a crisis or emergency outranks a scope refusal (its notice is shown anyway)."""
    if not CRISIS_CATEGORIES.isdisjoint(assessment.categories):
        return "crisis"
    if assessment.emergency:
        return "emergency"
    if assessment.scope_refusal:
        return "out_of_scope"
    return "none"


def count_answer(status: Literal["complete", "failed"], grounding: Grounding) -> None:
    """One stored answer: ``grounding`` is ``none`` for failed answers and fixed refusals (no model text)."""
    ANSWERS.labels(status=status, grounding=grounding).inc()
