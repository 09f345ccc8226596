"""The chat pages: full pages and their HTMX fragments, signed in with the session cookie like a browser."""

from __future__ import annotations

import asyncio
import re
import threading

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from medchat.retrieval import Passage, SearchScope
from tests.chat.conftest import ChatUser, parse_sse, register, sign_in_browser
from tests.chat.test_routes import FakeRetriever

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
    """Finds nothing, once the test opens the gate: the answer is still being written when the page opens
    its stream. (A finished answer replays only its outcome, without the tokens this test looks for.)
    The app runs on the test client's own thread and loop, hence a thread-safe gate.
    """

    def __init__(self) -> None:
        self.gate = threading.Event()

    async def search(self, query: str, *, scope: SearchScope, top_k: int | None = None) -> list[Passage]:
        await asyncio.to_thread(self.gate.wait, 30)
        return []


async def test_asking_with_htmx_streams_the_answer_and_reload_shows_it(
    client: AsyncTestClient[Litestar], browser: dict[str, str]
) -> None:
    index = GatedEmptyIndex()
    client.app.state.runtime.retriever = index
    response = await client.post(
        "/chat/messages", data={"content": "What is <b>asthma</b>?", "conversation_id": ""}, headers={**HTMX, **browser}
    )
    assert response.status_code == 200, response.text
    fragment = response.text
    assert "<html" not in fragment
    assert "What is &lt;b&gt;asthma&lt;/b&gt;?" in fragment, "the question is escaped"
    assert 'hx-ext="sse"' in fragment and 'sse-close="done"' in fragment
    assert 'sse-swap="token"' in fragment and 'sse-swap="done,failed"' in fragment
    assert 'hx-swap-oob="delete"' in fragment
    conversation_id = response.headers["hx-push-url"].removeprefix("/chat/")
    assert f'value="{conversation_id}"' in fragment, "the composer learns the new conversation"
    assert f'id="conv-{conversation_id}"' in fragment, "the sidebar lists it"

    # The test client blocks this loop while it streams, so a timer thread lets the answer go on once the
    # stream is open and following it.
    threading.Timer(1.0, index.gate.set).start()
    stream = await client.get(f"/chat/messages/{answer_id(fragment)}/stream")
    assert stream.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(stream.text)
    names = [name for name, _ in events]
    assert names[-1] == "done" and "token" in names
    done_html = events[-1][1]
    assert f'id="msg-{answer_id(fragment)}"' in done_html
    assert "message assistant complete" in done_html
    assert "Not covered" in done_html
    assert "Regenerate" in done_html and "data-copy-text=" in done_html
    assert "sse-connect" not in done_html, "the finished answer replaces the streaming one and closes the stream"

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
