"""The chat JSON API under ``/api/v1/chat`` (API.md), with Server-Sent Events for streamed answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from medchat.auth import Principal, require_user
from medchat.chat.answering import (
    AnswerEvent,
    ChatEngine,
    Failed,
    Finished,
    Meta,
    SourcesFound,
    Token,
)
from medchat.chat.exports import ConversationExportOut
from medchat.chat.limits import ChatLimits, unlimited
from medchat.chat.model_access import ModelAccess
from medchat.chat.schemas import (
    AnswerEventOut,
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
)
from medchat.chat.services import ConversationService
from medchat.platform.openapi import BEARER, problem_responses

EVENT_STREAM = "text/event-stream"
SSE_RETRY_MS = 3000


async def export_download(
    conversations: ConversationService, caller: Principal, conversation_id: str, ip: str | None, *, format: str
) -> Response[str]:
    """The conversation as a file to save (``md`` or ``json``); the service records the export."""
    exported = await conversations.export(caller.id, conversation_id, format=format, ip=ip)
    return Response(
        exported.body,
        media_type=exported.media_type,
        headers={"Content-Disposition": f'attachment; filename="{exported.filename}"'},
    )


@dataclass
class ExportOperation(Operation):
    """The export's 200 in the API schema: ``format=json`` is the export object, ``format=md`` Markdown text."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse) and ok.content is not None:
            ok.content["text/markdown"] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))


def answer_stream(description: str) -> ResponseSpec:
    """The documented ``text/event-stream`` answer: ``meta``, ``sources``, ``token``..., then ``done`` or ``error``."""
    return ResponseSpec(AnswerEventOut, media_type=EVENT_STREAM, description=description, generate_examples=False)


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
    return ServerSentEventMessage(event="error", data=encode(event.error.to_problem()))


async def api_events(events: AsyncIterator[AnswerEvent]) -> AsyncIterator[ServerSentEventMessage]:
    yield ServerSentEventMessage(retry=SSE_RETRY_MS, data=None, comment="medchat answer stream")
    async for event in events:
        yield api_event(event)


class ChatController(Controller):
    path = "/api/v1/chat"
    tags = ["chat"]  # noqa: RUF012 - Litestar reads this class attribute
    guards = [require_user]  # noqa: RUF012
    security = BEARER

    @post("/conversations", status_code=201, responses=problem_responses(400, 401, 413, 503))
    async def create_conversation(
        self,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        data: JSONBody[ConversationCreate],
        client_ip: NamedDependency[str | None],
    ) -> ConversationOut:
        return await conversations.create(caller.id, title=data.title, ip=client_ip)

    @get("/conversations", responses=problem_responses(400, 401, 503))
    async def list_conversations(
        self,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        cursor: FromQuery[str | None] = None,
        q: Annotated[
            str | None,
            QueryParameter(max_length=100, description="Search titles and message text (a literal phrase)"),
        ] = None,
    ) -> ConversationPage:
        """The caller's conversations, most recently active first.

        ``q`` (a literal phrase, case-insensitive) searches titles and the text of the caller's own questions
        and answers; an item found by a message carries ``match``: ``{message_id, role, snippet}``, the
        newest matching message and plain text around the match (additive to API.md).
        """
        return await conversations.list(caller.id, limit=limit, cursor=cursor, q=q)

    @get("/conversations/{conversation_id:str}", responses=problem_responses(401, 404, 503))
    async def get_conversation(
        self,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        conversation_id: FromPath[str],
        client_ip: NamedDependency[str | None],
    ) -> ConversationDetail:
        """The conversation with its thread: the messages from the first to the active branch's last."""
        return await conversations.detail(caller.id, conversation_id, ip=client_ip)

    @patch("/conversations/{conversation_id:str}", responses=problem_responses(400, 401, 404, 413, 503))
    async def rename_conversation(
        self,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        conversation_id: FromPath[str],
        data: JSONBody[ConversationUpdate],
        client_ip: NamedDependency[str | None],
    ) -> ConversationOut:
        return await conversations.rename(caller.id, conversation_id, title=data.title, ip=client_ip)

    @delete("/conversations/{conversation_id:str}", status_code=204, responses=problem_responses(401, 404, 503))
    async def delete_conversation(
        self,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        conversation_id: FromPath[str],
        client_ip: NamedDependency[str | None],
    ) -> None:
        await conversations.delete(caller.id, conversation_id, ip=client_ip)

    @post(
        "/conversations/{conversation_id:str}/switch",
        status_code=200,
        responses=problem_responses(400, 401, 404, 413, 503),
    )
    async def switch_branch(
        self,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        conversation_id: FromPath[str],
        data: JSONBody[BranchSwitch],
    ) -> ConversationDetail:
        """Show the branch through ``message_id`` (a sibling from a message's ``siblings``)."""
        return await conversations.switch_branch(caller.id, conversation_id, message_id=data.message_id)

    @get("/conversations/{conversation_id:str}/graph", responses=problem_responses(401, 404, 503))
    async def conversation_graph(
        self,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        conversation_id: FromPath[str],
        client_ip: NamedDependency[str | None],
    ) -> GraphOut:
        """Provenance: ``user`` -retrieved-> ``retrieval`` -grounded-> ``generation``, and ``answered_by``."""
        return await conversations.graph(caller.id, conversation_id, ip=client_ip)

    @get(
        "/conversations/{conversation_id:str}/export",
        responses={
            200: ResponseSpec(ConversationExportOut, description="The conversation as a file to save"),
            **problem_responses(400, 401, 404, 503),
        },
        operation_class=ExportOperation,
    )
    async def export_conversation(
        self,
        caller: NamedDependency[Principal],
        conversations: NamedDependency[ConversationService],
        conversation_id: FromPath[str],
        client_ip: NamedDependency[str | None],
        format: FromQuery[Literal["md", "json"]] = "json",
    ) -> Response[str]:
        return await export_download(conversations, caller, conversation_id, client_ip, format=format)

    @post(
        "/messages",
        status_code=201,
        responses={
            200: answer_stream("With `Accept: text/event-stream`: the answer, streamed as it is written"),
            **problem_responses(400, 401, 403, 404, 413, 429, 503),
        },
    )
    async def post_message(
        self,
        request: Request[Any, Any, Any],
        *,
        caller: NamedDependency[Principal],
        engine: NamedDependency[ChatEngine],
        data: JSONBody[MessageCreate],
        client_ip: NamedDependency[str | None],
        model_access: NamedDependency[ModelAccess],
    ) -> Response[Any]:
        """Ask (or regenerate, or edit). With ``Accept: text/event-stream`` the answer streams as SSE.

        The question is stored before anything can fail. A failed answer is stored as ``failed`` and
        answers 503 ``llm_unavailable`` (or an ``error`` event) with the ids to retry with. Over the
        hour's questions or the day's tokens it answers 429 ``rate_limited`` before storing anything;
        ``X-RateLimit-Limit/Remaining/Reset`` give the question budget after this one.

        ``model`` (optional, additive to API.md) names the model to answer with, one of
        ``GET /api/v1/chat/models``: 404 ``model_not_found`` for another name, 403 ``model_not_allowed`` for a
        model the caller's role may not use. Without it: the default model, or the first the caller may use.
        """
        chosen = await model_access.choose(caller, data.model)
        run = await engine.ask(caller, data, ip=client_ip, provider=chosen.provider)
        budget_headers = run.budgets.headers() if run.budgets else {}
        if wants_event_stream(request):
            return ServerSentEvent(api_events(run.subscribe()), status_code=200, headers=budget_headers)
        outcome = await run.wait()
        if isinstance(outcome, Failed):
            raise outcome.error.with_headers(budget_headers)
        assert isinstance(outcome, Finished)
        return Response(
            TurnOut(
                conversation_id=run.meta.conversation.id,
                user_message=run.meta.user_message,
                message=outcome.message,
            ),
            status_code=201,
            headers=budget_headers,
        )

    @get("/limits", responses=problem_responses(401, 503))
    async def get_limits(
        self, caller: NamedDependency[Principal], limits: NamedDependency[ChatLimits | None]
    ) -> LimitsOut:
        """What the caller may still ask: questions this hour, model tokens today (``limit`` null: unlimited)."""
        if limits is None:
            return unlimited()
        return (await limits.status(caller.id, is_admin=caller.is_admin)).out()

    @get(
        "/messages/{message_id:str}/events",
        responses={200: answer_stream("The answer's events"), **problem_responses(401, 404, 503)},
    )
    async def follow_message(
        self,
        caller: NamedDependency[Principal],
        engine: NamedDependency[ChatEngine],
        conversations: NamedDependency[ConversationService],
        message_id: FromPath[str],
    ) -> ServerSentEvent:
        """The events of an answer (live while it is written, else ``sources`` and ``done``/``error``)."""
        await conversations.get_answer(caller.id, message_id)  # 404 before the stream starts
        return ServerSentEvent(api_events(engine.follow(caller.id, message_id)))

    @post("/messages/{message_id:str}/stop", status_code=200, responses=problem_responses(401, 404, 503))
    async def stop_message(
        self, caller: NamedDependency[Principal], engine: NamedDependency[ChatEngine], message_id: FromPath[str]
    ) -> MessageOut:
        """Stop an answer being written; it is kept as ``failed`` (code ``stopped``) with its text so far."""
        return await engine.stop(caller.id, message_id)
