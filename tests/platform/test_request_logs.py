"""Request logs: one access line per request, and the request's ids on every line logged during it.

The app runs in process on the real stores with the real HTTP fake model; its log lines are read from
the one handler ``configure_logging`` installs on the root logger, whose stream is swapped for a buffer.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from medchat.settings import Settings
from tests.support.accounts import RegisteredUser, RegisterUser
from tests.support.app import engine_of, in_app_loop
from tests.support.fake_llm import FakeLLMServer, running_fake_llm

QUESTION = "Is a reading of 150/95 on three mornings too high for me?"
REPLY = "Blood pressure above 140/90 mmHg is raised [1]."
MESSAGES_ROUTE = "/api/v1/chat/messages"
ACCESS_EVENT = "http request"
GENERATED_REQUEST_ID = re.compile(r"[0-9a-f]{32}")
TRACE_ID = re.compile(r"[0-9a-f]{32}")
SPAN_ID = re.compile(r"[0-9a-f]{16}")
PROBES = {
    "/healthz": "/healthz",
    "/readyz": "/readyz",
    "/ping": "/ping",
    "/metrics": "/metrics",
    "/static/css/app.css": "/static/{file_path}",
}


@pytest.fixture
def log_format() -> str:
    return "json"


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    with running_fake_llm(reply=REPLY) as server:
        yield server


@pytest.fixture
def settings(settings: Settings, fake_llm: FakeLLMServer, log_format: str) -> Settings:
    """The test settings in ``log_format``, answering with the fake model (one retry)."""
    return settings.model_copy(
        update={
            "log_format": log_format,
            "llm_api_key": "test-key",
            "llm_base_url": fake_llm.base_url,
            "llm_model": "fake/test-model",
            "llm_max_retries": 1,
            "llm_timeout_seconds": 10.0,
        }
    )


@pytest.fixture
def log_output(client: AsyncTestClient[Litestar]) -> Iterator[io.StringIO]:
    """What the app logs from now on (the lines of its start-up are left out)."""
    [handler] = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def json_lines(output: io.StringIO) -> list[dict[str, Any]]:
    """Every line parsed: in the JSON format each line is one JSON object, or this fails."""
    return [json.loads(line) for line in output.getvalue().splitlines() if line.strip()]


def access_lines(lines: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["event"] == ACCESS_EVENT and line.get("request_id") == request_id]


def expected_user_hash(settings: Settings, user_id: str) -> str:
    """HMAC-SHA256 of the user id under the log key derived from the app's secret, first 16 hex digits."""
    log_key = hmac.new(settings.signing_key.encode(), b"medchat:log-user", hashlib.sha256).digest()
    return hmac.new(log_key, user_id.encode(), hashlib.sha256).hexdigest()[:16]


async def ask(client: AsyncTestClient[Litestar], user: RegisteredUser) -> str:
    """Ask ``QUESTION``, wait for the answer and the title the request started; the request's id."""
    response = await client.post(MESSAGES_ROUTE, json={"content": QUESTION}, headers=user.headers)
    assert response.status_code == 201, response.text
    await in_app_loop(client, engine_of(client).wait_background())
    return response.headers["X-Request-ID"]


async def test_a_chat_request_is_one_access_line_and_every_line_of_it_carries_its_ids(
    client: AsyncTestClient[Litestar],
    register_user: RegisterUser,
    fake_llm: FakeLLMServer,
    settings: Settings,
    log_output: io.StringIO,
) -> None:
    user = await register_user(client)
    log_output.truncate(0)
    log_output.seek(0)
    # The first model call fails once: its retry warning is logged by a task the request started.
    fake_llm.fail_with("status_500", times=1)

    request_id = await ask(client, user)

    lines = json_lines(log_output)
    assert GENERATED_REQUEST_ID.fullmatch(request_id)
    [access] = access_lines(lines, request_id)
    assert [line for line in lines if line.get("route") == MESSAGES_ROUTE] == [access]
    assert access["level"] == "info"
    assert (access["method"], access["route"], access["status"]) == ("POST", MESSAGES_ROUTE, 201)
    assert isinstance(access["duration_ms"], float) and access["duration_ms"] > 0
    assert TRACE_ID.fullmatch(access["trace_id"]) and int(access["trace_id"], 16) != 0
    assert SPAN_ID.fullmatch(access["span_id"]) and int(access["span_id"], 16) != 0
    assert access["user_hash"] == expected_user_hash(settings, user.id)
    assert user.id not in json.dumps(access)

    others = [line for line in lines if line.get("request_id") == request_id and line is not access]
    assert "llm request failed; retrying" in [line["event"] for line in others]
    for line in others:
        assert (line["trace_id"], line["span_id"]) == (access["trace_id"], access["span_id"]), line

    everything = log_output.getvalue()
    for secret in (QUESTION, REPLY, user.access_token, user.email):
        assert secret not in everything


async def test_the_route_template_is_logged_not_the_path_with_its_ids(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, log_output: io.StringIO
) -> None:
    user = await register_user(client)
    missing = "0123456789abcdef01234567"

    response = await client.get(f"/api/v1/chat/conversations/{missing}?token=hunter2", headers=user.headers)

    assert response.status_code == 404
    [access] = access_lines(json_lines(log_output), response.headers["X-Request-ID"])
    assert (access["route"], access["status"]) == ("/api/v1/chat/conversations/{conversation_id}", 404)
    assert missing not in log_output.getvalue()
    assert "hunter2" not in log_output.getvalue()


async def test_a_sane_incoming_request_id_is_kept_and_any_other_replaced(
    client: AsyncTestClient[Litestar], log_output: io.StringIO
) -> None:
    kept = await client.get("/api/v1/users/me", headers={"X-Request-ID": "edge-7f3a:91.b_2"})
    replaced = await client.get("/api/v1/users/me", headers={"X-Request-ID": 'forged" level="error'})

    assert kept.headers["X-Request-ID"] == "edge-7f3a:91.b_2"
    assert GENERATED_REQUEST_ID.fullmatch(replaced.headers["X-Request-ID"])
    lines = json_lines(log_output)
    [kept_access] = access_lines(lines, "edge-7f3a:91.b_2")
    [replaced_access] = access_lines(lines, replaced.headers["X-Request-ID"])
    assert kept_access["status"] == replaced_access["status"] == 401
    assert "user_hash" not in kept_access  # anonymous
    assert "forged" not in log_output.getvalue()


async def test_probes_and_static_files_are_logged_at_debug_only(
    client: AsyncTestClient[Litestar], log_output: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger's level, to see that the lines exist and at which level

    responses = {path: await client.get(path) for path in PROBES}

    lines = json_lines(log_output)
    for path, route in PROBES.items():
        response = responses[path]
        assert response.status_code == 200, path
        [access] = access_lines(lines, response.headers["X-Request-ID"])
        assert (access["route"], access["level"]) == (route, "debug"), path
    assert not [line for line in lines if line["event"] == ACCESS_EVENT and line["level"] != "debug"]


@pytest.mark.parametrize("log_format", ["console"])
async def test_the_console_format_has_one_key_value_access_line(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, log_output: io.StringIO
) -> None:
    user = await register_user(client)

    request_id = await ask(client, user)

    lines = [line for line in log_output.getvalue().splitlines() if f"request_id={request_id}" in line]
    [access] = [line for line in lines if ACCESS_EVENT in line]
    assert f"route={MESSAGES_ROUTE}" in access
    assert "status=201" in access
    assert "method=POST" in access
    assert re.search(r"trace_id=[0-9a-f]{32}\b", access)
    assert QUESTION not in log_output.getvalue()
