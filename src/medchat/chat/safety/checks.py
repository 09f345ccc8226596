"""The safety checks the answer pipeline runs, built on this package's deterministic rules.

``RuleBasedSafety`` satisfies the pipeline's ``SafetyChecks`` port: triage and scope before answering,
citation checks after, and a PHI redactor for what the model is sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from medchat.chat.models import Safety
from medchat.chat.safety.citations import check_citations
from medchat.chat.safety.phi import PhiRedactor
from medchat.chat.safety.scope import assess_scope, scope_topics
from medchat.chat.safety.scope import scope_message as reviewed_scope_message
from medchat.chat.safety.triage import assess_emergency
from medchat.settings import Settings, SettingsError


class RuleBasedSafety:
    """The safety package's deterministic checks, configured from the settings."""

    def __init__(
        self,
        *,
        emergency_number: str = "112",
        out_of_scope_topics: Sequence[str] = (),
        out_of_scope_message: str = "",
    ) -> None:
        self.emergency_number = emergency_number
        self.out_of_scope_topics = tuple(out_of_scope_topics)
        self.out_of_scope_message = out_of_scope_message.strip()

    @classmethod
    def from_settings(cls, settings: Settings) -> RuleBasedSafety:
        return cls(
            emergency_number=settings.emergency_number,
            out_of_scope_topics=settings.out_of_scope_topics,
            out_of_scope_message=settings.out_of_scope_message,
        )

    def check_topics(self) -> None:
        """Raise ``SettingsError`` naming any configured out-of-scope topic the rules do not know."""
        unknown = [topic for topic in self.out_of_scope_topics if topic not in scope_topics()]
        if unknown:
            raise SettingsError(
                f"MEDCHAT_OUT_OF_SCOPE_TOPICS: unknown topic(s) {', '.join(unknown)}; "
                f"known: {', '.join(scope_topics())}"
            )

    def assess(self, text: str) -> Safety:
        """Emergency triage first (always), then scope: an emergency still gets its notice when refused."""
        assessment = assess_emergency(text, emergency_number=self.emergency_number)
        scope = assess_scope(text, out_of_scope_topics=self.out_of_scope_topics)
        return Safety(
            emergency=assessment.emergency,
            categories=list(assessment.categories),
            notice=assessment.notice,
            scope_refusal=scope.topic if scope.refuse else None,
        )

    def scope_message(self, topic: str) -> str:
        return self.out_of_scope_message or reviewed_scope_message(topic)

    def check_answer(self, text: str, *, passage_count: int) -> str:
        return check_citations(text, passage_count).text

    def redaction(self) -> PhiRedactor:
        return PhiRedactor()
