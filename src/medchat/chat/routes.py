"""The chat JSON API under ``/api/v1/chat`` (API.md), with Server-Sent Events for streamed answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from medchat.auth import Principal, require_user
from medchat.chat.limits import ChatLimits, unlimited
from medchat.chat.pipeline import (
    AnswerEvent,
    AnswerFailed,
    ChatEngine,
    Failed,
    Finished,
    Meta,
    SourcesFound,
    Token,
)
from medchat.chat.schemas import (
    BranchSwitch,
    ConversationCreate,
    ConversationDetail,
    ConversationOut,
    ConversationPage,
    ConversationUpdate,
    GraphOut,
    LimitsOut,
    MessageCreate,
    MessageOut,
    TurnOut,
    conversation_out,
    message_out,
)
from medchat.chat.services import ConversationService
from medchat.platform import audit

EVENT_STREAM = "text/event-stream"
SSE_RETRY_MS = 3000


def provide_engine(request: Request[Any, Any, Any]) -> ChatEngine:
    return request.app.state.runtime.chat_engine


def provide_conversations(engine: NamedDependency[ChatEngine]) -> ConversationService:
    return engine.conversations


def provide_limits(engine: NamedDependency[ChatEngine]) -> ChatLimits | None:
    return engine.limits


def provide_caller(request: Request[Any, Any, Any]) -> Principal:
    """``request.user`` after ``require_user`` has let the request in."""
    return request.user


chat_dependencies = {
    "engine": Provide(provide_engine, sync_to_thread=False),
    "conversations": Provide(provide_conversations, sync_to_thread=False),
    "limits": Provide(provide_limits, sync_to_thread=False),
    "caller": Provide(provide_caller, sync_to_thread=False),
}


async def audit_conversation(
    action: str, caller: Principal, conversation_id: str, ip: str | None, *, content: str | None = None, **details: Any
) -> None:
    """One audit event on a conversation (ids and formats only; ``content`` is stored as its hash)."""
    await audit.record(
        action,
        actor_id=caller.id,
        resource_type="conversation",
        resource_id=conversation_id,
        ip=ip,
        content=content,
        **details,
    )


async def export_download(
    conversations: ConversationService, caller: Principal, conversation_id: str, ip: str | None, *, format: str
) -> Response[str]:
    """The conversation as a file to save (``md`` or ``json``), recorded in the audit log as an export."""
    exported = await conversations.export(caller.id, conversation_id, format=format)
    await audit_conversation("export", caller, conversation_id, ip, content=exported.body, format=format)
    return Response(
        exported.body,
        media_type=exported.media_type,
        headers={"Content-Disposition": f'attachment; filename="{exported.filename}"'},
    )


def wants_event_stream(request: Request[Any, Any, Any]) -> bool:
    return EVENT_STREAM in request.headers.get("accept", "")


def encode(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def api_event(event: AnswerEvent) -> ServerSentEventMessage:
    """One pipeline event as the API's SSE message (``meta``, ``sources``, ``token``, ``done``, ``error``)."""
    if isinstance(event, Meta):
        data = {
            "conversation_id": event.conversation.id,
            "conversation": event.conversation,
            "user_message": event.user_message,
            "message": event.message,
        }
        return ServerSentEventMessage(event="meta", data=encode(data))
    if isinstance(event, SourcesFound):
        return ServerSentEventMessage(event="sources", data=encode({"sources": event.sources}))
    if isinstance(event, Token):
        return ServerSentEventMessage(event="token", data=encode({"text": event.text}))
    if isinstance(event, Finished):
        return ServerSentEventMessage(event="done", data=encode({"message": event.message}))
    return ServerSentEventMessage(event="error", data=encode(event.problem))


async def api_events(events: AsyncIterator[AnswerEvent]) -> AsyncIterator[ServerSentEventMessage]:
    yield ServerSentEventMessage(retry=SSE_RETRY_MS, data=None, comment="medchat answer stream")
    async for event in events:
        yield api_event(event)


class ChatController(Controller):
    path = "/api/v1/chat"
    tags = ["chat"]  # noqa: RUF012 - Litestar reads this class attribute
    guards = [require_user]  # noqa: RUF012
    dependencies = chat_dependencies

    @post("/conversations", status_code=201)
    async def create_conversation(
        self,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        data: JSONBody[ConversationCreate],
        client_ip: NamedDependency[str | None],
    ) -> ConversationOut:
        conversation = await conversations.create(caller.id, title=data.title)
        await audit_conversation("create", caller, str(conversation.id), client_ip)
        return conversation_out(conversation)

    @get("/conversations")
    async def list_conversations(
        self,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        cursor: FromQuery[str | None] = None,
        q: Annotated[str | None, QueryParameter(max_length=100)] = None,
    ) -> ConversationPage:
        """The caller's conversations, most recently active first; ``q`` searches titles."""
        return await conversations.list(caller.id, limit=limit, cursor=cursor, q=q)

    @get("/conversations/{conversation_id:str}")
    async def get_conversation(
        self,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        conversation_id: FromPath[str],
        client_ip: NamedDependency[str | None],
    ) -> ConversationDetail:
        """The conversation with its thread: the messages from the first to the active branch's last."""
        detail = await conversations.detail(caller.id, conversation_id)
        await audit_conversation("read", caller, detail.id, client_ip)
        return detail

    @patch("/conversations/{conversation_id:str}")
    async def rename_conversation(
        self,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        conversation_id: FromPath[str],
        data: JSONBody[ConversationUpdate],
        client_ip: NamedDependency[str | None],
    ) -> ConversationOut:
        conversation = await conversations.rename(caller.id, conversation_id, title=data.title)
        await audit_conversation("update", caller, conversation_id, client_ip, field="title")
        return conversation_out(conversation)

    @delete("/conversations/{conversation_id:str}", status_code=204)
    async def delete_conversation(
        self,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        conversation_id: FromPath[str],
        client_ip: NamedDependency[str | None],
    ) -> None:
        await conversations.delete(caller.id, conversation_id)
        await audit_conversation("delete", caller, conversation_id, client_ip)

    @post("/conversations/{conversation_id:str}/switch", status_code=200)
    async def switch_branch(
        self,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        conversation_id: FromPath[str],
        data: JSONBody[BranchSwitch],
    ) -> ConversationDetail:
        """Show the branch through ``message_id`` (a sibling from a message's ``siblings``)."""
        return await conversations.switch_branch(caller.id, conversation_id, message_id=data.message_id)

    @get("/conversations/{conversation_id:str}/graph")
    async def conversation_graph(
        self,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        conversation_id: FromPath[str],
        client_ip: NamedDependency[str | None],
    ) -> GraphOut:
        """Provenance: ``user`` -retrieved-> ``retrieval`` -grounded-> ``generation``, and ``answered_by``."""
        graph = await conversations.graph(caller.id, conversation_id)
        await audit_conversation("read", caller, conversation_id, client_ip, view="graph")
        return graph

    @get("/conversations/{conversation_id:str}/export")
    async def export_conversation(
        self,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        conversation_id: FromPath[str],
        client_ip: NamedDependency[str | None],
        format: FromQuery[Literal["md", "json"]] = "json",
    ) -> Response[str]:
        return await export_download(conversations, caller, conversation_id, client_ip, format=format)

    @post("/messages", status_code=201)
    async def post_message(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Principal],
        engine: NamedDependency[ChatEngine],
        data: JSONBody[MessageCreate],
        client_ip: NamedDependency[str | None],
    ) -> Response[Any]:
        """Ask (or regenerate, or edit). With ``Accept: text/event-stream`` the answer streams as SSE.

        The question is stored before anything can fail. A failed answer is stored as ``failed`` and
        answers 503 ``llm_unavailable`` (or an ``error`` event) with the ids to retry with. Over the
        hour's questions or the day's tokens it answers 429 ``rate_limited`` before storing anything;
        ``X-RateLimit-Limit/Remaining/Reset`` give the question budget after this one.
        """
        run = await engine.ask(caller, data, ip=client_ip)
        budget_headers = run.turn.budgets.headers() if run.turn.budgets else {}
        if wants_event_stream(request):
            return ServerSentEvent(api_events(run.subscribe()), status_code=200, headers=budget_headers)
        outcome = await run.wait()
        if isinstance(outcome, Failed):
            failure = AnswerFailed(outcome.problem)
            failure.headers.update(budget_headers)
            raise failure
        assert isinstance(outcome, Finished)
        turn = run.turn
        return Response(
            TurnOut(
                conversation_id=str(turn.conversation.id),
                user_message=message_out(turn.user_message),
                message=outcome.message,
            ),
            status_code=201,
            headers=budget_headers,
        )

    @get("/limits")
    async def get_limits(
        self, caller: NamedDependency[Principal], limits: NamedDependency[ChatLimits | None]
    ) -> LimitsOut:
        """What the caller may still ask: questions this hour, model tokens today (``limit`` null: unlimited)."""
        if limits is None:
            return unlimited()
        return (await limits.status(caller.id, is_admin=caller.is_admin)).out()

    @get("/messages/{message_id:str}/events")
    async def follow_message(
        self, caller: NamedDependency[Principal], engine: NamedDependency[ChatEngine], message_id: FromPath[str]
    ) -> ServerSentEvent:
        """The events of an answer (live while it is written, else ``sources`` and ``done``/``error``)."""
        await engine.conversations.get_message(caller.id, message_id)
        return ServerSentEvent(api_events(engine.follow(caller.id, message_id)))

    @post("/messages/{message_id:str}/stop", status_code=200)
    async def stop_message(
        self, caller: NamedDependency[Principal], engine: NamedDependency[ChatEngine], message_id: FromPath[str]
    ) -> MessageOut:
        """Stop an answer being written; it is kept as ``failed`` (code ``stopped``) with its text so far."""
        return message_out(await engine.stop(caller.id, message_id))
