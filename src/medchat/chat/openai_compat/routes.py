"""``/v1``: OpenAI's models list and chat completions over the chat's answer pipeline (``ChatEngine.ask``:
triage, retrieval over what the key's owner may see, grounding, citation checks, PHI redaction, budgets,
audit), for personal API keys only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import JSONBody
from litestar.response import Stream

from medchat.auth import Principal, require_api_key
from medchat.chat.answering import AnswerEvent, AnswerRun, ChatEngine, Failed, Finished
from medchat.chat.model_access import ModelAccess
from medchat.chat.openai_compat.catalog import OWNER, offered_models, provider_for
from medchat.chat.openai_compat.errors import exception_handlers
from medchat.chat.openai_compat.schemas import (
    ChatCompletion,
    ChatCompletionRequest,
    ErrorOut,
    ModelList,
    ModelOut,
)
from medchat.chat.openai_compat.translate import Completion, asked, now
from medchat.chat.schemas import MessageCreate
from medchat.chat.services import ConversationService
from medchat.platform.errors import ValidationFailed
from medchat.platform.openapi import BEARER

CONVERSATION_HEADER = "X-Medchat-Conversation-Id"
MESSAGE_HEADER = "X-Medchat-Message-Id"
EVENT_STREAM = "text/event-stream"
CHUNKS_DESCRIPTION = (
    "`data: <chat.completion.chunk JSON>` events, the last with `finish_reason`, `usage` and `medchat`, then "
    '`data: [DONE]`; a failed answer ends with `data: {"error": {...}}` instead'
)

_DESCRIPTIONS = {
    400: "Invalid request (OpenAI error object)",
    401: "No valid personal API key",
    403: "The key's owner is disabled",
    404: "Unknown model, or a conversation that is not the key owner's",
    429: "Over the key's request rate or the owner's budgets (`Retry-After`)",
    503: "The language model or a data store is unavailable",
}


@dataclass
class StreamingOperation(Operation):
    """The 200 in the API schema: a ``chat.completion``, or with ``stream`` the chunks as Server-Sent Events."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse) and ok.content is not None:
            ok.content[EVENT_STREAM] = OpenAPIMediaType(
                schema=Schema(type=OpenAPIType.STRING, description=CHUNKS_DESCRIPTION)
            )


def openai_errors(*statuses: int) -> dict[int, ResponseSpec]:
    return {
        status: ResponseSpec(ErrorOut, description=_DESCRIPTIONS[status], generate_examples=False)
        for status in statuses
    }


class OpenAIController(Controller):
    path = "/v1"
    tags = ["openai-compatible"]  # noqa: RUF012 - Litestar reads these class attributes
    guards = [require_api_key]  # noqa: RUF012
    exception_handlers = exception_handlers
    security = BEARER

    @get("/models", responses=openai_errors(401, 403, 429))
    async def list_models(
        self, caller: NamedDependency[Principal], model_access: NamedDependency[ModelAccess]
    ) -> ModelList:
        """The models the key's owner may use: ``medchat`` (the configured model, with retrieval),
        ``medchat/<model>`` (each further configured model) and ``medchat-sources-only`` (quoted sources)."""
        created = now()
        names = await offered_models(model_access, caller)
        return ModelList(data=[ModelOut(id=name, created=created, owned_by=OWNER) for name in names])

    @post(
        "/chat/completions",
        status_code=200,
        responses={
            200: ResponseSpec(
                ChatCompletion,
                description="The answer; with `stream` true, `text/event-stream` of `chat.completion.chunk` events",
                generate_examples=False,
            ),
            **openai_errors(400, 401, 403, 404, 429, 503),
        },
        operation_class=StreamingOperation,
    )
    async def create_chat_completion(
        self,
        *,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Principal],
        engine: NamedDependency[ChatEngine],
        conversations: NamedDependency[ConversationService],
        data: JSONBody[ChatCompletionRequest],
        client_ip: NamedDependency[str | None],
        model_access: NamedDependency[ModelAccess],
    ) -> Response[Any]:
        """Answer the last (user) message from the knowledge base, with citations and a Sources list.

        ``X-Medchat-Conversation-Id`` continues that stored conversation; without it a new one is started
        and the earlier messages serve as its history. Every answer carries ``X-Medchat-Conversation-Id``
        and ``X-Medchat-Message-Id``.
        """
        if data.n not in (None, 1):
            raise ValidationFailed("n: only 1 is supported", param="n")
        provider = await provider_for(model_access, caller, data.model)
        question = asked(data.messages)
        continued = request.headers.get(CONVERSATION_HEADER)
        run = await engine.ask(
            caller,
            MessageCreate(content=question.question, conversation_id=continued or None),
            ip=client_ip,
            prior=[] if continued else question.prior,
            provider=provider,
        )
        keep = engine.settings.openai_store_conversations or not run.meta.created_conversation
        forgetting = None if keep else forget_when_done(run, conversations, caller_id=caller.id, ip=client_ip)
        completion = Completion(
            model=data.model,
            base_url=str(request.base_url).rstrip("/"),
            conversation_id=run.meta.conversation.id,
            message_id=run.message_id,
            created=now(),
        )
        headers = {
            CONVERSATION_HEADER: completion.conversation_id,
            MESSAGE_HEADER: completion.message_id,
            **(run.budgets.headers() if run.budgets else {}),
        }
        if data.stream:
            return Stream(
                completion.chunks(_then(run.subscribe(), forgetting)),
                media_type=EVENT_STREAM,
                headers={**headers, "Cache-Control": "no-cache"},
            )
        outcome = await run.wait()
        if forgetting is not None:
            await asyncio.shield(forgetting)
        if isinstance(outcome, Failed):
            raise outcome.error.with_headers(headers)
        assert isinstance(outcome, Finished)
        return Response(completion.completion(outcome.message), headers=headers)


_FORGETTING: set[asyncio.Task[None]] = set()


def forget_when_done(
    run: AnswerRun, conversations: ConversationService, *, caller_id: str, ip: str | None
) -> asyncio.Task[None]:
    """Delete the conversation ``run`` started once its answer is finished (``openai_store_conversations``
    off), in a task of its own: a client that leaves early does not keep it."""

    async def forget() -> None:
        await run.wait()
        await conversations.delete(caller_id, run.meta.conversation.id, ip=ip)

    task = asyncio.create_task(forget(), name=f"openai-forget-{run.message_id}")
    _FORGETTING.add(task)
    task.add_done_callback(_FORGETTING.discard)
    return task


async def _then(events: AsyncIterator[AnswerEvent], after: asyncio.Task[None] | None) -> AsyncIterator[AnswerEvent]:
    """The events, then (once they ended) the deletion of a conversation not kept."""
    async for event in events:
        yield event
    if after is not None:
        await asyncio.shield(after)
