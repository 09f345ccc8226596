"""Debian's Prometheus scrapes a running ``medchat serve`` and answers queries about it through its HTTP API."""

from __future__ import annotations

import ctypes
import math
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from medchat.platform.embedded import PR_SET_PDEATHSIG, free_port
from tests.support.accounts import PASSWORD
from tests.support.fake_llm import running_fake_llm
from tests.support.serve import ServeProcess

pytestmark = pytest.mark.slow

PROMETHEUS = Path("/usr/bin/prometheus")
MODEL = "fake/scraped-model"
CHAT_PATH = "/api/v1/chat/messages"
QUERY_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.2
QUESTIONS = ("How often should blood pressure be checked?", "What is a normal resting heart rate?")


def _stop_with_the_test_run() -> None:
    """In the child before exec: a killed pytest must not leave Prometheus running."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@contextmanager
def running_prometheus(target: str, directory: Path) -> Iterator[str]:
    """Prometheus scraping ``target`` (host:port) every second, storing in ``directory``; yields its API URL."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: medchat-web\n"
        "    metrics_path: /metrics\n"
        f"    static_configs: [{{targets: ['{target}']}}]\n"
    )
    address = f"127.0.0.1:{free_port()}"
    with (directory / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'tsdb'}",
                f"--web.listen-address={address}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_stop_with_the_test_run,  # noqa: PLW1509 - needed for PR_SET_PDEATHSIG
        )
    try:
        yield f"http://{address}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def query_until_answered(prometheus: str, promql: str) -> list[dict[str, Any]]:
    """The result of an instant query, once Prometheus has scraped enough to give one (a bounded poll)."""
    deadline = time.monotonic() + QUERY_TIMEOUT_SECONDS
    last = "Prometheus never answered"
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=5).json()
        except httpx.HTTPError as error:
            last = f"{type(error).__name__}: {error}"
        else:
            assert answer["status"] == "success", answer
            if answer["data"]["result"]:
                return answer["data"]["result"]
            last = f"an empty result: {answer}"
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"{promql!r} gave no result within {QUERY_TIMEOUT_SECONDS} s; last: {last}")


def only_value(result: list[dict[str, Any]]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def ask_questions(server: ServeProcess) -> int:
    """Ask every question of ``QUESTIONS``; returns the output tokens the answers report."""
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        registered = http.post("/api/v1/auth/register", json={"email": "scraped@example.org", "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        http.headers["Authorization"] = f"Bearer {registered.json()['access_token']}"
        output_tokens = 0
        for question in QUESTIONS:
            response = http.post(CHAT_PATH, json={"content": question})
            assert response.status_code == 201, response.text
            output_tokens += response.json()["message"]["usage"]["completion_tokens"]
        return output_tokens


def test_prometheus_queries_request_count_latency_and_model_tokens_of_a_running_medchat(tmp_path: Path) -> None:
    if not PROMETHEUS.exists():
        pytest.skip(f"{PROMETHEUS} is missing: install Debian's prometheus package (scripts/test does)")
    with running_fake_llm() as fake_llm:
        env = {
            "MEDCHAT_LLM_API_KEY": "test-key",
            "MEDCHAT_LLM_BASE_URL": fake_llm.base_url,
            "MEDCHAT_LLM_MODEL": MODEL,
            "MEDCHAT_CHAT_FOLLOW_UP_QUERIES": "off",
        }
        with ServeProcess(tmp_path / "data", extra_env=env) as server:
            output_tokens = ask_questions(server)
            assert output_tokens > 0
            with running_prometheus(f"127.0.0.1:{server.port}", tmp_path / "prometheus") as prometheus:
                up = query_until_answered(prometheus, 'up{job="medchat-web"} == 1')
                asked = query_until_answered(
                    prometheus, f'sum(medchat_requests_total{{path="{CHAT_PATH}", method="POST", status_code="201"}})'
                )
                median = query_until_answered(
                    prometheus,
                    "histogram_quantile(0.5, sum by (le) "
                    f'(medchat_request_duration_seconds_bucket{{path="{CHAT_PATH}"}}))',
                )
                answered = query_until_answered(
                    prometheus, f'sum(medchat_request_duration_seconds_count{{path="{CHAT_PATH}"}})'
                )
                tokens = query_until_answered(
                    prometheus, f'medchat_llm_tokens_total{{model="{MODEL}", direction="output"}}'
                )

    assert only_value(up) == 1
    assert only_value(asked) == len(QUESTIONS)
    assert only_value(answered) == len(QUESTIONS)
    assert math.isfinite(only_value(median)) and only_value(median) > 0
    assert only_value(tokens) == output_tokens
