"""Server-side overhead of a stored chat turn over a filled knowledge base, against a zero-latency model.

Ingests ``--knowledge-base`` MedQuAD answers (one plain-text file per topic) with the project's own
``medchat ingest`` into a data dir, cached under the system temp dir per (N, seed, medchat source dir)
and copied for each run (``--fresh-kb`` rebuilds; a copy that no longer serves is rebuilt). Then starts
the fake model (``python -m tests.support.fake_llm``, its own process) and a real ``medchat serve`` on
that copy (embedded stores), registers users and sends stored chat turns (``POST
/api/v1/chat/messages``, not streamed) from each ``--concurrency`` level of concurrent clients
(httpx, async). The questions are MedQuAD's for the ingested topics, in a seeded order; each client
starts a new conversation every ``--turns-per-conversation`` turns, and a follow-up on the same topic
says "it" for the topic name, as a person would ("What are the symptoms of it?").

The model answers instantly, so request latency is the server's own overhead; the answers also carry
the server's view (``timing.generation_ms``: time inside the LLM call, client library included), and
the report subtracts it for the "outside the LLM" figures. Around each level it reads the CPU time
(utime+stime, plus that of reaped children, from /proc) of ``medchat serve`` and all its descendants
(web worker, embedded redis-server, nx_server), and separately of the fake model and of this client,
and prints the load average: the machine may be shared. Prints numbers; never passes or fails.

    .venv/bin/python bench/chat_overhead.py --turns 200
    PYTHONPATH=/work/before-11/src .venv/bin/python bench/chat_overhead.py --turns 200   # other code
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))
sys.path.insert(0, str(REPOSITORY / "bench"))

import knowledge_base  # noqa: E402
from tests.support.serve import ServeProcess, descendants  # noqa: E402

PASSWORD = "benchmark password 42 long"
REPLY = "Hypertension is a blood pressure of 140/90 mmHg or more on repeated readings [1]."
CLOCK_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")
SETTLE_SECONDS = 5.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# --- questions -------------------------------------------------------------------------------------


def conversations(rows: list[dict], per_conversation: int, seed: int) -> list[list[str]]:
    """The ingested topics' questions in a seeded order, cut into conversations of ``per_conversation``.

    Topic by topic ("what is it" first, the rest shuffled); a question on the same topic as the one
    before it in its conversation names the topic "it". A topic with fewer questions than a conversation
    holds runs on into the next topic, asked in full, as a person changing the subject would.
    """
    rng = random.Random(seed)
    by_focus: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_focus[row["focus"]].append(row)
    topics = list(by_focus)
    rng.shuffle(topics)
    sequence: list[tuple[str, str]] = []
    for topic in topics:
        seen: set[str] = set()
        asked = [row for row in by_focus[topic] if not (row["question"] in seen or seen.add(row["question"]))]
        rng.shuffle(asked)
        asked.sort(key=lambda row: row.get("qtype") != "information")
        sequence += [(topic, re.sub(r"\s+\?$", "?", row["question"].strip())) for row in asked]
    result: list[list[str]] = []
    for start in range(0, len(sequence) - per_conversation + 1, per_conversation):
        turns = sequence[start : start + per_conversation]
        questions = [turns[0][1]]
        for (previous, _), (topic, question) in itertools.pairwise(turns):
            same = topic == previous
            questions.append(re.sub(re.escape(topic), "it", question, flags=re.IGNORECASE) if same else question)
        result.append(questions)
    return result


# --- CPU of process trees ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuSample:
    ticks: dict[int, tuple[str, int]]
    """pid -> (label, utime+stime+cutime+cstime in clock ticks)"""

    @property
    def total(self) -> int:
        return sum(ticks for _, ticks in self.ticks.values())


def _label(pid: int, root: int) -> str:
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"
    if pid == root:
        return f"{comm} (root)"
    if "nx_server" in command:
        return "nx_server (mongodb)"
    return comm


def cpu_sample(root: int) -> CpuSample:
    ticks: dict[int, tuple[str, int]] = {}
    for pid in {root, *descendants(root)}:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state ppid ... utime(12) stime(13) cutime(14) cstime(15), 0-based from state.
        ticks[pid] = (_label(pid, root), sum(int(value) for value in fields[11:15]))
    return CpuSample(ticks)


def cpu_by_label(before: CpuSample, after: CpuSample) -> dict[str, float]:
    """Milliseconds of CPU per process label between the samples (a process born in between counts whole)."""
    spent: dict[str, float] = defaultdict(float)
    for pid, (label, ticks) in after.ticks.items():
        spent[label] += (ticks - before.ticks.get(pid, (label, 0))[1]) * CLOCK_TICK_MS
    return dict(spent)


async def settle(root: int) -> None:
    """Wait (up to SETTLE_SECONDS) until the server tree is idle, so background work of the last turns
    (conversation titles) is counted in the level that caused it."""
    deadline = time.monotonic() + SETTLE_SECONDS
    previous = cpu_sample(root).total
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        current = cpu_sample(root).total
        if current - previous <= 1:
            return
        previous = current


# --- the load ------------------------------------------------------------------------------------------


def start_fake_llm() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_llm", "--port", "0", "--reply", REPLY],
        cwd=REPOSITORY, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


async def register(http: httpx.AsyncClient) -> dict[str, str]:
    email = f"bench-{uuid.uuid4().hex[:10]}@example.org"
    response = await http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@dataclass
class Results:
    latencies: list[float]
    generation: list[float]
    retrieval: list[float]
    sources: list[int]
    failures: list[str]

    @classmethod
    def empty(cls) -> Results:
        return cls([], [], [], [], [])


async def client_loop(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    turns: int,
    per_conversation: int,
    questions: Iterator[list[str]],
    results: Results,
) -> None:
    conversation_id: str | None = None
    conversation: list[str] = []
    for turn in range(turns):
        if turn % per_conversation == 0:
            conversation_id, conversation = None, next(questions)
        body: dict[str, str] = {"content": conversation[turn % per_conversation]}
        if conversation_id:
            body["conversation_id"] = conversation_id
        started = time.perf_counter()
        response = await http.post("/api/v1/chat/messages", json=body, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 201:
            results.failures.append(f"{response.status_code}: {response.text[:200]}")
            continue
        answer = response.json()
        conversation_id = answer["conversation_id"]
        timing = answer["message"].get("timing") or {}
        results.latencies.append(elapsed)
        results.generation.append(timing.get("generation_ms") or 0.0)
        results.retrieval.append(timing.get("retrieval_ms") or 0.0)
        results.sources.append(len(answer["message"].get("sources") or []))


async def run_level(
    base_url: str, server_pid: int, fake_pid: int, clients: int, turns: int, per_conversation: int,
    questions: Iterator[list[str]],
) -> dict[str, object]:  # fmt: skip
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as http:
        users = [await register(http) for _ in range(clients)]
        warm = Results.empty()
        await asyncio.gather(*(client_loop(http, u, 3, per_conversation, questions, warm) for u in users))
        await settle(server_pid)
        results = Results.empty()
        per_client = max(1, turns // clients)
        server_before, fake_before, client_before = cpu_sample(server_pid), cpu_sample(fake_pid), time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(http, u, per_client, per_conversation, questions, results) for u in users))
        wall = time.perf_counter() - started
        client_cpu = time.process_time() - client_before
        await settle(server_pid)
        server_after, fake_after = cpu_sample(server_pid), cpu_sample(fake_pid)
    load = os.getloadavg()
    count = len(results.latencies)
    outside = [total - inside for total, inside in zip(results.latencies, results.generation, strict=True)]
    if results.failures:
        print(f"  {len(results.failures)} failed turns, first: {results.failures[0]}")
    if not count:
        raise RuntimeError(f"no turn succeeded at {clients} clients")
    by_process = cpu_by_label(server_before, server_after)
    return {
        "clients": clients,
        "turns": count,
        "p50": statistics.median(results.latencies),
        "p99": percentile(results.latencies, 99),
        "outside_p50": statistics.median(outside),
        "outside_p99": percentile(outside, 99),
        "llm_p50": statistics.median(results.generation),
        "retrieval_p50": statistics.median(results.retrieval),
        "sources": statistics.mean(results.sources),
        "turns_per_s": count / wall,
        "cpu_per_turn": sum(by_process.values()) / count,
        "by_process": {label: ms / count for label, ms in sorted(by_process.items(), key=lambda item: -item[1])},
        "fake_per_turn": sum(cpu_by_label(fake_before, fake_after).values()) / count,
        "client_per_turn": client_cpu * 1000 / count,
        "load": load,
    }


# --- the knowledge base --------------------------------------------------------------------------------


async def check_knowledge_base(base_url: str, question: str) -> tuple[int, int, int]:
    """(documents ready, passages, search results for ``question``) as a user of the server sees them."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        headers = await register(http)
        ready = chunks = 0
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
            response = await http.get("/api/v1/documents", params=params, headers=headers)
            response.raise_for_status()
            page = response.json()
            for document in page["items"]:
                if document["status"] == "ready":
                    ready += 1
                    chunks += document["chunks"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        response = await http.post("/api/v1/search", json={"query": question}, headers=headers)
        response.raise_for_status()
        return ready, chunks, len(response.json()["results"])


def serve_filled(
    directory: Path, env: dict[str, str], options: argparse.Namespace, code: tuple[Path, str], probe: str
) -> ServeProcess:
    """A started ``medchat serve`` on a fresh copy of the cached knowledge base; rebuilds the cache once
    when it was indexed with another index version, or the copy does not serve (a changed store format,
    a broken or partial build)."""
    source_dir, index_version = code
    environment = ServeProcess(directory / "probe", extra_env=env).environment()
    rebuild = options.fresh_kb
    for attempt in range(3):
        kb = knowledge_base.cached_data_dir(
            options.knowledge_base, options.seed, source_dir, environment, index_version=index_version, rebuild=rebuild
        )
        if kb.manifest.get("index_version", index_version) != index_version:
            print(f"the cached knowledge base was indexed as {kb.manifest['index_version']!r}; rebuilding it")
            rebuild = True
            continue
        if kb.built_now:
            print(f"  ingested in {kb.manifest['ingest_seconds']:.0f} s: {kb.manifest['ingest_output']}")
        data_dir = directory / f"data-{attempt}"
        copy_seconds = knowledge_base.copy_data_dir(kb, data_dir)
        server = ServeProcess(data_dir, extra_env=env)
        problem = ""
        try:
            ready_seconds = server.start().wait_ready()
            documents, chunks, hits = asyncio.run(check_knowledge_base(server.base_url, probe))
        except (RuntimeError, TimeoutError, httpx.HTTPError) as error:
            documents = chunks = hits = 0
            ready_seconds = float("nan")
            problem = f"{type(error).__name__}: {str(error)[-2000:]}"
        expected = kb.manifest.get("documents")
        if not problem and (documents != kb.manifest["files"] or not hits or expected not in (None, documents)):
            problem = f"{documents} of {kb.manifest['files']} documents ready, {hits} search results"
        if not problem:
            if expected is None or "index_version" not in kb.manifest:
                kb.record(documents=documents, chunks=chunks, index_version=index_version)
            origin = "built now" if kb.built_now else f"cached, built {kb.manifest['built']}"
            print(
                f"knowledge base: {kb.manifest['answers']} MedQuAD answers, {documents} documents (one per topic), "
                f"{chunks} passages, {knowledge_base.disk_mb(data_dir):.0f} MB on disk; ingest took "
                f"{kb.manifest['ingest_seconds']:.0f} s ({origin}: {kb.data_dir.parent}); copied in "
                f"{copy_seconds:.1f} s, server ready in {ready_seconds:.1f} s"
            )
            return server
        server.__exit__()
        if kb.built_now:
            raise RuntimeError(f"a freshly ingested knowledge base does not serve: {problem}")
        print(f"the cached knowledge base does not serve with this code ({problem}); rebuilding it")
        rebuild = True
    raise AssertionError("unreachable")


PROBE_CODE = """
import json, medchat, medchat.retrieval.search as search
print(json.dumps([medchat.__file__, getattr(search, "INDEX_VERSION", "")]))
"""


def served_code(env: dict[str, str]) -> tuple[Path, str]:
    """The medchat source dir for the server's interpreter and environment (PYTHONPATH included), and
    its index version (``retrieval.search.INDEX_VERSION``; "" for code without one)."""
    output = subprocess.run(
        [sys.executable, "-c", PROBE_CODE], env={**os.environ, **env}, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    file, index_version = json.loads(output.strip().splitlines()[-1])
    return Path(file).parent, index_version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=300, help="turns per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--turns-per-conversation", type=int, default=5)
    parser.add_argument("--knowledge-base", type=int, default=2000, metavar="N", help="MedQuAD answers to ingest")
    parser.add_argument("--seed", type=int, default=7, help="picks the topics and orders the questions")
    parser.add_argument("--fresh-kb", action="store_true", help="ingest the knowledge base again (minutes)")
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
    code = served_code(env)
    print(f"code under test: {code[0]} (index version {code[1] or 'none'})")
    rows = knowledge_base.select_rows(options.knowledge_base, options.seed)
    pool = conversations(rows, options.turns_per_conversation, options.seed)
    questions = itertools.cycle(pool)
    try:
        with tempfile.TemporaryDirectory() as directory:
            server = serve_filled(Path(directory), env, options, code, pool[0][0])
            try:
                assert server.process is not None
                print(
                    f"medchat serve at {server.base_url}, fake model at {llm_url} (zero latency); "
                    f"{len(pool)} conversations of {options.turns_per_conversation} MedQuAD questions"
                )
                print(
                    f"load avg before: {' '.join(f'{value:.2f}' for value in os.getloadavg())} on {os.cpu_count()} CPUs"
                )
                print(
                    "clients  turns  p50 ms  p99 ms  outside-LLM p50/p99 ms  in-LLM p50 ms  retrieval p50 ms  "
                    "turns/s  CPU ms/turn (medchat)  fake LLM ms/turn  load avg 1/5/15"
                )
                for clients in options.concurrency:
                    r = asyncio.run(
                        run_level(server.base_url, server.process.pid, fake.pid, clients, options.turns,
                                  options.turns_per_conversation, questions)
                    )  # fmt: skip
                    load = " ".join(f"{value:.2f}" for value in r["load"])
                    print(
                        f"{r['clients']:>7}  {r['turns']:>5}  {r['p50']:>6.1f}  {r['p99']:>6.1f}  "
                        f"{r['outside_p50']:>10.1f} / {r['outside_p99']:<8.1f}  {r['llm_p50']:>13.1f}  "
                        f"{r['retrieval_p50']:>16.1f}  {r['turns_per_s']:>7.1f}  {r['cpu_per_turn']:>21.1f}  "
                        f"{r['fake_per_turn']:>16.1f}  {load}"
                    )
                    parts = ", ".join(f"{label} {ms:.1f}" for label, ms in r["by_process"].items() if ms >= 0.05)
                    print(
                        f"         medchat CPU by process (ms/turn): {parts}; "
                        f"bench client {r['client_per_turn']:.1f}; {r['sources']:.1f} sources/answer"
                    )
            finally:
                server.__exit__()
    finally:
        fake.terminate()
        fake.wait(timeout=10)


if __name__ == "__main__":
    main()
