"""The UI's answer stream (``/chat/messages/{id}/stream``): HTML pieces over SSE.

``sources``, ``answer`` (the answer so far rendered as the stored one is, throttled: see ``live.py``), and
``done`` or ``failed`` (the finished message, which the page morphs into the streaming one, and so closes
the stream).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from litestar import Request
from litestar.response import ServerSentEventMessage

from medchat.auth import Principal
from medchat.chat.answering import AnswerEvent, ChatEngine, Failed, Finished, SourcesFound, Token
from medchat.chat.live import LiveAnswer, with_ticks
from medchat.chat.page_context import budget_of, page_context
from medchat.chat.routes import SSE_RETRY_MS
from medchat.chat.schemas import ConversationOut, LimitsOut, conversation_out
from medchat.chat.services import ConversationService


def render(request: Request[Any, Any, Any], template: str, **context: Any) -> str:
    """A template rendered outside a response (SSE pieces), with the request for ``csrf_token()``."""
    return request.app.template_engine.get_template(template).render(request=request, **context)


async def ui_events(
    request: Request[Any, Any, Any],
    caller: Principal,
    engine: ChatEngine,
    conversations: ConversationService,
    events: AsyncIterator[AnswerEvent],
) -> AsyncIterator[ServerSentEventMessage]:
    yield ServerSentEventMessage(retry=SSE_RETRY_MS, data=None, comment="medchat answer stream")
    live = LiveAnswer()
    async with aclosing(with_ticks(events)) as paced:  # closed (and its read cancelled) if the page leaves
        async for event in paced:
            if event is None or isinstance(event, Token):
                html = live.add(event.text) if event is not None else live.flush()
                if html is not None:
                    yield ServerSentEventMessage(event="answer", data=html)
            elif isinstance(event, SourcesFound):
                live.cite(event.message_id, len(event.sources))
                if event.sources:
                    html = render(request, "chat/_sources.html", sources=event.sources, message_id=event.message_id)
                    yield ServerSentEventMessage(event="sources", data=html)
            elif isinstance(event, Finished | Failed):
                if (html := live.flush()) is not None:
                    yield ServerSentEventMessage(event="answer", data=html)
                conversation = await _conversation_or_none(conversations, caller.id, event.message.conversation_id)
                budget = await _budget_or_none(engine, caller)
                html = render(
                    request,
                    "chat/_finished.html",
                    **page_context(caller, engine, message=event.message, conversation=conversation, budget=budget),
                )
                # Not "error": EventSource also fires onerror for an event of that name, and would reconnect.
                yield ServerSentEventMessage(event="done" if isinstance(event, Finished) else "failed", data=html)


async def _budget_or_none(engine: ChatEngine, caller: Principal) -> LimitsOut | None:
    try:
        return await budget_of(engine, caller)
    except Exception:  # noqa: BLE001 - Redis gone: the budget line is simply not refreshed
        return None


async def _conversation_or_none(
    conversations: ConversationService, owner_id: str, conversation_id: str
) -> ConversationOut | None:
    try:
        return conversation_out(await conversations.get(owner_id, conversation_id))
    except Exception:  # noqa: BLE001 - deleted meanwhile: the sidebar simply is not refreshed
        return None
