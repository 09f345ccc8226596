"""The chat pages: full pages and their HTMX fragments, signed in with the session cookie like a browser."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from medchat.retrieval import Passage, SearchScope
from tests.support.accounts import ChatUser, register, sign_in_browser
from tests.support.app import engine_of
from tests.support.fake_retriever import FakeRetriever
from tests.support.sse import parse_sse

HTMX = {"HX-Request": "true"}


@pytest.fixture
async def browser(client: AsyncTestClient[Litestar], alice: ChatUser) -> dict[str, str]:
    """``client`` signed in as alice through the login form; returns the CSRF header for posts."""
    return await sign_in_browser(client, alice)


def answer_id(html: str) -> str:
    match = re.search(r'sse-connect="/chat/messages/([0-9a-f]{24})/stream"', html)
    assert match, html
    return match.group(1)


def last_answer_id(html: str) -> str:
    """The newest answer of a thread fragment, streaming or (when it was quick) already finished."""
    found = re.findall(r'id="msg-([0-9a-f]{24})" class="message assistant', html)
    assert found, html
    return found[-1]


async def test_the_chat_page_needs_a_signed_in_user(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/chat", headers={"Accept": "text/html"}, follow_redirects=False)
    assert response.status_code in (302, 303)
    assert response.headers["location"].startswith("/login?next=/chat")


async def test_the_empty_chat_page(client: AsyncTestClient[Litestar], browser: dict[str, str]) -> None:
    response = await client.get("/chat")
    assert response.status_code == 200
    html = response.text
    assert "<title>New conversation · medchat</title>" in html
    assert 'id="composer"' in html and 'action="/chat/messages"' in html
    assert '<label for="composer-input"' in html
    assert 'id="thread-empty"' in html
    assert "No conversations yet." in html
    assert "Sources only — no language model configured" in html
    assert "/static/js/chat.js" in html, "loaded by the base layout, so boosted navigation has it too"
    assert "<script>" not in html and " style=" not in html, "the CSP forbids inline scripts and styles"
    assert response.headers["vary"] == "HX-Request"


class GatedEmptyIndex:
    """Finds nothing, once the gate opens: the answer is still being written when the page opens its stream.
    (A finished answer replays only its outcome, without the tokens this test looks for.)
    """

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def search(self, query: str, *, scope: SearchScope, top_k: int | None = None) -> list[Passage]:
        await self.gate.wait()
        return []


def open_when_followed(engine: Any, index: GatedEmptyIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    """Open ``index``'s gate as soon as a stream follows an answer (it then has all of its events)."""
    follow = engine.follow

    async def following(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async for event in follow(*args, **kwargs):
            index.gate.set()
            yield event

    monkeypatch.setattr(engine, "follow", following)


async def test_asking_with_htmx_streams_the_answer_and_reload_shows_it(
    client: AsyncTestClient[Litestar], browser: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    index = GatedEmptyIndex()
    client.app.state.runtime.retriever = index
    open_when_followed(engine_of(client), index, monkeypatch)
    response = await client.post(
        "/chat/messages", data={"content": "What is <b>asthma</b>?", "conversation_id": ""}, headers={**HTMX, **browser}
    )
    assert response.status_code == 200, response.text
    fragment = response.text
    assert "<html" not in fragment
    assert "What is &lt;b&gt;asthma&lt;/b&gt;?" in fragment, "the question is escaped"
    assert 'hx-ext="sse,medchat-morph"' in fragment and 'sse-close="done"' in fragment
    assert 'sse-swap="answer" hx-swap="morph"' in fragment and 'sse-swap="done,failed"' in fragment
    assert 'hx-swap-oob="delete"' in fragment
    conversation_id = response.headers["hx-push-url"].removeprefix("/chat/")
    assert f'value="{conversation_id}"' in fragment, "the composer learns the new conversation"
    assert f'id="conv-{conversation_id}"' in fragment, "the sidebar lists it"

    stream = await client.get(f"/chat/messages/{answer_id(fragment)}/stream")
    assert stream.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(stream.text)
    names = [name for name, _ in events]
    assert names[-1] == "done" and "answer" in names and "token" not in names
    done_html = events[-1][1]
    live_html = [data for name, data in events if name == "answer"][-1]
    assert live_html.startswith("<p>Not covered"), "the answer so far arrives rendered, not as raw text"
    assert f'<div class="answer-body markdown">{live_html}</div>' in done_html, "and as the stored answer is"
    assert f'id="msg-{answer_id(fragment)}"' in done_html
    assert "message assistant complete" in done_html
    assert "Not covered" in done_html
    assert "Regenerate" in done_html and "data-copy-text=" in done_html
    assert "sse-connect" not in done_html, "the finished answer is morphed in, without the stream"

    page = await client.get(f"/chat/{conversation_id}")
    assert page.status_code == 200
    assert "What is &lt;b&gt;asthma&lt;/b&gt;?" in page.text
    assert "Not covered" in page.text
    assert "sse-connect" not in page.text
    assert 'aria-current="page"' in page.text
    assert "Export Markdown" in page.text


async def test_asking_without_javascript_redirects_to_the_answered_conversation(
    client: AsyncTestClient[Litestar], browser: dict[str, str]
) -> None:
    response = await client.post(
        "/chat/messages",
        data={"content": "What is gout?", "_csrf_token": browser["X-CSRFToken"]},
        follow_redirects=False,
    )
    assert response.status_code == 303
    location = response.headers["location"]
    page = await client.get(location)
    assert "What is gout?" in page.text and "message assistant complete" in page.text


async def test_forms_without_the_csrf_token_are_refused(
    client: AsyncTestClient[Litestar], browser: dict[str, str]
) -> None:
    response = await client.post("/chat/messages", data={"content": "hi"}, headers=HTMX)
    assert response.status_code == 403


async def test_search_fragment_and_its_no_javascript_fallback(
    client: AsyncTestClient[Litestar], browser: dict[str, str]
) -> None:
    for question in ("Asthma in winter", "Gout and diet"):
        await client.post("/chat/messages", data={"content": question}, headers={**HTMX, **browser})
    fragment = await client.get("/chat/conversations", params={"q": "asthma"}, headers=HTMX)
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert "Asthma in winter" in fragment.text and "Gout and diet" not in fragment.text
    none = await client.get("/chat/conversations", params={"q": "zzz"}, headers=HTMX)
    assert "No conversation matches" in none.text

    fallback = await client.get("/chat/conversations", params={"q": "asthma"}, follow_redirects=False)
    assert fallback.status_code in (302, 303) and fallback.headers["location"] == "/chat?q=asthma"
    page = await client.get("/chat", params={"q": "asthma"})
    assert "Asthma in winter" in page.text and "Gout and diet" not in page.text


async def test_edit_regenerate_and_switch_fragments(client: AsyncTestClient[Litestar], browser: dict[str, str]) -> None:
    first = await client.post("/chat/messages", data={"content": "What is asthma?"}, headers={**HTMX, **browser})
    conversation_id = first.headers["hx-push-url"].removeprefix("/chat/")
    question_id = re.search(r'id="msg-([0-9a-f]{24})" class="message user"', first.text).group(1)  # type: ignore[union-attr]
    await client.get(f"/chat/messages/{answer_id(first.text)}/stream")

    edited = await client.post(
        f"/chat/messages/{question_id}/edit", data={"content": "What is COPD?"}, headers={**HTMX, **browser}
    )
    assert edited.status_code == 200
    assert "What is COPD?" in edited.text and "What is asthma?" not in edited.text.split("<textarea")[0]
    assert "2 / 2" in edited.text, "the edited question shows its branch switcher"
    new_answer = last_answer_id(edited.text)
    await client.get(f"/chat/messages/{new_answer}/stream")

    switched = await client.post(
        f"/chat/{conversation_id}/switch", data={"message_id": question_id}, headers={**HTMX, **browser}
    )
    assert switched.status_code == 200
    assert "What is asthma?" in switched.text and "1 / 2" in switched.text

    regenerated = await client.post(f"/chat/messages/{new_answer}/regenerate", headers={**HTMX, **browser})
    assert regenerated.status_code == 200
    assert answer_id(regenerated.text) != new_answer


async def test_rename_delete_and_export(client: AsyncTestClient[Litestar], browser: dict[str, str]) -> None:
    first = await client.post("/chat/messages", data={"content": "What is asthma?"}, headers={**HTMX, **browser})
    conversation_id = first.headers["hx-push-url"].removeprefix("/chat/")
    await client.get(f"/chat/messages/{answer_id(first.text)}/stream")

    renamed = await client.post(
        f"/chat/{conversation_id}/rename", data={"title": "Asthma notes"}, headers={**HTMX, **browser}
    )
    assert renamed.status_code == 200
    assert '<h1 id="chat-title">Asthma notes</h1>' in renamed.text
    assert f'id="conv-{conversation_id}" hx-swap-oob="true"' in renamed.text

    exported = await client.get(f"/chat/{conversation_id}/export", params={"format": "md"})
    assert exported.status_code == 200 and exported.text.startswith("# Asthma notes")
    assert "attachment" in exported.headers["content-disposition"]
    as_json = await client.get(f"/chat/{conversation_id}/export", params={"format": "json"})
    assert as_json.json()["conversation"]["title"] == "Asthma notes"

    deleted = await client.post(f"/chat/{conversation_id}/delete", headers={**HTMX, **browser})
    assert deleted.headers["hx-redirect"] == "/chat"
    assert (await client.get(f"/chat/{conversation_id}")).status_code == 404


async def test_another_users_conversation_page_is_not_found(
    client: AsyncTestClient[Litestar], browser: dict[str, str]
) -> None:
    first = await client.post("/chat/messages", data={"content": "Alice's secret"}, headers={**HTMX, **browser})
    conversation_id = first.headers["hx-push-url"].removeprefix("/chat/")
    client.cookies.clear()
    bob = await register(client, name="bob")
    bob_csrf = await sign_in_browser(client, bob)
    page = await client.get(f"/chat/{conversation_id}", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert "Alice&#39;s secret" not in page.text and "Alice's secret" not in page.text
    stream = await client.get(f"/chat/messages/{answer_id(first.text)}/stream")
    assert stream.status_code == 404
    posted = await client.post(
        "/chat/messages", data={"content": "x", "conversation_id": conversation_id}, headers={**HTMX, **bob_csrf}
    )
    assert posted.status_code == 404


async def test_sources_are_listed_under_the_answer_with_citation_anchors(
    client: AsyncTestClient[Litestar], browser: dict[str, str]
) -> None:
    client.app.state.runtime.retriever = FakeRetriever()
    first = await client.post("/chat/messages", data={"content": "What is hypertension?"}, headers={**HTMX, **browser})
    message_id = answer_id(first.text)
    events = parse_sse((await client.get(f"/chat/messages/{message_id}/stream")).text)
    sources_html = next(data for name, data in events if name == "sources")
    assert f'id="src-{message_id}-1"' in sources_html and "Hypertension guideline" in sources_html
    done_html = events[-1][1]
    assert f'<a href="#src-{message_id}-1" class="cite"' in done_html
    assert f'id="src-{message_id}-2"' in done_html
    assert 'href="/documents/doc-1/file#page=3"' in done_html
    assert "Not backed by" not in done_html, "a grounded answer carries no warning"


def first_question_id(html: str) -> str:
    found = re.findall(r'id="msg-([0-9a-f]{24})" class="message user"', html)
    assert found, html
    return found[0]


async def test_every_chat_form_works_without_javascript(
    client: AsyncTestClient[Litestar], browser: dict[str, str]
) -> None:
    """Each form posted as a browser without JavaScript posts it (no ``HX-Request``): a 303 to a whole page."""
    csrf = {"_csrf_token": browser["X-CSRFToken"]}

    async def submit(path: str, **fields: str) -> tuple[str, str]:
        response = await client.post(path, data={**fields, **csrf}, follow_redirects=False)
        assert response.status_code == 303, (path, response.status_code, response.text[:300])
        page = await client.get(response.headers["location"])
        assert page.status_code == 200 and "<html" in page.text, path
        return response.headers["location"], page.text

    location, html = await submit("/chat/messages", content="What is asthma?", conversation_id="")
    conversation_id = location.removeprefix("/chat/")
    question_id, answer = first_question_id(html), last_answer_id(html)
    assert "message assistant complete" in html

    _, html = await submit(f"/chat/messages/{answer}/regenerate")  # also the failed answer's Retry
    assert "2 / 2" in html and last_answer_id(html) != answer

    _, html = await submit(f"/chat/messages/{question_id}/edit", content="What is COPD?")
    assert "What is COPD?" in html.split("<textarea")[0]

    _, html = await submit(f"/chat/{conversation_id}/switch", message_id=question_id)
    assert first_question_id(html) == question_id and "1 / 2" in html

    _, html = await submit(f"/chat/{conversation_id}/rename", title="Asthma notes")
    assert '<h1 id="chat-title">Asthma notes</h1>' in html

    exported = await client.get(f"/chat/{conversation_id}/export", params={"format": "md"})  # a link, no form
    assert exported.status_code == 200 and exported.text.startswith("# Asthma notes")

    location, html = await submit(f"/chat/{conversation_id}/delete")
    assert location == "/chat" and f"conv-{conversation_id}" not in html


async def test_stop_without_javascript_shows_the_stopped_answer_on_its_page(
    client: AsyncTestClient[Litestar], browser: dict[str, str]
) -> None:
    client.app.state.runtime.retriever = GatedEmptyIndex()  # never opens: the answer is still being written
    asked = await client.post("/chat/messages", data={"content": "Tell me"}, headers={**HTMX, **browser})
    streaming = answer_id(asked.text)

    stopped = await client.post(
        f"/chat/messages/{streaming}/stop", data={"_csrf_token": browser["X-CSRFToken"]}, follow_redirects=False
    )
    assert stopped.status_code == 303
    page = await client.get(stopped.headers["location"])
    assert "<html" in page.text and "You stopped this answer." in page.text


async def test_an_htmx_swap_gets_the_fragment_and_a_plain_or_boosted_request_the_page(
    client: AsyncTestClient[Litestar], browser: dict[str, str]
) -> None:
    """The one rule (``wants_fragment``): only an HTMX swap gets a fragment; a boosted form swaps the whole
    body, so it gets the page (through the redirect) like a request without JavaScript."""
    fragment = await client.post("/chat/messages", data={"content": "What is gout?"}, headers={**HTMX, **browser})
    assert fragment.status_code == 200 and "<html" not in fragment.text and 'class="message user"' in fragment.text
    assert fragment.headers["vary"] == "HX-Request"
    conversation_id = fragment.headers["hx-push-url"].removeprefix("/chat/")
    await client.get(f"/chat/messages/{answer_id(fragment.text)}/stream")

    renamed = await client.post(f"/chat/{conversation_id}/rename", data={"title": "Gout"}, headers={**HTMX, **browser})
    assert renamed.text.lstrip().startswith('<header id="chat-header"') and "<html" not in renamed.text

    for headers in ({}, {**HTMX, "HX-Boosted": "true"}):
        for path, data in (("/chat/messages", {"content": "And diet?", "conversation_id": conversation_id}),
                           (f"/chat/{conversation_id}/rename", {"title": "Gout and diet"})):  # fmt: skip
            response = await client.post(path, data=data, headers={**headers, **browser}, follow_redirects=False)
            assert response.status_code == 303, (path, headers, response.text[:300])
            assert response.headers["location"] == f"/chat/{conversation_id}"
            assert response.headers["vary"] == "HX-Request"
    page = await client.get(f"/chat/{conversation_id}", headers={**HTMX, "HX-Boosted": "true"})
    assert "<html" in page.text and '<h1 id="chat-title">Gout and diet</h1>' in page.text and "And diet?" in page.text


async def test_a_questions_stream_on_the_page_is_404_before_any_stream(
    client: AsyncTestClient[Litestar], browser: dict[str, str], alice: ChatUser
) -> None:
    """The page's stream route, like the API's events route, has events only for answers."""
    turn = await client.post("/api/v1/chat/messages", json={"content": "What is asthma?"}, headers=alice.headers)
    assert turn.status_code == 201, turn.text
    question_id = turn.json()["user_message"]["id"]
    response = await client.get(f"/chat/messages/{question_id}/stream", headers={**HTMX, **browser})
    assert response.status_code == 404
    assert not response.headers["content-type"].startswith("text/event-stream")
