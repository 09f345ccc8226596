"""The chat module's HTML: the home page, the chat page and its HTMX fragments, and the UI's answer stream.

Every form has a real ``action`` and works without JavaScript (the answer is then written before the
redirect); with HTMX the question's turn comes back as a fragment whose answer streams over SSE from
``/chat/messages/{id}/stream`` as HTML pieces: ``sources``, ``token`` (escaped text), and ``done`` or
``failed`` (the finished message, which replaces the streaming one and so closes the stream).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter, URLEncodedBody
from litestar.plugins.htmx import ClientRedirect, HTMXRequest, HTMXTemplate
from litestar.response import Redirect, ServerSentEvent, ServerSentEventMessage, Template
from markupsafe import escape

from medchat.auth import Principal, require_user
from medchat.chat.limits import ChatLimits, unlimited
from medchat.chat.markdown import render_markdown
from medchat.chat.pipeline import AnswerEvent, AnswerRun, ChatEngine, Failed, Finished, SourcesFound, Token
from medchat.chat.routes import SSE_RETRY_MS, audit_conversation, chat_dependencies, export_download
from medchat.chat.schemas import (
    ConversationDetail,
    ConversationOut,
    LimitsOut,
    MessageCreate,
    conversation_out,
    message_out,
)
from medchat.chat.services import ConversationService

SIDEBAR_SIZE = 50
VARY = {"Vary": "HX-Request"}


@get("/", include_in_schema=False, exclude_from_auth=True)
async def home_page() -> HTMXTemplate:
    return HTMXTemplate(template_name="chat/home.html")


@dataclass
class AskForm:
    content: str = ""
    conversation_id: str = ""


@dataclass
class EditForm:
    content: str = ""


@dataclass
class TitleForm:
    title: str = ""


@dataclass
class SwitchForm:
    message_id: str = ""


def page_context(request: Request[Any, Any, Any], caller: Principal, **values: Any) -> dict[str, Any]:
    engine: NamedDependency[ChatEngine] = request.app.state.runtime.chat_engine
    return {
        "current_user": caller,
        "md": render_markdown,
        "model_label": engine.provider.label,
        "max_chars": engine.settings.chat_max_message_chars,
        "emergency_number": engine.settings.emergency_number,
        **values,
    }


async def budget_of(engine: ChatEngine, caller: Principal) -> LimitsOut:
    """The caller's budgets for the page's ``_budget.html``."""
    limits: ChatLimits | None = engine.limits
    return (await limits.status(caller.id, is_admin=caller.is_admin)).out() if limits else unlimited()


def render(request: Request[Any, Any, Any], template: str, **context: Any) -> str:
    """A template rendered outside a response (SSE pieces), with the request for ``csrf_token()``."""
    return request.app.template_engine.get_template(template).render(request=request, **context)


async def ui_events(
    request: Request[Any, Any, Any], caller: Principal, engine: ChatEngine, events: AsyncIterator[AnswerEvent]
) -> AsyncIterator[ServerSentEventMessage]:
    yield ServerSentEventMessage(retry=SSE_RETRY_MS, data=None, comment="medchat answer stream")
    async for event in events:
        if isinstance(event, SourcesFound):
            if event.sources:
                html = render(request, "chat/_sources.html", sources=event.sources, message_id=event.message_id)
                yield ServerSentEventMessage(event="sources", data=html)
        elif isinstance(event, Token):
            yield ServerSentEventMessage(event="token", data=str(escape(event.text)))
        elif isinstance(event, Finished | Failed):
            conversation = await _conversation_or_none(engine.conversations, caller.id, event.message.conversation_id)
            budget = await _budget_or_none(engine, caller)
            html = render(
                request,
                "chat/_finished.html",
                **page_context(request, caller, message=event.message, conversation=conversation, budget=budget),
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


class ChatPages(Controller):
    path = "/chat"
    include_in_schema = False
    guards = [require_user]  # noqa: RUF012 - Litestar reads these class attributes
    dependencies = chat_dependencies

    async def _page(
        self,
        request: HTMXRequest,
        caller: Principal,
        conversations: ConversationService,
        *,
        detail: ConversationDetail | None,
        q: str | None,
    ) -> Template:
        listing = await conversations.list(caller.id, limit=SIDEBAR_SIZE, q=q)
        engine: ChatEngine = request.app.state.runtime.chat_engine
        return HTMXTemplate(
            template_name="chat/page.html",
            context=page_context(
                request,
                caller,
                conversation=detail,
                thread=detail.messages if detail else [],
                conversations=listing.items,
                q=q or "",
                budget=await budget_of(engine, caller),
            ),
            headers=VARY,
        )

    @get("/")
    async def new_chat(
        self,
        request: HTMXRequest,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        q: FromQuery[str | None] = None,
    ) -> Template:
        return await self._page(request, caller, conversations, detail=None, q=q)

    @get("/{conversation_id:str}")
    async def show_conversation(
        self,
        request: HTMXRequest,
        *,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        conversation_id: FromPath[str],
        client_ip: NamedDependency[str | None],
        q: FromQuery[str | None] = None,
    ) -> Template:
        detail = await conversations.detail(caller.id, conversation_id)
        await audit_conversation("read", caller, detail.id, client_ip)
        return await self._page(request, caller, conversations, detail=detail, q=q)

    @get("/conversations")
    async def conversation_list(
        self,
        request: HTMXRequest,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        q: Annotated[str | None, QueryParameter(max_length=100)] = None,
        current: FromQuery[str | None] = None,
    ) -> Response[Any]:
        """The sidebar list (HTMX search); without HTMX, the chat page filtered by ``q``."""
        if not request.htmx:
            return Redirect(path="/chat", query_params={"q": q} if q else None)
        listing = await conversations.list(caller.id, limit=SIDEBAR_SIZE, q=q)
        return HTMXTemplate(
            template_name="chat/_conversation_list.html",
            context={"conversations": listing.items, "q": q or "", "current_id": current},
            headers=VARY,
        )

    @post("/messages")
    async def ask(
        self,
        request: HTMXRequest,
        caller: NamedDependency[Principal],
        engine: NamedDependency[ChatEngine],
        data: URLEncodedBody[AskForm],
        client_ip: NamedDependency[str | None],
    ) -> Response[Any]:
        run = await engine.ask(
            caller, MessageCreate(content=data.content, conversation_id=data.conversation_id or None), ip=client_ip
        )
        if not request.htmx:
            return await self._after_answer(run)
        turn = run.turn
        conversation_id = str(turn.conversation.id)
        push = f"/chat/{conversation_id}" if turn.created_conversation else False
        meta = run.events[0]
        listing = await engine.conversations.list(caller.id, limit=SIDEBAR_SIZE) if turn.created_conversation else None
        return HTMXTemplate(
            template_name="chat/_turn.html",
            context=page_context(
                request,
                caller,
                user_message=meta.user_message,  # type: ignore[union-attr]
                message=meta.message,  # type: ignore[union-attr]
                conversation=conversation_out(turn.conversation),
                created=turn.created_conversation,
                conversations=listing.items if listing else [],
                q="",
                budget=turn.budgets.out() if turn.budgets else None,
            ),
            push_url=push,
            headers=VARY,
        )

    @post("/messages/{message_id:str}/regenerate")
    async def regenerate(
        self,
        request: HTMXRequest,
        caller: NamedDependency[Principal],
        engine: NamedDependency[ChatEngine],
        message_id: FromPath[str],
        client_ip: NamedDependency[str | None],
    ) -> Response[Any]:
        """A new answer to the question of answer ``message_id``, as a sibling branch."""
        answer = await engine.conversations.get_message(caller.id, message_id)
        question_id = answer.parent_id if answer.role == "assistant" else str(answer.id)
        run = await engine.ask(
            caller, MessageCreate(conversation_id=answer.conversation_id, parent_id=question_id), ip=client_ip
        )
        if not request.htmx:
            return await self._after_answer(run)
        return HTMXTemplate(
            template_name="chat/_message.html",
            context=page_context(request, caller, message=run.events[0].message),  # type: ignore[union-attr]
            headers=VARY,
        )

    @post("/messages/{message_id:str}/edit")
    async def edit(
        self,
        request: HTMXRequest,
        *,
        caller: NamedDependency[Principal],
        engine: NamedDependency[ChatEngine],
        message_id: FromPath[str],
        data: URLEncodedBody[EditForm],
        client_ip: NamedDependency[str | None],
    ) -> Response[Any]:
        """The edited question in a sibling branch; answers with the new thread."""
        question = await engine.conversations.get_message(caller.id, message_id)
        run = await engine.ask(
            caller,
            MessageCreate(content=data.content, conversation_id=question.conversation_id, edit_of=message_id),
            ip=client_ip,
        )
        if not request.htmx:
            return await self._after_answer(run)
        return await self._thread(request, caller, engine.conversations, question.conversation_id)

    @post("/messages/{message_id:str}/stop")
    async def stop(
        self,
        request: HTMXRequest,
        caller: NamedDependency[Principal],
        engine: NamedDependency[ChatEngine],
        message_id: FromPath[str],
    ) -> Response[Any]:
        stopped = await engine.stop(caller.id, message_id)
        if not request.htmx:
            return Redirect(path=f"/chat/{stopped.conversation_id}")
        detail = await engine.conversations.detail(caller.id, stopped.conversation_id)
        message = next((m for m in detail.messages if m.id == message_id), None)
        return HTMXTemplate(
            template_name="chat/_message.html",
            context=page_context(request, caller, message=message or message_out(stopped)),
            headers=VARY,
        )

    @get("/messages/{message_id:str}/stream")
    async def stream(
        self,
        request: HTMXRequest,
        caller: NamedDependency[Principal],
        engine: NamedDependency[ChatEngine],
        message_id: FromPath[str],
    ) -> ServerSentEvent:
        await engine.conversations.get_message(caller.id, message_id)
        return ServerSentEvent(ui_events(request, caller, engine, engine.follow(caller.id, message_id)))

    @post("/{conversation_id:str}/switch")
    async def switch(
        self,
        request: HTMXRequest,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        conversation_id: FromPath[str],
        data: URLEncodedBody[SwitchForm],
    ) -> Response[Any]:
        await conversations.switch_branch(caller.id, conversation_id, message_id=data.message_id)
        if not request.htmx:
            return Redirect(path=f"/chat/{conversation_id}")
        return await self._thread(request, caller, conversations, conversation_id)

    @post("/{conversation_id:str}/rename")
    async def rename(
        self,
        request: HTMXRequest,
        *,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        conversation_id: FromPath[str],
        data: URLEncodedBody[TitleForm],
        client_ip: NamedDependency[str | None],
    ) -> Response[Any]:
        conversation = await conversations.rename(caller.id, conversation_id, title=data.title)
        await audit_conversation("update", caller, conversation_id, client_ip, field="title")
        if not request.htmx:
            return Redirect(path=f"/chat/{conversation_id}")
        return HTMXTemplate(
            template_name="chat/_header.html",
            context=page_context(request, caller, conversation=conversation_out(conversation), renamed=True),
            headers=VARY,
        )

    @post("/{conversation_id:str}/delete")
    async def delete(
        self,
        request: HTMXRequest,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        conversation_id: FromPath[str],
        client_ip: NamedDependency[str | None],
    ) -> Response[Any]:
        await conversations.delete(caller.id, conversation_id)
        await audit_conversation("delete", caller, conversation_id, client_ip)
        if request.htmx:
            return ClientRedirect(redirect_to="/chat")
        return Redirect(path="/chat")

    @get("/{conversation_id:str}/export")
    async def export(
        self,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        conversation_id: FromPath[str],
        client_ip: NamedDependency[str | None],
        format: FromQuery[Literal["md", "json"]] = "md",
    ) -> Response[str]:
        return await export_download(conversations, caller, conversation_id, client_ip, format=format)

    # --- helpers -------------------------------------------------------------------------------
    async def _thread(
        self, request: HTMXRequest, caller: Principal, conversations: ConversationService, conversation_id: str
    ) -> Template:
        detail = await conversations.detail(caller.id, conversation_id)
        return HTMXTemplate(
            template_name="chat/_thread.html",
            context=page_context(request, caller, conversation=detail, thread=detail.messages),
            headers=VARY,
        )

    async def _after_answer(self, run: AnswerRun) -> Response[Any]:
        """Without JavaScript: wait for the answer (stored either way), then show the conversation."""
        await run.wait()
        return Redirect(path=f"/chat/{run.turn.conversation.id}", status_code=303)


page_handlers = [home_page, ChatPages]
