"""The streamed turn at one client: how long after the model's first token the client gets its first ``token``.

``POST /api/v1/chat/messages`` with ``Accept: text/event-stream`` (API.md: ``meta``, ``sources``,
``token``..., ``done`` with the final message). For every turn the client reads ``CLOCK_MONOTONIC`` when
it sends the request and when the first ``token`` event is parsed; the model (``timed_llm.py``) stamps
the same clock when it flushed its first content chunk. One clock for the whole machine, so
"first token at the client after the model's first token" is a plain difference, with nothing inferred
from the server's own figures. Those are reported beside it: the answer's ``timing`` says the time
before the model call (``total_ms - generation_ms``, or ``before_model_ms`` when the server reports it).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
from timed_llm import monotonic, read_stamps


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


@dataclass
class StreamedTurn:
    sent: float
    first_token: float | None = None
    finished: float | None = None
    timing: dict[str, float] = field(default_factory=dict)


def before_model_ms(timing: dict[str, float]) -> float | None:
    """Time from the request to the model call, as the server measured it (None without its figures)."""
    if timing.get("before_model_ms") is not None:
        return timing["before_model_ms"]
    if timing.get("total_ms") is not None and timing.get("generation_ms") is not None:
        return timing["total_ms"] - timing["generation_ms"]
    return None


async def streamed_turn(http: httpx.AsyncClient, headers: dict[str, str], body: dict[str, str]) -> StreamedTurn:
    turn = StreamedTurn(sent=monotonic())
    event = ""
    stream_headers = {**headers, "Accept": "text/event-stream"}
    async with http.stream("POST", "/api/v1/chat/messages", json=body, headers=stream_headers) as response:
        if response.status_code >= 300:
            await response.aread()
            raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:") and event == "token" and turn.first_token is None:
                turn.first_token = monotonic()
            elif line.startswith("data:") and event == "done":
                message = json.loads(line.removeprefix("data:"))
                message = message.get("message", message)
                turn.timing = message.get("timing") or {}
                body["conversation_id"] = message.get("conversation_id", body.get("conversation_id", ""))
            elif line.startswith("data:") and event == "error":
                raise RuntimeError(f"error event: {line[:200]}")
    turn.finished = monotonic()
    return turn


def model_first_token(turn: StreamedTurn, stamps: list[float]) -> float | None:
    """The model's first-token stamp inside this turn's request (the latest, should a retry have made two)."""
    if turn.first_token is None:
        return None
    inside = [stamp for stamp in stamps if turn.sent <= stamp <= turn.first_token]
    return max(inside) if inside else None


async def run_streamed(
    http: httpx.AsyncClient, headers: dict[str, str], llm_url: str, turns: int, per_conversation: int,
    questions: Iterator[list[str]],
) -> dict[str, object]:  # fmt: skip
    """``turns`` streamed turns one after another; the figures in milliseconds."""
    read_stamps(llm_url)  # forget the warm-up's
    results: list[StreamedTurn] = []
    failures: list[str] = []
    conversation: list[str] = []
    body: dict[str, str] = {}
    started = time.perf_counter()
    for number in range(turns):
        if number % per_conversation == 0:
            conversation, body = next(questions), {}
        body["content"] = conversation[number % per_conversation]
        try:
            results.append(await streamed_turn(http, headers, body))
        except (RuntimeError, httpx.HTTPError) as error:
            failures.append(str(error))
            body = {}
    wall = time.perf_counter() - started
    stamps = read_stamps(llm_url)
    to_first = [(t.first_token - t.sent) * 1000 for t in results if t.first_token is not None]
    after_model = []
    for turn in results:
        stamp = model_first_token(turn, stamps)
        if stamp is not None and turn.first_token is not None:
            after_model.append((turn.first_token - stamp) * 1000)
    before = [value for value in (before_model_ms(turn.timing) for turn in results) if value is not None]
    model_first = [t.timing["first_token_ms"] for t in results if t.timing.get("first_token_ms") is not None]
    return {
        "turns": len(results),
        "failures": failures[:3],
        "failed": len(failures),
        "turns_per_s": len(results) / wall if wall else 0.0,
        "client_first_token_p50": statistics.median(to_first) if to_first else float("nan"),
        "client_first_token_p99": percentile(to_first, 99),
        "after_model_first_token_p50": statistics.median(after_model) if after_model else float("nan"),
        "after_model_first_token_p99": percentile(after_model, 99),
        "matched_model_stamps": len(after_model),
        "before_model_p50": statistics.median(before) if before else float("nan"),
        "before_model_p99": percentile(before, 99),
        "server_model_first_token_p50": statistics.median(model_first) if model_first else float("nan"),
    }


def describe(r: dict[str, object]) -> list[str]:
    lines = [
        f"  streamed, 1 client, {r['turns']} turns ({r['turns_per_s']:.1f}/s): first token at the client "
        f"p50 {r['client_first_token_p50']:.1f} / p99 {r['client_first_token_p99']:.1f} ms after the request; "
        f"first token after the model's first token p50 {r['after_model_first_token_p50']:.1f} / "
        f"p99 {r['after_model_first_token_p99']:.1f} ms ({r['matched_model_stamps']} turns matched to the "
        f"model's stamp)",
        f"  server's view: before the model call p50 {r['before_model_p50']:.1f} / p99 {r['before_model_p99']:.1f} ms; "
        f"model's first token (from the model call, client library included) p50 "
        f"{r['server_model_first_token_p50']:.1f} ms",
    ]
    if r["failed"]:
        lines.append(f"  {r['failed']} streamed turns failed, first: {r['failures']}")
    return lines
