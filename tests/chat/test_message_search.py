"""Conversation search finds message text, not only titles: the API's ``match`` and the sidebar's snippet.

Real app, real store (the embedded nx-27017 in tests), answers written by the fake OpenAI-compatible server;
every conversation is renamed so a word can be only in its messages.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.support.accounts import ChatUser, register, sign_in_browser
from tests.support.fake_llm import FakeLLMServer

API = "/api/v1/chat"
HTMX = {"HX-Request": "true"}
ANSWER = (
    "For a flare, **Naproxen** 500 mg twice a day with food is the usual first choice, unless the kidneys are weak."
)


async def converse(client: AsyncTestClient[Litestar], user: ChatUser, question: str, *, title: str) -> dict:
    """Ask ``question`` in a new conversation, then rename it ``title``; returns the answer turn."""
    response = await client.post(f"{API}/messages", json={"content": question}, headers=user.headers)
    assert response.status_code == 201, response.text
    turn = response.json()
    renamed = await client.patch(
        f"{API}/conversations/{turn['conversation_id']}", json={"title": title}, headers=user.headers
    )
    assert renamed.status_code == 200, renamed.text
    return turn


async def search(client: AsyncTestClient[Litestar], user: ChatUser, q: str, **params: object) -> dict:
    response = await client.get(f"{API}/conversations", params={"q": q, **params}, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_word_only_in_an_answer_finds_the_conversation_with_a_snippet(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    fake_llm.reply = ANSWER
    alice = await register(remote_client, name="alice")
    turn = await converse(remote_client, alice, "What helps with gout?", title="Joint pain")
    await converse(remote_client, alice, "Unrelated question about sleep", title="Sleep")
    fake_llm.reply = "Sleep hygiene: a regular bedtime."  # a later conversation whose answer lacks the word
    await converse(remote_client, alice, "How do I sleep better?", title="Bedtime")

    assert (await search(remote_client, alice, "Joint"))["items"][0].get("match") is None, "a title hit alone"
    found = (await search(remote_client, alice, "NAPROXEN"))["items"]

    ids = [item["id"] for item in found]
    assert turn["conversation_id"] in ids
    item = next(item for item in found if item["id"] == turn["conversation_id"])
    assert item["title"] == "Joint pain", "the existing fields are all still there"
    assert {"created_at", "updated_at", "last_message_at", "active_leaf_id"} <= item.keys()
    match = item["match"]
    assert match["role"] == "assistant"
    assert match["message_id"] == turn["message"]["id"]
    assert "naproxen" in match["snippet"].lower()
    assert "**" not in match["snippet"], "Markdown marks are not part of a plain-text snippet"
    assert len(match["snippet"]) <= len(ANSWER)
    bedtime = [i for i in (await search(remote_client, alice, "bedtime"))["items"] if i.get("match")]
    assert all("bedtime" in i["match"]["snippet"].lower() for i in bedtime)
    unlisted = await search(remote_client, alice, "nothing says this")
    assert unlisted["items"] == []


async def test_a_long_message_gives_a_window_around_the_match_with_ellipses(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    filler = " ".join(f"word{number}" for number in range(80))
    fake_llm.reply = f"{filler} then colchicine helps. {filler}"
    alice = await register(remote_client, name="alice")
    turn = await converse(remote_client, alice, "Anything else?", title="More")

    (item,) = (await search(remote_client, alice, "colchicine"))["items"]

    snippet = item["match"]["snippet"]
    assert item["id"] == turn["conversation_id"]
    assert snippet.startswith("…") and snippet.endswith("…")
    assert "then colchicine helps." in snippet
    assert len(snippet) < 240, "a window, not the whole message"
    words = set(filler.split()) | {"then", "colchicine", "helps."}
    assert set(snippet[1:-1].split()) <= words, "cut at word boundaries"


async def test_a_question_the_user_asked_is_found_too(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    fake_llm.reply = "Drink water."
    alice = await register(remote_client, name="alice")
    turn = await converse(remote_client, alice, "Is allopurinol safe   with my\nkidneys?", title="Kidneys")

    (item,) = (await search(remote_client, alice, "allopurinol safe with"))["items"]

    assert item["match"]["role"] == "user", "runs of whitespace in the text match a space in the query"
    assert item["match"]["message_id"] == turn["user_message"]["id"]
    assert item["match"]["snippet"] == "Is allopurinol safe with my kidneys?"


async def test_another_users_matching_conversation_is_never_returned(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    fake_llm.reply = ANSWER
    alice = await register(remote_client, name="alice")
    bob = await register(remote_client, name="bob")
    bobs = await converse(remote_client, bob, "Naproxen dose for gout?", title="Naproxen dose")
    alices = await converse(remote_client, alice, "What helps with gout?", title="Gout")

    alice_found = (await search(remote_client, alice, "naproxen"))["items"]
    bob_found = (await search(remote_client, bob, "naproxen"))["items"]

    assert [item["id"] for item in alice_found] == [alices["conversation_id"]]
    assert [item["id"] for item in bob_found] == [bobs["conversation_id"]]
    bobs_messages = {bobs["message"]["id"], bobs["user_message"]["id"]}
    assert alice_found[0]["match"]["message_id"] not in bobs_messages
    assert (await search(remote_client, alice, "Naproxen dose"))["items"] == [], "nor by bob's title or question"


async def test_regex_metacharacters_in_q_are_literal(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    fake_llm.reply = "Fine."
    alice = await register(remote_client, name="alice")
    turn = await converse(remote_client, alice, "Is 140/90 (mmHg) a.k.a. [stage 1] high? C++ $5 ^_^", title="BP")
    await converse(remote_client, alice, "Another thing entirely", title="Other")

    for q in ["(mmHg)", "a.k.a.", "[stage 1]", "1] high?", "C++", "$5 ^_^", "140/90 (MMHG)", "(", "["]:
        found = (await search(remote_client, alice, q))["items"]
        assert [item["id"] for item in found] == [turn["conversation_id"]], q
        assert found[0]["match"]["role"] == "user", q
    for q in [".*", "a.k.a.x", "\\", "a|Another", "1]?", "[0-9]+", "(?i)x{0}z"]:
        found = (await search(remote_client, alice, q))["items"]
        assert found == [], q


async def test_results_page_with_a_cursor(remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer) -> None:
    fake_llm.reply = "Use an ice pack on the joint."
    alice = await register(remote_client, name="alice")
    made = [
        (await converse(remote_client, alice, f"Question {n}", title=f"Title {n}"))["conversation_id"] for n in range(3)
    ]

    first = await search(remote_client, alice, "ice pack", limit=2)
    second = await search(remote_client, alice, "ice pack", limit=2, cursor=first["next_cursor"])

    assert [item["id"] for item in first["items"] + second["items"]] == made[::-1]
    assert second["next_cursor"] is None
    assert all(item["match"]["role"] == "assistant" for item in first["items"] + second["items"])


async def test_the_sidebar_search_shows_the_snippet_escaped_with_the_match_marked(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    fake_llm.reply = "Fine."
    alice = await register(remote_client, name="alice")
    turn = await converse(remote_client, alice, "<b>Naproxen</b> & ibuprofen <script>x()</script>?", title="Pain")
    await sign_in_browser(remote_client, alice)

    response = await remote_client.get("/chat/conversations", params={"q": "naproxen"}, headers=HTMX)

    assert response.status_code == 200, response.text
    html = response.text
    assert f'href="/chat/{turn["conversation_id"]}#msg-{turn["user_message"]["id"]}"' in html
    assert "&lt;b&gt;<mark>Naproxen</mark>&lt;/b&gt; &amp; ibuprofen &lt;script&gt;" in html
    assert "<script>" not in html and "<b>" not in html
    assert "Pain" in html
