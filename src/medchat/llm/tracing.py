"""Optional LangSmith tracing of generations.

On only when LangSmith's own switch is on (``LANGSMITH_TRACING=true``) *and* ``LANGSMITH_API_KEY`` is
set; otherwise the tracer is a no-op that never touches langsmith, so nothing leaves the process.
Every text that goes into a trace passes through ``redact`` first (identity by default), the hook
for keeping patient data out of traces.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any, Protocol

import langsmith
import structlog

from medchat.llm.types import Usage

log = structlog.get_logger(__name__)

Redactor = Callable[[str], str]

RUN_NAME = "medchat.llm.generate"
_SWITCH_VARIABLES = ("LANGSMITH_TRACING", "LANGSMITH_TRACING_V2", "LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING")
_KEY_VARIABLES = ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY")


def langsmith_tracing_enabled() -> bool:
    """Read straight from the environment (langsmith caches its own reading for the process)."""
    switch = next((os.environ[name] for name in _SWITCH_VARIABLES if name in os.environ), "")
    key = next((os.environ[name] for name in _KEY_VARIABLES if os.environ.get(name)), "")
    return switch.strip().lower() == "true" and bool(key)


class GenerationTrace(Protocol):
    def add_text(self, text: str) -> None: ...

    def finish(self, *, usage: Usage, finish_reason: str | None, model: str) -> None: ...


class Tracer(Protocol):
    def generation(
        self, *, provider: str, model: str, messages: Sequence[dict[str, Any]]
    ) -> AbstractContextManager[GenerationTrace]: ...


class _NoTrace:
    def add_text(self, text: str) -> None:
        pass

    def finish(self, *, usage: Usage, finish_reason: str | None, model: str) -> None:
        pass


class NoopTracer:
    _trace = _NoTrace()

    @contextmanager
    def generation(self, *, provider: str, model: str, messages: Sequence[dict[str, Any]]) -> Iterator[_NoTrace]:
        yield self._trace


class _LangSmithTrace:
    def __init__(self, run: Any, redact: Redactor) -> None:
        self._run = run
        self._redact = redact
        self._parts: list[str] = []

    def add_text(self, text: str) -> None:
        self._parts.append(text)

    def finish(self, *, usage: Usage, finish_reason: str | None, model: str) -> None:
        message = {"role": "assistant", "content": self._redact("".join(self._parts))}
        usage_metadata = {
            "input_tokens": usage.prompt_tokens,
            "output_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        }
        self._run.metadata["ls_model_name"] = model
        self._run.end(
            outputs={
                "choices": [{"message": message, "finish_reason": finish_reason}],
                "usage_metadata": usage_metadata,
            }
        )

    def partial_outputs(self) -> dict[str, Any]:
        return {"choices": [{"message": {"role": "assistant", "content": self._redact("".join(self._parts))}}]}


class LangSmithTracer:
    """Records each generation as a LangSmith ``llm`` run (inputs and outputs redacted)."""

    def __init__(self, *, redact: Redactor | None = None, client: langsmith.Client | None = None) -> None:
        self._redact: Redactor = redact or _identity
        self._client = client

    @contextmanager
    def generation(self, *, provider: str, model: str, messages: Sequence[dict[str, Any]]) -> Iterator[GenerationTrace]:
        """Tracing problems are logged and never reach the generation."""
        inputs = {"messages": [{**message, "content": self._redact(str(message["content"]))} for message in messages]}
        metadata = {"ls_provider": provider, "ls_model_name": model}
        run_context = ExitStack()
        try:
            # Our switch decided; langsmith must agree for the whole run (it caches the environment).
            run_context.enter_context(langsmith.tracing_context(enabled=True))
            run = run_context.enter_context(
                langsmith.trace(RUN_NAME, run_type="llm", inputs=inputs, metadata=metadata, client=self._client)
            )
        except Exception:
            log.warning("LangSmith tracing failed; continuing without a trace", exc_info=True)
            _exit_quietly(run_context, None)
            yield _NoTrace()
            return
        trace = _LangSmithTrace(run, self._redact)
        try:
            yield trace
        except BaseException as error:
            run.outputs = trace.partial_outputs()
            _exit_quietly(run_context, error)
            raise
        _exit_quietly(run_context, None)


def make_tracer(*, redact: Redactor | None = None, client: langsmith.Client | None = None) -> Tracer:
    """LangSmith when its environment switches it on, otherwise a tracer that does nothing."""
    if langsmith_tracing_enabled():
        return LangSmithTracer(redact=redact, client=client)
    return NoopTracer()


def _identity(text: str) -> str:
    return text


def _exit_quietly(run_context: ExitStack, error: BaseException | None) -> None:
    try:
        run_context.__exit__(type(error) if error else None, error, error.__traceback__ if error else None)
    except Exception:
        log.warning("LangSmith tracing failed to record a run", exc_info=True)
