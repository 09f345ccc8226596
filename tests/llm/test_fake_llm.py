"""The fake server itself: standalone use for benchmarks and plain HTTP behaviour."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.support.fake_llm import FakeLLMServer

REPOSITORY = Path(__file__).resolve().parents[2]


def test_runs_standalone_and_prints_its_base_url() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_llm", "--port", "0"],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        with urllib.request.urlopen(f"{base_url}/models", timeout=5) as response:
            models = json.load(response)
    finally:
        process.terminate()
        process.wait(timeout=5)

    assert base_url.startswith("http://127.0.0.1:")
    assert base_url.endswith("/v1")
    assert models["data"][0]["object"] == "model"
    assert process.returncode == 0


def test_non_streamed_completion_honours_max_tokens() -> None:
    with FakeLLMServer(reply="one two three four") as server:
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}).encode()
        request = urllib.request.Request(
            f"{server.base_url}/chat/completions", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            answer = json.load(response)

    assert answer["choices"][0]["message"]["content"] == "one two"
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == 2
    assert server.chat_requests[0].body == json.loads(body)
