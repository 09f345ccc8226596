"""Medical safety checks for the chat pipeline: pure functions, no I/O beyond reading their rule files.

* ``assess_emergency`` - deterministic red-flag triage of a user's message (rules in ``red_flags.tsv``).
* ``check_citations`` - drops ``[n]`` citations that point at no passage; ``parse_citations`` is the
  one reading of citations (``cites_passages`` says whether an answer is grounded).
* ``redact_phi`` / ``structlog_scrubber`` - identifiers out of logs; ``PhiRedactor`` - reversibly out
  of LLM calls (``redact`` the history and question, ``restore`` or ``restore_stream`` the answer).
* ``assess_scope`` - requests the organisation marks out of scope (rules in ``scope_rules.tsv``).
* ``RuleBasedSafety`` - all of the above as the answer pipeline's checks, configured from the settings.

The rule language (``rules``: ``RuleSet``, ``tokenize``...) is what triage and scope are written in.
Rule files are compiled on first use (about 50 ms); call ``load_rules()`` at start-up to pay that,
and to fail then, with ``RulesError``, if a reviewed file no longer parses.
"""

from medchat.chat.safety.checks import RuleBasedSafety
from medchat.chat.safety.citations import CitationCheck, CitationGroup, check_citations, cites_passages, parse_citations
from medchat.chat.safety.phi import KINDS as PHI_KINDS
from medchat.chat.safety.phi import PhiRedactor, StreamRestorer, redact_phi, structlog_scrubber
from medchat.chat.safety.rules import RulesError, RuleSet, check_categories, normalise, tokenize
from medchat.chat.safety.scope import ScopeDecision, assess_scope, scope_message, scope_topics
from medchat.chat.safety.triage import EmergencyAssessment, assess_emergency
from medchat.chat.safety.triage import categories as emergency_categories


def load_rules() -> None:
    """Compile every rule file now; raises ``RulesError`` when one does not parse."""
    emergency_categories()
    scope_topics()


__all__ = [
    "PHI_KINDS",
    "CitationCheck",
    "CitationGroup",
    "EmergencyAssessment",
    "PhiRedactor",
    "RuleBasedSafety",
    "RuleSet",
    "RulesError",
    "ScopeDecision",
    "StreamRestorer",
    "assess_emergency",
    "assess_scope",
    "check_categories",
    "check_citations",
    "cites_passages",
    "emergency_categories",
    "load_rules",
    "normalise",
    "parse_citations",
    "redact_phi",
    "scope_message",
    "scope_topics",
    "structlog_scrubber",
    "tokenize",
]
