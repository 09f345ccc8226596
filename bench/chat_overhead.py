"""Server-side overhead of a stored chat turn, against a zero-latency OpenAI-compatible model.

Starts the fake model (``python -m tests.support.fake_llm``, its own process) and a real
``medchat serve`` on embedded stores pointed at it, registers users, then sends stored chat turns
(``POST /api/v1/chat/messages``, not streamed) from 1 and from 32 concurrent clients (httpx, async).
Each client starts a new conversation every ``--turns-per-conversation`` turns, so both first turns
(a conversation insert and a background title request) and follow-ups (thread read, history) count.

The model answers instantly, so request latency is the server's own overhead; the answers also carry
the server's view (``timing.generation_ms``: time inside the LLM call, client library included), and
the report subtracts it for the "outside the LLM" figures. Prints numbers; never passes or fails.

    .venv/bin/python bench/chat_overhead.py --turns 300
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from tests.support.serve import ServeProcess  # noqa: E402

PASSWORD = "benchmark password 42 long"
QUESTIONS = [
    "What blood pressure counts as hypertension?",
    "How is it treated in older adults?",
    "Which lifestyle changes help most?",
    "When should medication be reviewed?",
    "What are the warning signs to watch for?",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def start_fake_llm() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_llm", "--port", "0", "--reply",
         "Hypertension is a blood pressure of 140/90 mmHg or more on repeated readings [1]."],
        cwd=REPOSITORY, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


async def register(http: httpx.AsyncClient) -> dict[str, str]:
    email = f"bench-{uuid.uuid4().hex[:10]}@example.org"
    response = await http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def client_loop(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    turns: int,
    per_conversation: int,
    latencies: list[float],
    generation: list[float],
    failures: list[str],
) -> None:
    conversation_id: str | None = None
    for turn in range(turns):
        if turn % per_conversation == 0:
            conversation_id = None
        body: dict[str, str] = {"content": QUESTIONS[turn % len(QUESTIONS)]}
        if conversation_id:
            body["conversation_id"] = conversation_id
        started = time.perf_counter()
        response = await http.post("/api/v1/chat/messages", json=body, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 201:
            failures.append(f"{response.status_code}: {response.text[:200]}")
            continue
        answer = response.json()
        conversation_id = answer["conversation_id"]
        latencies.append(elapsed)
        generation.append(answer["message"]["timing"]["generation_ms"] or 0.0)


async def run_level(base_url: str, clients: int, turns: int, per_conversation: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        users = [await register(http) for _ in range(clients)]
        warm: list[float] = []
        await asyncio.gather(*(client_loop(http, u, 3, per_conversation, warm, [], []) for u in users))
        latencies: list[float] = []
        generation: list[float] = []
        failures: list[str] = []
        per_client = max(1, turns // clients)
        started = time.perf_counter()
        await asyncio.gather(
            *(client_loop(http, u, per_client, per_conversation, latencies, generation, failures) for u in users)
        )
        wall = time.perf_counter() - started
    outside = [total - inside for total, inside in zip(latencies, generation, strict=True)]
    if failures:
        print(f"  {len(failures)} failed turns, first: {failures[0]}")
    return {
        "clients": clients,
        "turns": len(latencies),
        "p50": statistics.median(latencies),
        "p99": percentile(latencies, 99),
        "outside_p50": statistics.median(outside),
        "outside_p99": percentile(outside, 99),
        "llm_p50": statistics.median(generation),
        "turns_per_s": len(latencies) / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=300, help="turns per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--turns-per-conversation", type=int, default=5)
    options = parser.parse_args()

    fake, llm_url = start_fake_llm()
    env = {
        "MEDCHAT_LLM_API_KEY": "x",
        "MEDCHAT_LLM_BASE_URL": llm_url,
        "MEDCHAT_LOG_LEVEL": "WARNING",
        # A load test is not a user: no per-user budgets (the checks themselves still run).
        "MEDCHAT_MESSAGES_PER_HOUR_USER": "0",
        "MEDCHAT_TOKENS_PER_DAY_USER": "0",
    }
    try:
        with (
            tempfile.TemporaryDirectory() as directory,
            ServeProcess(Path(directory) / "data", extra_env=env) as server,
        ):
            print(f"medchat serve at {server.base_url}, fake model at {llm_url} (zero latency)")
            print("clients  turns  p50 ms  p99 ms  outside-LLM p50/p99 ms  in-LLM p50 ms  turns/s")
            for clients in options.concurrency:
                result = asyncio.run(run_level(server.base_url, clients, options.turns, options.turns_per_conversation))
                print(
                    f"{result['clients']:>7}  {result['turns']:>5}  {result['p50']:>6.1f}  {result['p99']:>6.1f}  "
                    f"{result['outside_p50']:>10.1f} / {result['outside_p99']:<8.1f}  {result['llm_p50']:>13.1f}  "
                    f"{result['turns_per_s']:>7.1f}"
                )
    finally:
        fake.terminate()
        fake.wait(timeout=10)


if __name__ == "__main__":
    main()
