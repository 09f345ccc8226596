"""The OpenAI-compatible ``/v1`` endpoint: OpenAI's error objects, the models, the conversation it stores
(or not) and the history it takes from the request, in-process; then the official ``openai`` client against
a real ``medchat serve`` with the fake model, citing an uploaded document."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from medchat.app import create_app
from medchat.settings import Settings
from tests.support.accounts import TEST_PASSWORD, RegisteredUser, RegisterUser
from tests.support.fake_llm import FakeLLMServer, running_fake_llm
from tests.support.serve import ServeProcess

COMPLETIONS = "/v1/chat/completions"
CONVERSATION_HEADER = "X-Medchat-Conversation-Id"
LEAFLET = (
    b"Hypertension leaflet.\n\nBlood pressure above 140/90 mmHg is raised and is called hypertension. "
    b"It is treated with lifestyle changes first: less salt, regular exercise and weight loss. "
    b"Medicines such as ACE inhibitors are added when the readings stay high.\n"
)
EMERGENCY = "I have crushing chest pain spreading to my left arm, what should I do?"
INGESTION_TIMEOUT_SECONDS = 60.0


def ask(text: str, **body: Any) -> dict[str, Any]:
    return {"model": "medchat", "messages": [{"role": "user", "content": text}], **body}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def create_key(client: AsyncTestClient[Litestar], user: RegisteredUser) -> str:
    response = await client.post("/api/v1/users/me/api-keys", json={"name": "sdk"}, headers=user.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


def openai_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert set(error) == {"message", "type", "param", "code"}
    return error


# --- in process ---------------------------------------------------------------------------------------------
async def test_failures_are_openai_error_objects(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    user = await register_user(client)
    key = await create_key(client, user)

    assert openai_error(await client.post(COMPLETIONS, json=ask("hi")), 401, "invalid_api_key")["type"] == (
        "authentication_error"
    )
    openai_error(await client.post(COMPLETIONS, json=ask("hi"), headers=user.headers), 401, "invalid_api_key")
    openai_error(await client.get("/v1/models", headers=bearer(key + "x")), 401, "invalid_api_key")

    unknown = await client.post(COMPLETIONS, json={**ask("hi"), "model": "gpt-4o"}, headers=bearer(key))
    assert "gpt-4o" in openai_error(unknown, 404, "model_not_found")["message"]
    last_not_user = {"model": "medchat", "messages": [{"role": "assistant", "content": "Hello"}]}
    refused = await client.post(COMPLETIONS, json=last_not_user, headers=bearer(key))
    assert openai_error(refused, 400, "validation_failed")["param"] == "messages"
    openai_error(
        await client.post(COMPLETIONS, json={"model": "medchat"}, headers=bearer(key)), 400, "validation_failed"
    )
    image = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}
    openai_error(
        await client.post(COMPLETIONS, json={"model": "medchat", "messages": [image]}, headers=bearer(key)),
        400,
        "validation_failed",
    )
    elsewhere = await client.post(COMPLETIONS, json=ask("hi"), headers={**bearer(key), CONVERSATION_HEADER: "nope"})
    openai_error(elsewhere, 404, "not_found")


async def test_models_are_listed_the_openai_way(client: AsyncTestClient[Litestar], register_user: RegisterUser) -> None:
    key = await create_key(client, await register_user(client))
    listed = await client.get("/v1/models", headers=bearer(key))
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["object"] == "list"
    assert [model["id"] for model in body["data"]] == ["medchat", "medchat-sources-only"]
    assert {model["object"] for model in body["data"]} == {"model"}


async def test_conversations_are_stored_unless_the_setting_says_not(
    settings: Settings, register_user: RegisterUser
) -> None:
    for store, kept_status in ((True, 200), (False, 404)):
        own = settings.model_copy(update={"openai_store_conversations": store})
        async with AsyncTestClient(app=create_app(own)) as client:
            user = await register_user(client)
            key = await create_key(client, user)
            answered = await client.post(COMPLETIONS, json=ask("What is hypertension?"), headers=bearer(key))
            assert answered.status_code == 200, answered.text
            conversation_id = answered.headers[CONVERSATION_HEADER]
            assert answered.json()["medchat"]["conversation_id"] == conversation_id
            assert answered.headers["X-Medchat-Message-Id"] == answered.json()["medchat"]["message_id"]
            stored = await client.get(f"/api/v1/chat/conversations/{conversation_id}", headers=user.headers)
            assert stored.status_code == kept_status, (store, stored.text)


async def test_earlier_messages_of_a_new_conversation_are_its_history(
    remote_client: AsyncTestClient[Litestar], register_user: RegisterUser, fake_llm: FakeLLMServer
) -> None:
    key = await create_key(remote_client, await register_user(remote_client))
    messages = [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "What is hypertension?"},
        {"role": "assistant", "content": "Raised blood pressure."},
        {"role": "user", "content": [{"type": "text", "text": "How is it treated?"}]},
    ]
    answered = await remote_client.post(
        COMPLETIONS, json={"model": "medchat", "messages": messages, "temperature": 0.2}, headers=bearer(key)
    )
    assert answered.status_code == 200, answered.text
    # The answer's request (streamed); the title's, made beside it, may come last.
    answer = next(request.body for request in reversed(fake_llm.chat_requests) if (request.body or {}).get("stream"))
    sent = [message["content"] for message in answer["messages"]]
    assert "What is hypertension?" in sent and "Raised blood pressure." in sent
    assert not any("pirate" in str(content) for content in sent), "system messages are not passed on"


# --- the openai client against medchat serve ------------------------------------------------------------------
@dataclass(frozen=True)
class Served:
    base_url: str
    api: httpx.Client
    """Signed in with the user's JWT (the JSON API)."""
    key: str
    document: dict[str, Any]

    def sdk(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.base_url}/v1", api_key=key or self.key, max_retries=0, timeout=60)


def wait_until_ready(api: httpx.Client, document_id: str) -> dict[str, Any]:
    """A bounded poll of the document's status, as the UI does (ingestion runs in the server's worker)."""
    deadline = time.monotonic() + INGESTION_TIMEOUT_SECONDS
    while True:
        document = api.get(f"/api/v1/documents/{document_id}").json()
        if document["status"] in ("ready", "failed") or time.monotonic() > deadline:
            assert document["status"] == "ready", document
            return document
        time.sleep(0.1)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir: Path = tmp_path_factory.mktemp("openai") / "data"
    with (
        running_fake_llm(reply="Blood pressure above 140/90 mmHg is raised [1].") as fake_llm,
        ServeProcess(
            data_dir,
            extra_env={
                "MEDCHAT_LLM_API_KEY": "test-key",
                "MEDCHAT_LLM_BASE_URL": fake_llm.base_url,
                "MEDCHAT_LLM_MODEL": "fake/test-model",
                "MEDCHAT_CHAT_FOLLOW_UP_QUERIES": "terms",
            },
        ) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as api,
    ):
        registered = api.post(
            "/api/v1/auth/register", json={"email": "gp@example.org", "password": TEST_PASSWORD, "full_name": "GP"}
        )
        assert registered.status_code == 201, registered.text
        api.headers["Authorization"] = f"Bearer {registered.json()['access_token']}"
        key = api.post("/api/v1/users/me/api-keys", json={"name": "sdk"})
        assert key.status_code == 201, key.text
        uploaded = api.post(
            "/api/v1/documents/", files={"file": ("hypertension.txt", LEAFLET, "text/plain")}, data={"scope": "private"}
        )
        assert uploaded.status_code == 202, uploaded.text
        document = wait_until_ready(api, uploaded.json()["id"])
        yield Served(server.base_url, api, key.json()["key"], document)


@pytest.mark.slow
def test_the_openai_client_lists_the_models(served: Served) -> None:
    assert [model.id for model in served.sdk().models.list()] == ["medchat", "medchat-sources-only"]


@pytest.mark.slow
def test_an_answer_cites_the_document_in_its_text_and_its_extension(served: Served) -> None:
    raw = served.sdk().chat.completions.with_raw_response.create(
        model="medchat", messages=[{"role": "user", "content": "When is blood pressure raised?"}]
    )
    completion = raw.parse()
    text = completion.choices[0].message.content or ""
    link = f"{served.base_url}/documents/{served.document['id']}/file"
    assert text.startswith("Blood pressure above 140/90 mmHg is raised [1].")
    assert f"\n\nSources:\n[1] {served.document['title']}" in text and f" — {link}" in text
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    medchat = (completion.model_extra or {})["medchat"]
    assert medchat["sources"][0]["n"] == 1 and medchat["sources"][0]["document_id"] == served.document["id"]
    assert medchat["sources"][0]["url"] == link and "140/90" in medchat["sources"][0]["text"]
    assert raw.headers[CONVERSATION_HEADER] == medchat["conversation_id"]
    assert raw.headers["X-Medchat-Message-Id"] == medchat["message_id"]


@pytest.mark.slow
def test_a_streamed_answer_ends_with_the_sources_and_the_extension(served: Served) -> None:
    chunks = list(
        served.sdk().chat.completions.create(
            model="medchat", messages=[{"role": "user", "content": "When is blood pressure raised?"}], stream=True
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text.startswith("Blood pressure above 140/90 mmHg is raised [1].")
    assert f"Sources:\n[1] {served.document['title']}" in text
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert (last.model_extra or {})["medchat"]["sources"][0]["document_id"] == served.document["id"]


@pytest.mark.slow
def test_an_emergency_answer_starts_with_the_notice(served: Served) -> None:
    for stream in (False, True):
        if stream:
            chunks = list(
                served.sdk().chat.completions.create(
                    model="medchat", messages=[{"role": "user", "content": EMERGENCY}], stream=True
                )
            )
            text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
            notices = (chunks[-1].model_extra or {})["medchat"]["notices"]
        else:
            completion = served.sdk().chat.completions.create(
                model="medchat", messages=[{"role": "user", "content": EMERGENCY}]
            )
            text = completion.choices[0].message.content or ""
            notices = (completion.model_extra or {})["medchat"]["notices"]
        assert len(notices) == 1 and notices[0]
        assert text.startswith(notices[0]), (stream, text[:200])


@pytest.mark.slow
def test_a_revoked_key_and_an_unknown_model_are_refused(served: Served) -> None:
    made = served.api.post("/api/v1/users/me/api-keys", json={"name": "old"}).json()
    assert served.sdk(made["key"]).models.list().data
    assert served.api.delete(f"/api/v1/users/me/api-keys/{made['id']}").status_code == 204
    with pytest.raises(openai.AuthenticationError):
        served.sdk(made["key"]).models.list()
    with pytest.raises(openai.NotFoundError) as unknown:
        served.sdk().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert unknown.value.code == "model_not_found"


@pytest.mark.slow
def test_the_header_continues_a_stored_conversation(served: Served) -> None:
    sdk = served.sdk()
    first = sdk.chat.completions.with_raw_response.create(
        model="medchat", messages=[{"role": "user", "content": "What is hypertension?"}]
    )
    conversation_id = first.headers[CONVERSATION_HEADER]
    second = sdk.chat.completions.with_raw_response.create(
        model="medchat-sources-only",
        messages=[{"role": "user", "content": "How is it treated?"}],
        extra_headers={CONVERSATION_HEADER: conversation_id},
    )
    assert second.headers[CONVERSATION_HEADER] == conversation_id
    assert "Quoted from the sources" in (second.parse().choices[0].message.content or "")
    stored = served.api.get(f"/api/v1/chat/conversations/{conversation_id}").json()
    assert [message["content"] for message in stored["messages"] if message["role"] == "user"] == [
        "What is hypertension?",
        "How is it treated?",
    ]
    assert stored["messages"][-1]["model"] == "sources-only"


async def test_a_model_failure_is_a_503_error_object_or_the_streams_last_event(
    remote_client: AsyncTestClient[Litestar], register_user: RegisterUser, fake_llm: FakeLLMServer
) -> None:
    key = await create_key(remote_client, await register_user(remote_client))
    fake_llm.fail_with("status_500")
    failed = await remote_client.post(COMPLETIONS, json=ask("What is hypertension?"), headers=bearer(key))
    assert openai_error(failed, 503, "llm_unavailable")["type"] == "server_error"
    assert failed.headers[CONVERSATION_HEADER]

    fake_llm.fail_with("cut_stream")
    streamed = await remote_client.post(COMPLETIONS, json=ask("What is asthma?", stream=True), headers=bearer(key))
    assert streamed.status_code == 200, streamed.text
    events = [line[len("data: ") :] for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert "[DONE]" not in events
    assert json.loads(events[0])["choices"][0]["delta"]["role"] == "assistant"
    assert json.loads(events[-1])["error"]["code"] == "llm_unavailable"


OPENAI_JS = Path(__file__).parents[1] / "support" / "openai_js"


@pytest.mark.slow
def test_openai_s_javascript_client_is_answered_too(served: Served) -> None:
    """A second, independent client: OpenAI's own JavaScript SDK (``tests/support/openai_js``, installed from its
    lock by ``scripts/test``) lists the models, asks with and without streaming, and is refused a wrong key."""
    node = shutil.which("node")
    if node is None or not (OPENAI_JS / "node_modules" / "openai").is_dir():
        pytest.skip("OpenAI's JavaScript client is not installed (scripts/test installs it with npm ci)")
    finished = subprocess.run(
        [node, "check.mjs", served.base_url, served.key, "When is blood pressure raised?"],
        cwd=OPENAI_JS,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    seen = json.loads(finished.stdout)
    assert seen["models"] == ["medchat", "medchat-sources-only"]
    assert seen["conversationId"]
    for text in (seen["answer"], seen["streamed"]):
        assert text.startswith("Blood pressure above 140/90 mmHg is raised [1].")
        assert f"Sources:\n[1] {served.document['title']}" in text
    assert seen["finishReason"] == seen["streamedFinishReason"] == "stop"
    assert seen["chunks"] > 2
    assert seen["refused"] == {"status": 401, "name": "AuthenticationError"}


async def test_the_owners_chat_budget_is_a_429_with_retry_after(
    settings: Settings, register_user: RegisterUser
) -> None:
    """A key spends its owner's hourly question budget, as the web chat does."""
    own = settings.model_copy(update={"messages_per_hour_user": 1})
    async with AsyncTestClient(app=create_app(own)) as client:
        key = await create_key(client, await register_user(client))
        first = await client.post(COMPLETIONS, json=ask("What is hypertension?"), headers=bearer(key))
        assert first.status_code == 200, first.text
        second = await client.post(COMPLETIONS, json=ask("And how is it treated?"), headers=bearer(key))
        error = openai_error(second, 429, "rate_limited")
        assert error["type"] == "rate_limit_error"
        assert int(second.headers["Retry-After"]) > 0
