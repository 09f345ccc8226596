"""Scope limits through the app: requests the organisation marks out of scope are refused with the text
from the settings, without retrieval or any model call; the chat page says what medchat is for."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from medchat.app import create_app
from medchat.settings import Settings, SettingsError
from tests.support.accounts import register, sign_in_browser
from tests.support.app import engine_of, in_app_loop
from tests.support.fake_llm import FakeLLMServer
from tests.support.sse import parse_sse

API = "/api/v1/chat"
DOSING = "How many mg of paracetamol should I give my 4 year old?"
GENERAL = "What is the maximum daily dose of ibuprofen?"


def model_calls(fake_llm: FakeLLMServer) -> list[object]:
    return [r for r in fake_llm.chat_requests if r.body]


async def test_by_default_a_dose_for_a_particular_person_is_refused_without_asking_the_model(
    remote_settings: Settings, fake_llm: FakeLLMServer
) -> None:
    async with AsyncTestClient(app=create_app(remote_settings)) as client:
        user = await register(client)
        response = await client.post(
            f"{API}/messages", json={"content": DOSING}, headers={**user.headers, "Accept": "text/event-stream"}
        )
        await in_app_loop(client, engine_of(client).wait_background())
        events = parse_sse(response.text)
        assert [name for name, _ in events] == ["meta", "sources", "token", "done"]
        message = events[-1][1]["message"]
        assert message["safety"]["scope_refusal"] == "individual_dosing"
        assert events[0][1]["message"]["safety"]["scope_refusal"] == "individual_dosing", "known from the start"
        assert message["content"].startswith("medchat cannot work out a dose for a particular person.")
        assert message["grounded"] is False and message["sources"] == []
        assert model_calls(fake_llm) == [], "neither an answer nor a title was asked of the model"

        general = await client.post(f"{API}/messages", json={"content": GENERAL}, headers=user.headers)
        assert general.json()["message"]["safety"]["scope_refusal"] is None
        assert model_calls(fake_llm), "dose information in general is answered"

        csrf = await sign_in_browser(client, user)
        page = await client.get(f"/chat/{message['conversation_id']}", headers=csrf)
        assert 'class="alert alert-info scope-refusal" data-topic="individual_dosing"' in page.text
        refused_answer = page.text.split(f'id="msg-{message["id"]}"', 1)[1].split("</article>", 1)[0]
        assert "Not backed by" not in refused_answer, "a refusal is not presented as an ungrounded answer"


async def test_the_refusal_text_and_the_topics_come_from_the_settings(
    remote_settings: Settings, fake_llm: FakeLLMServer
) -> None:
    custom = "Our clinic does not give personal medical advice here. Please call the practice on 01234 567890."
    settings = remote_settings.model_copy(
        update={"out_of_scope_topics": ["personal_diagnosis"], "out_of_scope_message": custom}
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        user = await register(client)
        refused = (
            await client.post(f"{API}/messages", json={"content": "Do I have diabetes?"}, headers=user.headers)
        ).json()["message"]
        assert refused["content"] == custom
        assert refused["safety"]["scope_refusal"] == "personal_diagnosis"
        assert model_calls(fake_llm) == []

        answered = (await client.post(f"{API}/messages", json={"content": DOSING}, headers=user.headers)).json()
        assert answered["message"]["safety"]["scope_refusal"] is None, "individual_dosing is no longer refused"
        assert model_calls(fake_llm)


async def test_an_emergency_keeps_its_notice_when_the_request_is_also_out_of_scope(
    remote_settings: Settings, fake_llm: FakeLLMServer
) -> None:
    async with AsyncTestClient(app=create_app(remote_settings)) as client:
        user = await register(client)
        question = "My son swallowed a whole bottle of paracetamol, how many mg is too much for him?"
        message = (await client.post(f"{API}/messages", json={"content": question}, headers=user.headers)).json()[
            "message"
        ]
    assert message["safety"]["emergency"] is True
    assert "overdose_poisoning" in message["safety"]["categories"]
    assert message["safety"]["scope_refusal"] == "individual_dosing"
    assert model_calls(fake_llm) == []


async def test_an_unknown_topic_stops_start_up(settings: Settings) -> None:
    broken = settings.model_copy(update={"out_of_scope_topics": ["individual_dosing", "astrology"]})
    with pytest.raises(ExceptionGroup) as raised:  # the lifespan's task group wraps it
        async with AsyncTestClient(app=create_app(broken)):
            pass
    errors = raised.value.subgroup(SettingsError)
    assert errors is not None
    message = str(next(iter(_leaves(errors))))
    assert message.startswith("MEDCHAT_OUT_OF_SCOPE_TOPICS: unknown topic(s) astrology; known: individual_dosing")


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    found: list[BaseException] = []
    for error in group.exceptions:
        found += _leaves(error) if isinstance(error, BaseExceptionGroup) else [error]
    return found


def test_the_topics_are_a_comma_separated_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDCHAT_OUT_OF_SCOPE_TOPICS", "individual_dosing, medication_change")
    assert Settings.load().out_of_scope_topics == ["individual_dosing", "medication_change"]
    monkeypatch.setenv("MEDCHAT_OUT_OF_SCOPE_TOPICS", "")
    assert Settings.load().out_of_scope_topics == []
    monkeypatch.delenv("MEDCHAT_OUT_OF_SCOPE_TOPICS")
    assert Settings.load().out_of_scope_topics == ["individual_dosing"]


async def test_the_chat_page_carries_a_standing_notice_near_the_thread(
    client: AsyncTestClient, settings: Settings
) -> None:
    user = await register(client)
    csrf = await sign_in_browser(client, user)
    page = await client.get("/chat", headers=csrf)
    notice = page.text.split('id="scope-notice"', 1)[1].split("</p>", 1)[0]
    assert "medchat informs; it does not diagnose." in notice
    assert f"In an emergency call {settings.emergency_number}." in notice
    assert page.text.index('id="scope-notice"') < page.text.index('id="thread"')
