"""Open WebUI, with medchat's ``/v1`` as its OpenAI connection, asks medchat a question: a check of the
OpenAI-compatible endpoint from another real product, not a client library.

Needs a virtualenv holding Open WebUI (about 3 GB; see ``../shared/peers/open-webui/README.md``):
``python3 -m venv V && V/bin/pip install torch==2.13.0 && V/bin/pip install open-webui==0.12.4``. Then

    .venv/bin/python scripts/open_webui_check.py --open-webui-venv V

starts ``medchat serve`` on a fresh data dir (sources-only answers, so no model is needed), signs a user up,
makes a personal API key, uploads a leaflet, starts Open WebUI offline on loopback pointed at medchat, and
through Open WebUI's own API lists the models and asks, without and with streaming. It prints what came back
and exits 1 if Open WebUI did not show medchat's models or the answer lacks its Sources list.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

LEAFLET = (
    "Gout leaflet\n\nGout is a type of arthritis caused by uric acid crystals in a joint. It usually causes sudden "
    "severe pain, swelling and redness, often in the big toe. Attacks are treated with anti-inflammatory "
    "medicines such as naproxen, colchicine or steroids; allopurinol lowers uric acid to prevent new attacks.\n"
)
QUESTION = "How are gout attacks treated?"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, seconds: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args[0]} exited with {process.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


@contextmanager
def running(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield process
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def prepare_medchat(base: str) -> str:
    """A user with a personal API key and one ready document; returns the key."""
    with httpx.Client(base_url=base, timeout=60) as api:
        user = {"email": "owui-check@example.org", "password": "a sensible passphrase 9", "full_name": "Check"}
        registered = api.post("/api/v1/auth/register", json=user)
        registered.raise_for_status()
        api.headers["Authorization"] = f"Bearer {registered.json()['access_token']}"
        key = api.post("/api/v1/users/me/api-keys", json={"name": "Open WebUI"})
        key.raise_for_status()
        uploaded = api.post(
            "/api/v1/documents/",
            files={"file": ("gout.txt", LEAFLET.encode(), "text/plain")},
            data={"scope": "private"},
        )
        uploaded.raise_for_status()
        deadline = time.monotonic() + 120
        while (document := api.get(f"/api/v1/documents/{uploaded.json()['id']}").json())["status"] != "ready":
            if document["status"] == "failed" or time.monotonic() > deadline:
                raise SystemExit(f"the leaflet was not ingested: {document}")
            time.sleep(0.5)
        return str(key.json()["key"])


def ask_through_open_webui(base: str) -> dict[str, object]:
    with httpx.Client(base_url=base, timeout=120) as owui:
        admin = {"name": "Check Admin", "email": "admin@example.com", "password": "CheckPass-123!"}
        token = owui.post("/api/v1/auths/signup", json=admin).json()["token"]
        owui.headers["Authorization"] = f"Bearer {token}"
        models = [model["id"] for model in owui.get("/api/models").json()["data"]]
        messages = [{"role": "user", "content": QUESTION}]
        answer = owui.post("/api/chat/completions", json={"model": "medchat", "messages": messages, "stream": False})
        answer.raise_for_status()
        streamed = ""
        body = {"model": "medchat", "messages": messages, "stream": True}
        with owui.stream("POST", "/api/chat/completions", json=body) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    chunk = json.loads(line.removeprefix("data: "))
                    streamed += (chunk.get("choices") or [{}])[0].get("delta", {}).get("content") or ""
        return {"models": models, "answer": answer.json()["choices"][0]["message"]["content"], "streamed": streamed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--open-webui-venv", type=Path, required=True)
    arguments = parser.parse_args()
    open_webui = arguments.open_webui_venv / "bin" / "open-webui"
    medchat = Path(sys.executable).with_name("medchat")
    with tempfile.TemporaryDirectory(prefix="owui-check-") as scratch:
        root = Path(scratch)
        medchat_port, owui_port = free_port(), free_port()
        medchat_base, owui_base = f"http://127.0.0.1:{medchat_port}", f"http://127.0.0.1:{owui_port}"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MEDCHAT_") and "proxy" not in k.lower()}
        medchat_env = {**clean, "MEDCHAT_DATA_DIR": str(root / "medchat"), "MEDCHAT_LLM_PROVIDER": "sources-only"}
        with running([str(medchat), "serve", "--port", str(medchat_port)], medchat_env, root / "medchat.log") as serve:
            wait_for(f"{medchat_base}/readyz", 120, serve)
            key = prepare_medchat(medchat_base)
            owui_env = {
                **clean,
                "DATA_DIR": str(root / "open-webui"),
                "OPENAI_API_BASE_URL": f"{medchat_base}/v1",
                "OPENAI_API_KEY": key,
                "ENABLE_OLLAMA_API": "false",
                "WEBUI_SECRET_KEY": "open-webui-check-secret-0123456789abcdef",
                "OFFLINE_MODE": "true",
                "HF_HUB_OFFLINE": "1",
                "RAG_EMBEDDING_ENGINE": "openai",
                "RAG_OPENAI_API_BASE_URL": f"{medchat_base}/v1",
                "RAG_OPENAI_API_KEY": key,
                "ENABLE_VERSION_UPDATE_CHECK": "false",
                "ANONYMIZED_TELEMETRY": "false",
                "NO_PROXY": "127.0.0.1,localhost",
            }
            command = [str(open_webui), "serve", "--host", "127.0.0.1", "--port", str(owui_port)]
            with running(command, owui_env, root / "open-webui.log") as owui:
                wait_for(f"{owui_base}/health", 600, owui)
                seen = ask_through_open_webui(owui_base)
    print(json.dumps(seen, indent=2))
    fine = (
        {"medchat", "medchat-sources-only"} <= set(seen["models"])  # type: ignore[arg-type]
        and all("Sources:\n[1] Gout leaflet" in str(seen[name]) for name in ("answer", "streamed"))
    )
    print("Open WebUI answered through medchat /v1" if fine else "FAILED", file=sys.stderr)
    return 0 if fine else 1


if __name__ == "__main__":
    sys.exit(main())
