"""The browser's streamed turn at one client: the chat page's live Markdown answer (``chat/live.py``).

A signed-in browser (session cookie, CSRF token, ``HX-Request``) posts the question form to
``/chat/messages``; the fragment it gets back opens ``/chat/messages/{id}/stream``, whose ``answer`` events
carry the answer so far rendered to safe HTML (throttled). This is what a person waits for, and the path
where the live re-render runs; the JSON API's stream (``chat_stream.py``) sends raw text pieces. Per turn:
the time from the form post to the first ``answer`` event, and that event after the model's first token
(``timed_llm.py``'s stamp, the same machine-wide clock). An answer that was already finished when the
fragment was rendered has no stream to open; those turns are counted, not timed.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterator

import httpx
from chat_server import PASSWORD
from chat_stream import StreamedTurn, model_first_token, percentile
from timed_llm import monotonic, read_stamps

CSRF_COOKIE = "medchat_csrf"
STREAM_LINK = re.compile(r'sse-connect="/chat/messages/([0-9a-f]{24})/stream"')
CONVERSATION_FIELD = re.compile(r'name="conversation_id"\s+value="([0-9a-f]{24})"')


async def sign_in(http: httpx.AsyncClient, email: str) -> dict[str, str]:
    """Sign ``http`` in through the login form; returns the headers an HTMX post carries."""
    await http.get("/login")
    csrf = http.cookies.get(CSRF_COOKIE, "")
    response = await http.post("/login", data={"email": email, "password": PASSWORD, "_csrf_token": csrf})
    if response.status_code not in (200, 302, 303):
        raise RuntimeError(f"sign-in answered {response.status_code}")
    return {"HX-Request": "true", "X-CSRFToken": http.cookies.get(CSRF_COOKIE, csrf)}


async def page_turn(http: httpx.AsyncClient, headers: dict[str, str], form: dict[str, str]) -> StreamedTurn | None:
    """One question through the page; None when the answer was finished before its stream could open."""
    turn = StreamedTurn(sent=monotonic())
    response = await http.post("/chat/messages", data=form, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
    conversation = CONVERSATION_FIELD.search(response.text)
    if conversation:
        form["conversation_id"] = conversation.group(1)
    link = STREAM_LINK.search(response.text)
    if not link:
        return None
    event = ""
    async with http.stream("GET", f"/chat/messages/{link.group(1)}/stream") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:") and event == "answer" and turn.first_token is None:
                turn.first_token = monotonic()
    turn.finished = monotonic()
    return turn


async def run_page_streamed(
    http: httpx.AsyncClient, email: str, llm_url: str, turns: int, per_conversation: int,
    questions: Iterator[list[str]],
) -> dict[str, object]:  # fmt: skip
    headers = await sign_in(http, email)
    read_stamps(llm_url)
    timed: list[StreamedTurn] = []
    finished_early = 0
    conversation: list[str] = []
    form: dict[str, str] = {}
    for number in range(turns):
        if number % per_conversation == 0:
            conversation, form = next(questions), {"conversation_id": ""}
        form["content"] = conversation[number % per_conversation]
        turn = await page_turn(http, headers, form)
        if turn is None or turn.first_token is None:
            finished_early += 1
        else:
            timed.append(turn)
    stamps = read_stamps(llm_url)
    to_first = [(t.first_token - t.sent) * 1000 for t in timed if t.first_token is not None]
    after_model = [
        (t.first_token - stamp) * 1000
        for t in timed
        if t.first_token is not None and (stamp := model_first_token(t, stamps)) is not None
    ]
    return {
        "turns": len(timed),
        "finished_before_stream": finished_early,
        "first_answer_p50": statistics.median(to_first) if to_first else float("nan"),
        "first_answer_p99": percentile(to_first, 99),
        "after_model_first_token_p50": statistics.median(after_model) if after_model else float("nan"),
        "after_model_first_token_p99": percentile(after_model, 99),
        "matched_model_stamps": len(after_model),
    }


def describe(r: dict[str, object]) -> list[str]:
    return [
        f"  chat page (live Markdown), 1 client, {r['turns']} turns timed ({r['finished_before_stream']} finished "
        f"before their stream opened): first rendered answer p50 {r['first_answer_p50']:.1f} / "
        f"p99 {r['first_answer_p99']:.1f} ms after the form post; after the model's first token "
        f"p50 {r['after_model_first_token_p50']:.1f} / p99 {r['after_model_first_token_p99']:.1f} ms "
        f"({r['matched_model_stamps']} matched)"
    ]
