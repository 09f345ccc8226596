"""The chat module's HTML: the home page, the chat page and its HTMX fragments.

Every form has a real ``action`` and works without JavaScript: a plain (or boosted) post is answered
with a 303 to the conversation's page (an answer is written before that redirect). Only an HTMX swap
(``wants_fragment``) gets a fragment: the question's turn, whose answer streams over SSE from
``/chat/messages/{id}/stream`` as HTML pieces (``page_stream.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from litestar import Controller, MediaType, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter, URLEncodedBody
from litestar.plugins.htmx import ClientRedirect, HTMXRequest, HTMXTemplate
from litestar.response import Redirect, ServerSentEvent, Template

from medchat.auth import Principal, require_user
from medchat.chat.answering import AnswerRun, ChatEngine
from medchat.chat.model_access import ModelAccess
from medchat.chat.page_context import budget_of, date_groups, page_context
from medchat.chat.page_stream import ui_events
from medchat.chat.routes import export_download
from medchat.chat.schemas import ConversationDetail, MessageCreate
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


def shown_conversation(request: HTMXRequest) -> str | None:
    """The id of the conversation on the page that sent this HTMX request (``HX-Current-URL``), if any."""
    url = (request.htmx.current_url or "") if request.htmx else ""
    path = url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    head, _, last = path.rpartition("/")
    return last if head.endswith("/chat") and last else None


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
