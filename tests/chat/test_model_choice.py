"""Model choice: two models configured against the HTTP fake model, asked by name on the JSON API, the
pages and ``/v1``; the admin's role rules hide a model from a role and refuse it everywhere."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from medchat.app import create_app
from medchat.llm import ModelRegistry, build_model_registry
from medchat.settings import Settings
from tests.support.accounts import RegisteredUser, RegisterUser, sign_in
from tests.support.fake_llm import FakeLLMServer

FIRST, SECOND = "fake/test-model", "fake/second-model"
SECOND_NAME = f"medchat/{SECOND}"
NAMES = ["medchat", SECOND_NAME, "medchat-sources-only"]


@pytest.fixture
async def two_models(remote_settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The app with the fake remote model serving two models (the default named again in the list)."""
    configured = remote_settings.model_copy(update={"llm_models": [SECOND, FIRST]})
    async with AsyncTestClient(app=create_app(configured)) as client:
        yield client


def answered_with(fake_llm: FakeLLMServer) -> str:
    """The model id the latest answer asked for (a streamed request; titles are asked apart, not streamed)."""
    return str([request for request in fake_llm.chat_requests if request.body.get("stream")][-1].body["model"])


def title_requests(fake_llm: FakeLLMServer) -> list[Any]:
    return [request for request in fake_llm.chat_requests if not request.body.get("stream")]


async def next_title_model(fake_llm: FakeLLMServer, *, after: int, within_seconds: float = 10.0) -> str:
    """The model id of the first title request after the first ``after`` (titles are written in the background)."""
    deadline = asyncio.get_running_loop().time() + within_seconds
    while len(title_requests(fake_llm)) <= after:
        assert asyncio.get_running_loop().time() < deadline, "no title was asked for"
        await asyncio.sleep(0.05)
    return str(title_requests(fake_llm)[after].body["model"])


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def api_key(client: AsyncTestClient[Litestar], user: RegisteredUser) -> str:
    made = await client.post("/api/v1/users/me/api-keys", json={"name": "models"}, headers=user.headers)
    assert made.status_code == 201, made.text
    return str(made.json()["key"])


async def ask(client: AsyncTestClient[Litestar], user: RegisteredUser, **body: Any) -> Any:
    return await client.post(
        "/api/v1/chat/messages", json={"content": "What is hypertension?", **body}, headers=user.headers
    )


async def restrict(client: AsyncTestClient[Litestar], admin: RegisteredUser, model: str, roles: list[str]) -> Any:
    return await client.put("/api/v1/admin/model-access", json={"model": model, "roles": roles}, headers=admin.headers)


def test_the_setting_is_a_comma_separated_list_holding_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDCHAT_LLM_MODEL", "a/default")
    monkeypatch.setenv("MEDCHAT_LLM_MODELS", " b/two, a/default ,b/two,")
    assert Settings.load().offered_llm_models == ["b/two", "a/default"]
    monkeypatch.setenv("MEDCHAT_LLM_MODELS", "b/two")
    assert Settings.load().offered_llm_models == ["a/default", "b/two"]
    monkeypatch.delenv("MEDCHAT_LLM_MODELS")
    assert Settings.load().offered_llm_models == ["a/default"]


async def test_the_registry_builds_one_provider_per_model_sharing_the_client(remote_settings: Settings) -> None:
    registry: ModelRegistry = build_model_registry(remote_settings.model_copy(update={"llm_models": [SECOND]}))
    try:
        assert registry.names == NAMES
        default, second, sources_only = registry
        assert (default.is_default, default.model_id, default.kind) == (True, FIRST, "remote")
        assert (second.model_id, second.kind, second.label) == (SECOND, "remote", f"{SECOND} via 127.0.0.1")
        assert sources_only.kind == "sources-only" and "no language model" in sources_only.label
        assert second.provider._client is default.provider._client  # one HTTP client (connection pool)
    finally:
        await registry.aclose()
    assert default.provider._client.is_closed


async def test_a_question_names_its_model_and_the_answer_keeps_it(
    two_models: AsyncTestClient[Litestar], register_user: RegisterUser, fake_llm: FakeLLMServer
) -> None:
    user = await register_user(two_models)
    listed = await two_models.get("/api/v1/chat/models", headers=user.headers)
    assert listed.status_code == 200, listed.text
    assert [model["name"] for model in listed.json()] == NAMES
    assert [model["default"] for model in listed.json()] == [True, False, False]

    titles_before = len(title_requests(fake_llm))
    answered = await ask(two_models, user, model=SECOND_NAME)
    assert answered.status_code == 201, answered.text
    assert answered_with(fake_llm) == SECOND
    assert await next_title_model(fake_llm, after=titles_before) == SECOND, "the chosen model writes the title too"
    message = answered.json()["message"]
    assert (message["model"], message["model_label"]) == (SECOND, f"{SECOND} via 127.0.0.1")
    stored = await two_models.get(
        f"/api/v1/chat/conversations/{answered.json()['conversation_id']}", headers=user.headers
    )
    assert stored.json()["messages"][-1]["model"] == SECOND

    by_default = await ask(two_models, user, conversation_id=answered.json()["conversation_id"])
    assert by_default.status_code == 201, by_default.text
    assert answered_with(fake_llm) == FIRST
    assert by_default.json()["message"]["model"] == FIRST

    unknown = await ask(two_models, user, model="medchat/gpt-5")
    assert unknown.status_code == 404 and unknown.json()["code"] == "model_not_found", unknown.text


async def test_a_role_refused_a_model_neither_sees_nor_uses_it(
    two_models: AsyncTestClient[Litestar],
    register_user: RegisterUser,
    register_admin: RegisterUser,
    fake_llm: FakeLLMServer,
) -> None:
    user, admin = await register_user(two_models), await register_admin(two_models)
    user_key, admin_key = await api_key(two_models, user), await api_key(two_models, admin)

    overview = await two_models.get("/api/v1/admin/model-access", headers=admin.headers)
    assert overview.status_code == 200, overview.text
    assert overview.json()["roles"] == ["user", "admin"]
    assert [(m["name"], m["roles"], m["restricted"]) for m in overview.json()["models"]] == [
        (name, ["user", "admin"], False) for name in NAMES
    ]
    assert (await two_models.get("/api/v1/admin/model-access", headers=user.headers)).status_code == 403
    assert (await restrict(two_models, user, SECOND_NAME, ["user"])).status_code == 403

    restricted = await restrict(two_models, admin, SECOND_NAME, ["admin"])
    assert restricted.status_code == 200, restricted.text
    assert (restricted.json()["roles"], restricted.json()["restricted"]) == (["admin"], True)

    # The user: not listed on either API, refused on either.
    listed = await two_models.get("/api/v1/chat/models", headers=user.headers)
    assert [model["name"] for model in listed.json()] == ["medchat", "medchat-sources-only"]
    v1_listed = await two_models.get("/v1/models", headers=bearer(user_key))
    assert [model["id"] for model in v1_listed.json()["data"]] == ["medchat", "medchat-sources-only"]
    asked_before = len([request for request in fake_llm.chat_requests if request.body.get("stream")])
    refused = await ask(two_models, user, model=SECOND_NAME)
    assert refused.status_code == 403 and refused.json()["code"] == "model_not_allowed", refused.text
    completion = {"model": SECOND_NAME, "messages": [{"role": "user", "content": "What is hypertension?"}]}
    v1_refused = await two_models.post("/v1/chat/completions", json=completion, headers=bearer(user_key))
    assert v1_refused.status_code == 404, v1_refused.text
    assert v1_refused.json()["error"]["code"] == "model_not_found"
    assert SECOND_NAME not in v1_refused.json()["error"]["message"].split("the models are:")[1]
    asked_after = len([request for request in fake_llm.chat_requests if request.body.get("stream")])
    assert asked_after == asked_before, "a refused model is never asked"
    conversations = (await two_models.get("/api/v1/chat/conversations", headers=user.headers)).json()["items"]
    assert conversations == [], "nothing is stored for a refused question"

    # The admin: the same names on /api/v1 and /v1, and the model answers.
    admin_names = [
        model["name"] for model in (await two_models.get("/api/v1/chat/models", headers=admin.headers)).json()
    ]
    v1_admin = await two_models.get("/v1/models", headers=bearer(admin_key))
    assert admin_names == [model["id"] for model in v1_admin.json()["data"]] == NAMES
    answered = await two_models.post("/v1/chat/completions", json=completion, headers=bearer(admin_key))
    assert answered.status_code == 200, answered.text
    assert answered_with(fake_llm) == SECOND

    # Every role keeps a model; unknown roles and models are refused.
    assert (await restrict(two_models, admin, "medchat", ["admin"])).status_code == 200
    left_none = await restrict(two_models, admin, "medchat-sources-only", ["admin"])
    assert left_none.status_code == 400 and "user" in left_none.json()["detail"], left_none.text
    assert (await restrict(two_models, admin, "medchat", ["nurse"])).status_code == 400
    assert (await restrict(two_models, admin, "medchat/gpt-5", ["user"])).status_code == 404
    # Without a model, a user whose default is withheld gets the first model the role may use.
    fallback = await ask(two_models, user)
    assert fallback.status_code == 201, fallback.text
    assert fallback.json()["message"]["model"] == "sources-only"


def picker_options(html: str) -> list[tuple[str, bool]]:
    select = re.search(r'<select id="composer-model" name="model"[^>]*>(.*?)</select>', html, re.S)
    assert select, "no model picker"
    return [
        (value, bool(chosen)) for value, chosen in re.findall(r'<option value="([^"]+)"( selected)?', select.group(1))
    ]


async def test_the_composer_offers_the_allowed_models_and_works_without_javascript(
    two_models: AsyncTestClient[Litestar],
    register_user: RegisterUser,
    register_admin: RegisterUser,
    fake_llm: FakeLLMServer,
) -> None:
    admin = await register_admin(two_models)
    user = await register_user(two_models)
    await sign_in(two_models, user.email, user.password)
    page = await two_models.get("/chat")
    assert picker_options(page.text) == [(NAMES[0], True), (NAMES[1], False), (NAMES[2], False)]

    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert csrf
    posted = await two_models.post(
        "/chat/messages",
        data={"content": "What is hypertension?", "conversation_id": "", "model": SECOND_NAME, "_csrf_token": csrf[1]},
        follow_redirects=False,
    )
    assert posted.status_code == 303, posted.text
    assert answered_with(fake_llm) == SECOND
    conversation = await two_models.get(posted.headers["location"])
    assert f'<span class="model-label">{SECOND} via 127.0.0.1</span>' in conversation.text
    # The conversation's picker keeps the model of its latest answer.
    assert (SECOND_NAME, True) in picker_options(conversation.text)

    assert (await restrict(two_models, admin, SECOND_NAME, ["admin"])).status_code == 200
    conversation = await two_models.get(posted.headers["location"])
    assert [value for value, _ in picker_options(conversation.text)] == ["medchat", "medchat-sources-only"]
    assert (("medchat", True)) in picker_options(conversation.text)
    refused = await two_models.post(
        "/chat/messages",
        data={"content": "And again?", "conversation_id": "", "model": SECOND_NAME, "_csrf_token": csrf[1]},
        follow_redirects=False,
    )
    assert refused.status_code == 403
    assert (await restrict(two_models, admin, "medchat-sources-only", ["admin"])).status_code == 200
    single = await two_models.get("/chat")
    assert 'id="composer-model"' not in single.text, "one model: no picker"


async def test_the_admin_page_sets_the_roles_of_a_model(
    two_models: AsyncTestClient[Litestar], register_user: RegisterUser, register_admin: RegisterUser
) -> None:
    user = await register_user(two_models)
    await sign_in(two_models, user.email, user.password)
    assert (await two_models.get("/admin/models", follow_redirects=False)).status_code in (403, 303)
    two_models.cookies.clear()

    admin = await register_admin(two_models)
    await sign_in(two_models, admin.email, admin.password)
    page = await two_models.get("/admin/models")
    assert page.status_code == 200, page.text
    assert 'href="/admin/models" aria-current="page"' in page.text
    assert all(f'value="{name}"' in page.text for name in NAMES)
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert csrf

    saved = await two_models.post(
        "/admin/models", data={"model": SECOND_NAME, "roles": "admin", "_csrf_token": csrf[1]}, follow_redirects=False
    )
    assert saved.status_code == 303, saved.text
    shown = await two_models.get(saved.headers["location"])
    assert f"Saved who may use {SECOND_NAME}" in shown.text
    row = re.search(rf'<tr data-model="{re.escape(SECOND_NAME)}">(.*?)</tr>', shown.text, re.S)
    assert row and 'value="admin" checked' in row[1] and 'value="user" checked' not in row[1]
    overview = (await two_models.get("/api/v1/admin/model-access", headers=admin.headers)).json()
    assert next(m for m in overview["models"] if m["name"] == SECOND_NAME)["roles"] == ["admin"]

    # Nobody left for "medchat" and "medchat-sources-only" would leave users without a model: shown, not saved.
    await two_models.post("/admin/models", data={"model": "medchat", "_csrf_token": csrf[1]})
    refused = await two_models.post("/admin/models", data={"model": "medchat-sources-only", "_csrf_token": csrf[1]})
    assert refused.status_code == 400
    assert "would have no model left" in refused.text
    overview = (await two_models.get("/api/v1/admin/model-access", headers=admin.headers)).json()
    assert next(m for m in overview["models"] if m["name"] == "medchat-sources-only")["restricted"] is False
