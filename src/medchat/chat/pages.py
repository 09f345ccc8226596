"""The chat module's HTML: the home page, the chat page and its HTMX fragments, and the UI's answer stream.

Every form has a real ``action`` and works without JavaScript: a plain (or boosted) post is answered
with a 303 to the conversation's page (an answer is written before that redirect). Only an HTMX swap
(``wants_fragment``) gets a fragment: the question's turn, whose answer streams over SSE from
``/chat/messages/{id}/stream`` as HTML pieces: ``sources``, ``answer`` (the answer so far rendered as the stored
one is, throttled: see ``live.py``), and ``done`` or ``failed`` (the finished message, which the page morphs
into the streaming one, and so closes the stream).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter, URLEncodedBody
from litestar.plugins.htmx import ClientRedirect, HTMXRequest, HTMXTemplate
from litestar.response import Redirect, ServerSentEvent, ServerSentEventMessage, Template

from medchat.auth import Principal, require_user
from medchat.chat.answering import AnswerEvent, AnswerRun, ChatEngine, Failed, Finished, SourcesFound, Token
from medchat.chat.limits import ChatLimits, unlimited
from medchat.chat.live import LiveAnswer, with_ticks
from medchat.chat.markdown import render_markdown
from medchat.chat.model_access import ModelAccess
from medchat.chat.routes import SSE_RETRY_MS, export_download
from medchat.chat.schemas import ConversationDetail, ConversationOut, LimitsOut, MessageCreate, conversation_out
from medchat.chat.services import ConversationService
from medchat.platform.web import wants_fragment

SIDEBAR_SIZE = 50
NOTICE_COOKIE = "medchat_notice"
DELETED_NOTICE = '<div hx-swap-oob="innerHTML:#flash"><p class="alert alert-info toast">Conversation deleted.</p></div>'
"""The answer to deleting a conversation from the sidebar (not the one on the page): the item goes, a toast says so."""


@get("/", include_in_schema=False, exclude_from_auth=True)
async def home_page() -> HTMXTemplate:
    return HTMXTemplate(template_name="chat/home.html")


@dataclass
class AskForm:
    content: str = ""
    conversation_id: str = ""
    model: str = ""
    """The composer's model picker (a name of ``llm``'s registry); empty: the default."""


@dataclass
class EditForm:
    content: str = ""


@dataclass
class TitleForm:
    title: str = ""


@dataclass
class SwitchForm:
    message_id: str = ""


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


def shown_conversation(request: HTMXRequest) -> str | None:
    """The id of the conversation on the page that sent this HTMX request (``HX-Current-URL``), if any."""
    url = (request.htmx.current_url or "") if request.htmx else ""
    path = url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    head, _, last = path.rpartition("/")
    return last if head.endswith("/chat") and last else None


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


class ChatPages(Controller):
    path = "/chat"
    include_in_schema = False
    guards = [require_user]  # noqa: RUF012 - Litestar reads these class attributes

    async def _page(
        self,
        caller: Principal,
        engine: ChatEngine,
        conversations: ConversationService,
        *,
        detail: ConversationDetail | None,
        q: str | None,
        deleted: bool = False,
        model_access: ModelAccess | None = None,
    ) -> Template:
        listing = await conversations.list(caller.id, limit=SIDEBAR_SIZE, q=q)
        models = await model_access.choices(caller, detail.messages if detail else ()) if model_access else None
        return HTMXTemplate(
            template_name="chat/page.html",
            context=page_context(
                caller,
                engine,
                conversation=detail,
                thread=detail.messages if detail else [],
                conversations=listing.items,
                q=q or "",
                budget=await budget_of(engine, caller),
                deleted=deleted,
                model_choices=models,
            ),
        )

    @get("/")
    async def new_chat(
        self,
        *,
        caller: NamedDependency[Principal],
        engine: NamedDependency[ChatEngine],
        conversations: NamedDependency[ConversationService],
        request: HTMXRequest,
        model_access: NamedDependency[ModelAccess],
        q: FromQuery[str | None] = None,
    ) -> Template:
        """A new conversation; right after deleting one, it says "Conversation deleted" (once)."""
        deleted = request.cookies.get(NOTICE_COOKIE) == "deleted"
        page = await self._page(
            caller, engine, conversations, detail=None, q=q, deleted=deleted, model_access=model_access
        )
        if deleted:
            page.delete_cookie(NOTICE_COOKIE, path="/chat")
        return page

    @get("/{conversation_id:str}")
    async def show_conversation(
        self,
        *,
        caller: NamedDependency[Principal],
        engine: NamedDependency[ChatEngine],
        conversations: NamedDependency[ConversationService],
        conversation_id: FromPath[str],
        client_ip: NamedDependency[str | None],
        model_access: NamedDependency[ModelAccess],
        q: FromQuery[str | None] = None,
    ) -> Template:
        detail = await conversations.detail(caller.id, conversation_id, ip=client_ip)
        return await self._page(caller, engine, conversations, detail=detail, q=q, model_access=model_access)

    @get("/conversations")
    async def conversation_list(
        self,
        request: HTMXRequest,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        q: Annotated[str | None, QueryParameter(max_length=100)] = None,
        current: FromQuery[str | None] = None,
    ) -> Response[Any]:
        """The sidebar list (HTMX search); otherwise the chat page filtered by ``q``."""
        if not wants_fragment(request):
            return Redirect(path="/chat", query_params={"q": q} if q else None, status_code=303)
        listing = await conversations.list(caller.id, limit=SIDEBAR_SIZE, q=q)
        return HTMXTemplate(
            template_name="chat/_conversation_list.html",
            context={"conversations": listing.items, "q": q or "", "current_id": current, "date_groups": date_groups},
        )

    @post("/messages")
    async def ask(
        self,
        request: HTMXRequest,
        *,
        caller: NamedDependency[Principal],
        engine: NamedDependency[ChatEngine],
        conversations: NamedDependency[ConversationService],
        data: URLEncodedBody[AskForm],
        client_ip: NamedDependency[str | None],
        model_access: NamedDependency[ModelAccess],
    ) -> Response[Any]:
        chosen = await model_access.choose(caller, data.model or None)
        run = await engine.ask(
            caller,
            MessageCreate(content=data.content, conversation_id=data.conversation_id or None),
            ip=client_ip,
            provider=chosen.provider,
        )
        if not wants_fragment(request):
            return await self._after_answer(run)
        meta = run.meta
        created = meta.created_conversation
        listing = await conversations.list(caller.id, limit=SIDEBAR_SIZE) if created else None
        return HTMXTemplate(
            template_name="chat/_turn.html",
            context=page_context(
                caller,
                engine,
                user_message=meta.user_message,
                message=meta.message,
                conversation=meta.conversation,
                created=created,
                conversations=listing.items if listing else [],
                q="",
                budget=run.budgets.out() if run.budgets else None,
            ),
            push_url=f"/chat/{meta.conversation.id}" if created else False,
        )

    @post("/messages/{message_id:str}/regenerate")
    async def regenerate(
        self,
        request: HTMXRequest,
        *,
        caller: NamedDependency[Principal],
        engine: NamedDependency[ChatEngine],
        conversations: NamedDependency[ConversationService],
        message_id: FromPath[str],
        client_ip: NamedDependency[str | None],
        model_access: NamedDependency[ModelAccess],
    ) -> Response[Any]:
        """A new answer to the question of answer ``message_id``, as a sibling branch (by the same model when
        the caller may still use it)."""
        answer = await conversations.get_message(caller.id, message_id)
        question_id = answer.parent_id if answer.role == "assistant" else str(answer.id)
        model = await model_access.for_answer(caller, answer.model_label if answer.role == "assistant" else None)
        run = await engine.ask(
            caller,
            MessageCreate(conversation_id=answer.conversation_id, parent_id=question_id),
            ip=client_ip,
            provider=model.provider,
        )
        if not wants_fragment(request):
            return await self._after_answer(run)
        return HTMXTemplate(
            template_name="chat/_message.html", context=page_context(caller, engine, message=run.meta.message)
        )

    @post("/messages/{message_id:str}/edit")
    async def edit(
        self,
        request: HTMXRequest,
        *,
        caller: NamedDependency[Principal],
        engine: NamedDependency[ChatEngine],
        conversations: NamedDependency[ConversationService],
        message_id: FromPath[str],
        data: URLEncodedBody[EditForm],
        client_ip: NamedDependency[str | None],
    ) -> Response[Any]:
        """The edited question in a sibling branch; answers with the new thread."""
        question = await conversations.get_message(caller.id, message_id)
        run = await engine.ask(
            caller,
            MessageCreate(content=data.content, conversation_id=question.conversation_id, edit_of=message_id),
            ip=client_ip,
        )
        if not wants_fragment(request):
            return await self._after_answer(run)
        detail = await conversations.detail(caller.id, question.conversation_id, ip=client_ip)
        return self._thread(caller, engine, detail)

    @post("/messages/{message_id:str}/stop")
    async def stop(
        self,
        request: HTMXRequest,
        caller: NamedDependency[Principal],
        engine: NamedDependency[ChatEngine],
        message_id: FromPath[str],
    ) -> Response[Any]:
        stopped = await engine.stop(caller.id, message_id)
        if not wants_fragment(request):
            return Redirect(path=f"/chat/{stopped.conversation_id}", status_code=303)
        return HTMXTemplate(template_name="chat/_message.html", context=page_context(caller, engine, message=stopped))

    @get("/messages/{message_id:str}/stream")
    async def stream(
        self,
        request: HTMXRequest,
        *,
        caller: NamedDependency[Principal],
        engine: NamedDependency[ChatEngine],
        conversations: NamedDependency[ConversationService],
        message_id: FromPath[str],
    ) -> ServerSentEvent:
        await conversations.get_answer(caller.id, message_id)  # 404 before the stream starts
        events = engine.follow(caller.id, message_id)
        return ServerSentEvent(ui_events(request, caller, engine, conversations, events))

    @post("/{conversation_id:str}/switch")
    async def switch(
        self,
        request: HTMXRequest,
        *,
        caller: NamedDependency[Principal],
        engine: NamedDependency[ChatEngine],
        conversations: NamedDependency[ConversationService],
        conversation_id: FromPath[str],
        data: URLEncodedBody[SwitchForm],
    ) -> Response[Any]:
        detail = await conversations.switch_branch(caller.id, conversation_id, message_id=data.message_id)
        if not wants_fragment(request):
            return Redirect(path=f"/chat/{conversation_id}", status_code=303)
        return self._thread(caller, engine, detail)

    @post("/{conversation_id:str}/rename")
    async def rename(
        self,
        request: HTMXRequest,
        *,
        caller: NamedDependency[Principal],
        engine: NamedDependency[ChatEngine],
        conversations: NamedDependency[ConversationService],
        conversation_id: FromPath[str],
        data: URLEncodedBody[TitleForm],
        client_ip: NamedDependency[str | None],
    ) -> Response[Any]:
        conversation = await conversations.rename(caller.id, conversation_id, title=data.title, ip=client_ip)
        if not wants_fragment(request):
            return Redirect(path=f"/chat/{conversation_id}", status_code=303)
        return HTMXTemplate(
            template_name="chat/_header.html",
            context=page_context(
                caller, engine, conversation=conversation, renamed=True, current_id=shown_conversation(request)
            ),
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
        await conversations.delete(caller.id, conversation_id, ip=client_ip)
        if wants_fragment(request):
            if shown_conversation(request) not in (None, conversation_id):  # from the sidebar, another page shown
                return Response(content=DELETED_NOTICE, media_type=MediaType.HTML)
            gone: Response[Any] = ClientRedirect(redirect_to="/chat")  # the page it was on is gone: load a new chat
        else:
            gone = Redirect(path="/chat", status_code=303)
        # The new chat page says "Conversation deleted" once (a short-lived cookie: it works without JavaScript).
        gone.set_cookie(NOTICE_COOKIE, "deleted", max_age=60, path="/chat", httponly=True, samesite="strict")
        return gone

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
    def _thread(self, caller: Principal, engine: ChatEngine, detail: ConversationDetail) -> Template:
        return HTMXTemplate(
            template_name="chat/_thread.html",
            context=page_context(caller, engine, conversation=detail, thread=detail.messages),
        )

    async def _after_answer(self, run: AnswerRun) -> Response[Any]:
        """Without JavaScript (or boosted): wait for the answer (stored either way), then show the conversation."""
        await run.wait()
        return Redirect(path=f"/chat/{run.meta.conversation.id}", status_code=303)


page_handlers = [home_page, ChatPages]
