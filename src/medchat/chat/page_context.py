"""What every chat template is rendered with: the signed-in user, the Markdown renderer, the model's label,
the limits the composer shows, the sidebar's date groups, and the caller's budgets."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from medchat.auth import Principal
from medchat.chat.answering import ChatEngine
from medchat.chat.limits import ChatLimits, unlimited
from medchat.chat.markdown import render_markdown
from medchat.chat.schemas import ConversationOut, LimitsOut


def date_groups(items: Sequence[ConversationOut], now: datetime | None = None) -> list[tuple[str, list[Any]]]:
    """The sidebar's conversations (newest activity first) under "Today", "Previous 7 days" and "Older" (UTC days),
    by their last activity (``updated_at``, the list's order); empty groups left out."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    groups: dict[str, list[Any]] = {"Today": [], "Previous 7 days": [], "Older": []}
    for item in items:
        when = item.updated_at if item.updated_at.tzinfo else item.updated_at.replace(tzinfo=UTC)
        day = when.astimezone(UTC).date()
        label = "Today" if day >= today else "Previous 7 days" if day >= today - timedelta(days=7) else "Older"
        groups[label].append(item)
    return [(label, members) for label, members in groups.items() if members]


def page_context(caller: Principal, engine: ChatEngine, **values: Any) -> dict[str, Any]:
    """What every chat template may use, and ``values``."""
    return {
        "current_user": caller,
        "md": render_markdown,
        "date_groups": date_groups,
        "model_label": engine.provider.label,
        "max_chars": engine.settings.chat_max_message_chars,
        "emergency_number": engine.settings.emergency_number,
        **values,
    }


async def budget_of(engine: ChatEngine, caller: Principal) -> LimitsOut:
    """The caller's budgets for the page's ``_budget.html``."""
    limits: ChatLimits | None = engine.limits
    return (await limits.status(caller.id, is_admin=caller.is_admin)).out() if limits else unlimited()
