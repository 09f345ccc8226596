"""The benchmark's zero-latency model (``tests/support/fake_llm.py``) that also says when it wrote each
answer's first token, for "first token to the client after the model's first token".

Each streamed completion's first non-empty content chunk is stamped with ``CLOCK_MONOTONIC`` right after
it is flushed to the socket. That clock is one for the whole machine, so the benchmark client compares
the stamps with its own ``time.clock_gettime(CLOCK_MONOTONIC)`` readings directly. ``GET /bench/first-tokens``
answers the stamps so far (seconds, JSON list) and forgets them. Runs as its own process, like the
plain fake model, so its CPU is counted apart from the server's::

    python bench/timed_llm.py --port 0 --reply "..."
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.fake_llm import DEFAULT_REPLY, FakeLLMServer, _Handler

STAMPS_PATH = "/bench/first-tokens"


def monotonic() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


class TimedFakeLLM(FakeLLMServer):
    def __post_init__(self) -> None:
        super().__post_init__()
        self.first_tokens: list[float] = []

    def start(self) -> TimedFakeLLM:
        """``FakeLLMServer.start`` with the stamping handler bound instead of the plain one."""
        handler = type("_TimedBoundHandler", (_TimedHandler,), {"fake": self})
        self._stopping.clear()
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="timed-llm", daemon=True
        )
        self._thread.start()
        return self

    def take_stamps(self) -> list[float]:
        with self._lock:
            stamps, self.first_tokens = self.first_tokens, []
        return stamps


class _TimedHandler(_Handler):
    fake: TimedFakeLLM
    _first_sent = False

    def do_GET(self) -> None:
        if self.path.rstrip("/") == STAMPS_PATH:
            self._send_json(200, {"first_tokens": self.fake.take_stamps()})  # type: ignore[arg-type]
            return
        super().do_GET()

    def do_POST(self) -> None:
        self._first_sent = False
        super().do_POST()

    def _send_event(self, payload: dict[str, Any]) -> None:
        super()._send_event(payload)
        if self._first_sent:
            return
        choices = payload.get("choices") or [{}]
        if (choices[0].get("delta") or {}).get("content"):
            stamp = monotonic()
            self._first_sent = True
            with self.fake._lock:
                self.fake.first_tokens.append(stamp)


REWRITE_OPENING = "Rewrite the last question"
TITLE_OPENING = "Write a short title"


def reply_like_a_model(answer: str) -> Callable[[dict[str, Any]], str]:
    """The answer for questions; for the two short calls a real model gets, what such a model would write:
    a follow-up made standalone from the prompt's own questions (so every turn searches a different query,
    as with a real model, and a query-vector cache is not flattered), and a title of the question's first
    words."""

    def reply(body: dict[str, Any]) -> str:
        prompt = str((body.get("messages") or [{}])[-1].get("content", ""))
        if prompt.startswith(REWRITE_OPENING):
            last = prompt.rsplit("Last question:", 1)[-1].strip()
            earlier = prompt.split("Earlier questions:", 1)[-1].split("Last question:", 1)[0].split()
            topic = " ".join(word for word in earlier[-6:] if word.strip("-?"))
            return f"{last.rstrip('?')} ({topic.strip('- ?')})?"
        if prompt.startswith(TITLE_OPENING):
            return " ".join(prompt.rsplit("Question:", 1)[-1].split()[:6])
        return answer

    return reply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--reply", default=DEFAULT_REPLY)
    options = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with TimedFakeLLM(reply=reply_like_a_model(options.reply), port=options.port) as server:
        print(server.base_url, flush=True)
        with suppress(KeyboardInterrupt):
            stop.wait()


def read_stamps(base_url: str) -> list[float]:
    """The stamps a running timed model holds (``base_url`` is its ``.../v1``), emptying its list."""
    import urllib.request

    root = base_url.rsplit("/v1", 1)[0]
    with urllib.request.urlopen(root + STAMPS_PATH, timeout=10) as response:
        return json.loads(response.read())["first_tokens"]


if __name__ == "__main__":
    main()
