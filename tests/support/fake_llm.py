"""A real, local OpenAI-compatible HTTP server for tests and benchmarks.

It speaks ``POST /v1/chat/completions`` (plain JSON and ``stream: true`` server-sent events ending
with ``data: [DONE]``) and ``GET /v1/models`` over a loopback socket, so clients are exercised end to
end with no mocks. Tests steer it through attributes and :meth:`FakeLLMServer.fail_with`::

    with FakeLLMServer(reply="Hello there [1].") as server:
        server.fail_with("status_500", times=2)  # two failures, then normal answers
        ...  # point a client at server.base_url
        assert len(server.requests) == 3

Run it standalone (a zero-latency endpoint for benchmarks)::

    python -m tests.support.fake_llm --port 0
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

FailureMode = Literal["status_500", "status_429", "hang", "cut_stream", "end_stream"]
"""``cut_stream`` drops the connection mid-stream; ``end_stream`` ends the response cleanly after
``cut_after_tokens`` tokens, with no ``finish_reason`` and no ``[DONE]`` (a proxy or upstream that gives up)."""
Reply = str | Callable[[dict[str, Any]], str]

DEFAULT_REPLY = "Hypertension means persistently raised blood pressure [1]."
HANG_LIMIT_SECONDS = 60.0


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    raw: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class _Failure:
    mode: FailureMode
    remaining: int | None  # None: fail every request


@dataclass
class FakeLLMServer:
    """Controllable OpenAI-compatible server on ``127.0.0.1``; ``port=0`` picks a free port."""

    reply: Reply = DEFAULT_REPLY
    token_delay: float = 0.0
    """Seconds to sleep before each streamed token."""
    model: str = "fake/medchat-test"
    retry_after_seconds: int = 1
    """Sent as ``Retry-After`` with ``status_429``."""
    cut_after_tokens: int = 3
    """Tokens streamed before ``cut_stream`` drops the connection (or ``end_stream`` ends the response)."""
    send_usage: bool = True
    """When False, streams never carry usage, even if the client asks for it."""
    models_status: int = 200
    """Status of ``GET /v1/models``; another value (e.g. 500) makes the model list fail as in an outage."""
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._failure: _Failure | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- control ---------------------------------------------------------------------------------
    def fail_with(self, mode: FailureMode | None, *, times: int | None = None) -> None:
        """Make chat completions fail with ``mode``: the next ``times`` requests, or all when None."""
        with self._lock:
            self._failure = None if mode is None else _Failure(mode, times)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path.endswith("/chat/completions")]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeLLMServer:
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        self._stopping.clear()
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-llm", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- used by the handler ---------------------------------------------------------------------
    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _take_failure(self) -> FailureMode | None:
        with self._lock:
            failure = self._failure
            if failure is None:
                return None
            if failure.remaining is not None:
                if failure.remaining <= 0:
                    return None
                failure.remaining -= 1
            return failure.mode

    def _reply_for(self, body: dict[str, Any]) -> str:
        return self.reply(body) if callable(self.reply) else self.reply


@contextmanager
def running_fake_llm(**options: Any) -> Iterator[FakeLLMServer]:
    """A started server, stopped on exit; a fixture body is ``with running_fake_llm() as s: yield s``."""
    with FakeLLMServer(**options) as server:
        yield server


def split_tokens(text: str) -> list[str]:
    """Word-sized pieces that concatenate back to ``text`` (the fake's notion of a token)."""
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


def closed_port_url() -> str:
    """A base URL nothing listens on, for "connection refused"."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


class _Handler(BaseHTTPRequestHandler):
    fake: FakeLLMServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Small SSE writes would otherwise wait on Nagle + delayed ACK (~40 ms each).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # --- routing ---------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._record(None)
        if self.path.rstrip("/") == "/v1/models" and self.fake.models_status != 200:
            self._send_json(self.fake.models_status, {"error": {"message": "fake outage", "type": "server_error"}})
        elif self.path.rstrip("/") == "/v1/models":
            model = {"id": self.fake.model, "object": "model", "created": 0, "owned_by": "fake"}
            self._send_json(200, {"object": "list", "data": [model]})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_PATCH(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._record(None, self.rfile.read(length) if length else b"")
        self._answer_outside_api()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            self._record(None, raw)
            self._send_json(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        self._record(body, raw)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._answer_outside_api()
            return
        failure = self.fake._take_failure()
        if failure == "status_500":
            self._send_json(500, {"error": {"message": "fake upstream failure", "type": "server_error"}})
        elif failure == "status_429":
            self._send_json(
                429,
                {"error": {"message": "fake rate limit", "type": "rate_limit_exceeded"}},
                headers={"Retry-After": str(self.fake.retry_after_seconds)},
            )
        elif failure == "hang":
            self.fake._stopping.wait(HANG_LIMIT_SECONDS)
            self._drop_connection()
        elif body.get("stream"):
            self._stream_completion(body, cut=failure == "cut_stream", end=failure == "end_stream")
        else:
            self._send_completion(body)

    # --- answers ---------------------------------------------------------------------------------
    def _answer_outside_api(self) -> None:
        """Writes outside ``/v1`` (e.g. LangSmith runs) are accepted and recorded; unknown ``/v1`` routes are 404."""
        if self.path.startswith("/v1/"):
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
        else:
            self._send_json(202, {})

    def _send_completion(self, body: dict[str, Any]) -> None:
        tokens, finish_reason = self._answer_tokens(body)
        answer = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.fake.model),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(tokens)},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": _usage(body, len(tokens)),
        }
        self._send_json(200, answer)

    def _stream_completion(self, body: dict[str, Any], *, cut: bool, end: bool = False) -> None:
        tokens, finish_reason = self._answer_tokens(body)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk_id = f"chatcmpl-{uuid.uuid4().hex}"
        model = body.get("model", self.fake.model)

        def event(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
            created = int(time.time())
            return {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
                **extra,
            }

        self._send_event(event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]))
        for sent, token in enumerate(tokens):
            if cut and sent == self.fake.cut_after_tokens:
                self._drop_connection()
                return
            if end and sent == self.fake.cut_after_tokens:
                break
            if self.fake.token_delay:
                time.sleep(self.fake.token_delay)
            self._send_event(event([{"index": 0, "delta": {"content": token}, "finish_reason": None}]))
        if cut:
            self._drop_connection()
            return
        if end:
            self._send_chunk(b"")
            return
        self._send_event(event([{"index": 0, "delta": {}, "finish_reason": finish_reason}]))
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if wants_usage and self.fake.send_usage:
            self._send_event(event([], usage=_usage(body, len(tokens))))
        self._send_chunk(b"data: [DONE]\n\n")
        self._send_chunk(b"")

    def _answer_tokens(self, body: dict[str, Any]) -> tuple[list[str], str]:
        tokens = split_tokens(self.fake._reply_for(body))
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit is not None and len(tokens) > int(limit):
            return tokens[: int(limit)], "length"
        return tokens, "stop"

    # --- wire ------------------------------------------------------------------------------------
    def _record(self, body: dict[str, Any] | None, raw: bytes = b"") -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.fake._record(RecordedRequest(self.command, self.path, headers, body, raw))

    def _send_json(self, status: int, payload: dict[str, Any], *, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_event(self, payload: dict[str, Any]) -> None:
        self._send_chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

    def _send_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _drop_connection(self) -> None:
        """Close the socket mid-response, as a crashed upstream or a broken proxy would."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _usage(body: dict[str, Any], completion_tokens: int) -> dict[str, int]:
    prompt_tokens = sum(len(split_tokens(str(message.get("content", "")))) for message in body.get("messages", []))
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake OpenAI-compatible LLM on loopback.")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--reply", default=DEFAULT_REPLY)
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds before each streamed token")
    options = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FakeLLMServer(reply=options.reply, token_delay=options.token_delay, port=options.port) as server:
        print(server.base_url, flush=True)
        with suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
