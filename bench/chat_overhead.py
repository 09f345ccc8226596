"""Server-side cost of a stored chat turn over a filled knowledge base, against a zero-latency model.

Ingests ``--knowledge-base`` MedQuAD answers (one plain-text file per topic) with the project's own
``medchat ingest`` into a data dir, cached under the system temp dir per (N, seed, medchat source dir)
and copied for each run (``--fresh-kb`` rebuilds; a copy that no longer serves is rebuilt). Then starts
the model (``bench/timed_llm.py``: the tests' fake model in its own process, stamping its first tokens)
and a real ``medchat serve`` on that copy with production defaults: request logs at INFO (to
``serve-<port>.log`` beside the copy, printed at the start), Prometheus metrics in multiprocess mode
(what ``serve`` sets up), spans exported over OTLP with ``--otlp`` (to a receiver in this process). It
registers users and sends stored chat turns (``POST /api/v1/chat/messages``, not streamed) from each
``--concurrency`` level of concurrent clients (httpx, async), MedQuAD's questions in conversations of
``--turns-per-conversation`` (``chat_questions.py``).

The model answers instantly, so request latency is the server's own overhead. Per level it prints:
latency, the time outside the LLM call (``timing.generation_ms`` subtracted) and before it (``timing``),
turns/s, CPU per turn of every process of ``medchat serve`` (utime+stime from /proc, ``proc_cpu.py``)
and by process, the model's and this client's CPU, store round trips per turn by store and operation
(the server's ``medchat_store_call_duration_seconds_count``, scraped around the level), the summed RSS
of every medchat process (idle before the first level, peak during each), and the load average: the
machine may be shared. ``--stream`` adds streamed levels at one client: the JSON API's event stream
(``chat_stream.py``: first token at the client after the model's first token) and the chat page's, where
the answer is re-rendered as Markdown while it streams (``chat_page_stream.py``). ``--profile`` records
the web worker and nx-27017 with py-spy during each measured level (``profile_spy.py``; sampling costs
CPU, so the figures of a profiled run are a little worse); ``--json PATH`` writes every figure.
Prints numbers; never passes or fails.

    .venv/bin/python bench/chat_overhead.py --turns 60 --stream
    .venv/bin/python bench/chat_overhead.py --turns 300 --stream --otlp --json /tmp/after.json
    PYTHONPATH=/work/before-15/src .venv/bin/python bench/chat_overhead.py --turns 300 \
        --kb-source /work/main/src/medchat   # other code, on the knowledge base cached for this checkout
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))
sys.path.insert(0, str(REPOSITORY / "bench"))

import chat_metrics  # noqa: E402
import chat_page_stream  # noqa: E402
import chat_stream  # noqa: E402
import knowledge_base  # noqa: E402
import profile_spy  # noqa: E402
from chat_questions import conversations  # noqa: E402
from chat_server import new_account, nx_server_pid, register, serve_filled, served_code, web_worker_pid  # noqa: E402
from proc_cpu import PeakRss, cpu_by_label, cpu_sample, pss_by_label, rss_by_label, settle, thread_sample  # noqa: E402

REPLY = "Hypertension is a blood pressure of 140/90 mmHg or more on repeated readings [1]."


def percentile(values: list[float], q: float) -> float:
    return chat_stream.percentile(values, q)


def loads() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


# --- the load ------------------------------------------------------------------------------------------


def start_model() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, str(REPOSITORY / "bench" / "timed_llm.py"), "--port", "0", "--reply", REPLY],
        cwd=REPOSITORY, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


@dataclass
class Results:
    latencies: list[float]
    generation: list[float]
    retrieval: list[float]
    before_model: list[float]
    sources: list[int]
    failures: list[str]

    @classmethod
    def empty(cls) -> Results:
        return cls([], [], [], [], [], [])


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
        before = chat_stream.before_model_ms(timing)
        if before is not None:
            results.before_model.append(before)
        results.sources.append(len(answer["message"].get("sources") or []))


@dataclass(frozen=True)
class Server:
    base_url: str
    pid: int
    model_pid: int
    model_url: str


class Profiling:
    """py-spy on the web worker and nx-27017 during a measured level (when ``--profile`` is given)."""

    def __init__(self, server: Server, directory: Path | None, clients: int) -> None:
        self.recorders: dict[str, profile_spy.Recorder] = {}
        if directory is None:
            return
        for name, pid in (("web worker", web_worker_pid(server.pid)), ("nx-27017", nx_server_pid(server.pid))):
            if pid is not None:
                output = directory / f"{name.replace(' ', '-')}-{clients}-clients.txt"
                self.recorders[name] = profile_spy.Recorder(pid, output).start()

    def stop(self) -> dict[str, tuple[profile_spy.Profile | None, str]]:
        return {name: (recorder.stop(), recorder.problem) for name, recorder in self.recorders.items()}


async def run_level(
    server: Server, clients: int, turns: int, per_conversation: int, questions: Iterator[list[str]],
    profile_dir: Path | None,
) -> dict[str, object]:  # fmt: skip
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=120, limits=limits) as http:
        users = [await register(http) for _ in range(clients)]
        warm = Results.empty()
        await asyncio.gather(*(client_loop(http, u, 3, per_conversation, questions, warm) for u in users))
        await settle(server.pid)
        results = Results.empty()
        per_client = max(1, turns // clients)
        calls_before = await chat_metrics.store_calls(http)
        profiling = Profiling(server, profile_dir, clients)
        worker = web_worker_pid(server.pid)
        threads_before = thread_sample(worker) if worker else None
        server_before, model_before = cpu_sample(server.pid), cpu_sample(server.model_pid)
        client_before = time.process_time()
        started = time.perf_counter()
        async with PeakRss(server.pid) as memory:
            await asyncio.gather(
                *(client_loop(http, u, per_client, per_conversation, questions, results) for u in users)
            )
        wall = time.perf_counter() - started
        client_cpu = time.process_time() - client_before
        profiles = profiling.stop()
        await settle(server.pid)
        server_after, model_after = cpu_sample(server.pid), cpu_sample(server.model_pid)
        threads = cpu_by_label(threads_before, thread_sample(worker)) if worker and threads_before else {}
        calls_after = await chat_metrics.store_calls(http)
    count = len(results.latencies)
    if results.failures:
        print(f"  {len(results.failures)} failed turns, first: {results.failures[0]}")
    if not count:
        raise RuntimeError(f"no turn succeeded at {clients} clients")
    outside = [total - inside for total, inside in zip(results.latencies, results.generation, strict=True)]
    by_process = cpu_by_label(server_before, server_after)
    return {
        "clients": clients,
        "turns": count,
        "failed": len(results.failures),
        "p50": statistics.median(results.latencies),
        "p99": percentile(results.latencies, 99),
        "outside_p50": statistics.median(outside),
        "outside_p99": percentile(outside, 99),
        "before_model_p50": statistics.median(results.before_model) if results.before_model else None,
        "before_model_p99": percentile(results.before_model, 99) if results.before_model else None,
        "llm_p50": statistics.median(results.generation),
        "retrieval_p50": statistics.median(results.retrieval),
        "sources": statistics.mean(results.sources),
        "turns_per_s": count / wall,
        "cpu_per_turn": sum(by_process.values()) / count,
        "by_process": {label: ms / count for label, ms in sorted(by_process.items(), key=lambda item: -item[1])},
        "web_worker_threads": {name: ms / count for name, ms in sorted(threads.items(), key=lambda item: -item[1])},
        "model_per_turn": sum(cpu_by_label(model_before, model_after).values()) / count,
        "client_per_turn": client_cpu * 1000 / count,
        "store_calls_per_turn": chat_metrics.per_turn(calls_before, calls_after, count),
        "rss_peak_mib": memory.peak,
        "profiles": profiles,
        "load": os.getloadavg(),
    }


HEADER = (
    "clients  turns  p50 ms  p99 ms  outside-LLM p50/p99 ms  in-LLM p50 ms  retrieval p50 ms  "
    "turns/s  CPU ms/turn (medchat)  model ms/turn  load avg 1/5/15"
)


def describe_level(r: dict) -> list[str]:
    load = " ".join(f"{value:.2f}" for value in r["load"])
    lines = [
        f"{r['clients']:>7}  {r['turns']:>5}  {r['p50']:>6.1f}  {r['p99']:>6.1f}  "
        f"{r['outside_p50']:>10.1f} / {r['outside_p99']:<8.1f}  {r['llm_p50']:>13.1f}  "
        f"{r['retrieval_p50']:>16.1f}  {r['turns_per_s']:>7.1f}  {r['cpu_per_turn']:>21.1f}  "
        f"{r['model_per_turn']:>13.1f}  {load}"
    ]
    parts = ", ".join(f"{label} {ms:.1f}" for label, ms in r["by_process"].items() if ms >= 0.05)
    lines.append(
        f"         medchat CPU by process (ms/turn): {parts}; "
        f"bench client {r['client_per_turn']:.1f}; {r['sources']:.1f} sources/answer"
    )
    threads = ", ".join(f"{name} {ms:.1f}" for name, ms in r["web_worker_threads"].items() if ms >= 0.05)
    lines.append(f"         web worker CPU by thread (ms/turn; threads that ended meanwhile are missing): {threads}")
    if r["before_model_p50"] is not None:
        before = f"before the model call p50 {r['before_model_p50']:.1f} / p99 {r['before_model_p99']:.1f} ms"
    else:
        before = "before the model call: not in the answer's timing (see outside-LLM)"
    lines.append(f"         {before}; RSS of all medchat processes, peak {r['rss_peak_mib']:.0f} MiB")
    lines.append(f"         store round trips per turn: {chat_metrics.describe(r['store_calls_per_turn'])}")
    for name, (profile, problem) in r["profiles"].items():
        clients = f"{r['clients']} client" + ("s" if r["clients"] != 1 else "")
        lines += profile_spy.report(f"{name} at {clients}", profile, problem)
    return lines


def for_json(r: dict) -> dict:
    profiles = {name: profile_spy.as_json(profile) for name, (profile, _) in r["profiles"].items()}
    return {**r, "profiles": profiles, "load": list(r["load"])}


async def streamed_level(server: Server, turns: int, per_conversation: int, questions: Iterator[list[str]]) -> dict:
    """The JSON API's stream at one client, then the chat page's (live Markdown), each after a warm-up."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=120) as http:
        email, headers = await new_account(http)
        await chat_stream.run_streamed(http, headers, server.model_url, 3, per_conversation, questions)
        await settle(server.pid)
        before = cpu_sample(server.pid)
        result = await chat_stream.run_streamed(http, headers, server.model_url, turns, per_conversation, questions)
        await settle(server.pid)
        by_process = cpu_by_label(before, cpu_sample(server.pid))
        result["cpu_per_turn"] = sum(by_process.values()) / max(1, int(result["turns"]))
        result["load"] = list(os.getloadavg())
    async with httpx.AsyncClient(base_url=server.base_url, timeout=120) as browser:
        run = chat_page_stream.run_page_streamed
        await run(browser, email, server.model_url, 3, per_conversation, questions)
        await settle(server.pid)
        result["page"] = await run(browser, email, server.model_url, turns, per_conversation, questions)
        result["page"]["load"] = list(os.getloadavg())
    return result


# --- the run ---------------------------------------------------------------------------------------------


def server_environment(llm_url: str, otlp_endpoint: str | None) -> dict[str, str]:
    env = {
        "MEDCHAT_LLM_API_KEY": "x",
        "MEDCHAT_LLM_BASE_URL": llm_url,
        # A load test is not a user: no per-user budgets (the checks themselves still run).
        "MEDCHAT_MESSAGES_PER_HOUR_USER": "0",
        "MEDCHAT_TOKENS_PER_DAY_USER": "0",
    }
    # Production defaults: the log level is the settings' default (INFO), not one chosen for the bench.
    env["MEDCHAT_LOG_LEVEL"] = os.environ.get("MEDCHAT_LOG_LEVEL", "INFO")
    if otlp_endpoint:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp_endpoint
    return env


@contextlib.contextmanager
def span_receiver(enabled: bool) -> Iterator[object | None]:
    if not enabled:
        yield None
        return
    from tests.support.otlp_receiver import OtlpReceiver

    with OtlpReceiver() as receiver:
        yield receiver


def measure(options: argparse.Namespace, llm: tuple[subprocess.Popen[str], str], receiver: object | None) -> dict:
    model, llm_url = llm
    env = server_environment(llm_url, getattr(receiver, "endpoint", None))
    code = served_code(env)
    print(f"code under test: {code[0]} (index version {code[1] or 'none'})")
    rows = knowledge_base.select_rows(options.knowledge_base, options.seed)
    pool = conversations(rows, options.turns_per_conversation, options.seed)
    questions = itertools.cycle(pool)
    report: dict = {"code": str(code[0]), "index_version": code[1], "cpus": os.cpu_count(), "levels": []}
    with tempfile.TemporaryDirectory() as directory:
        serving = serve_filled(Path(directory), env, options, code, pool[0][0])
        try:
            assert serving.process is not None
            server = Server(serving.base_url, serving.process.pid, model.pid, llm_url)
            print(
                f"medchat serve at {server.base_url} (log: {serving.log_path}, level {env['MEDCHAT_LOG_LEVEL']}; "
                f"spans {'to ' + env['OTEL_EXPORTER_OTLP_ENDPOINT'] if receiver else 'not exported'}), "
                f"model at {llm_url} (zero latency); {len(pool)} conversations of "
                f"{options.turns_per_conversation} MedQuAD questions"
            )
            fresh_rss, fresh_pss = serving.memory_before_first_question
            report["before_first_question_rss_mib"], report["before_first_question_pss_mib"] = fresh_rss, fresh_pss
            print(f"memory of all medchat processes before the first question: {memory_line(fresh_rss, fresh_pss)}")
            asyncio.run(settle(server.pid))
            idle = rss_by_label(server.pid)
            idle_pss = pss_by_label(server.pid)
            report["idle_rss_mib"], report["idle_pss_mib"] = idle, idle_pss
            report["load_before"] = list(os.getloadavg())
            print(f"idle, after the knowledge-base check's question: {memory_line(idle, idle_pss)}; load avg {loads()}")
            print(f"load avg before: {loads()} on {os.cpu_count()} CPUs")
            print(HEADER)
            profile_dir = Path(directory) / "profiles" if options.profile else None
            if profile_dir:
                profile_dir.mkdir()
            for clients in options.concurrency:
                level = asyncio.run(
                    run_level(server, clients, options.turns, options.turns_per_conversation, questions, profile_dir)
                )
                print("\n".join(describe_level(level)), flush=True)
                report["levels"].append(for_json(level))
            if options.stream:
                streamed = asyncio.run(
                    streamed_level(server, options.stream_turns, options.turns_per_conversation, questions)
                )
                print("\n".join(chat_stream.describe(streamed)))
                print(f"  CPU {streamed['cpu_per_turn']:.1f} ms/turn (medchat); load avg {loads()}")
                print("\n".join(chat_page_stream.describe(streamed["page"])))
                print(f"  load avg {loads()}", flush=True)
                report["stream"] = streamed
        finally:
            serving.__exit__()
    return report


def memory_line(rss: dict[str, float], pss: dict[str, float]) -> str:
    """Summed PSS (shared pages counted once) and RSS, with each process's RSS."""
    parts = ", ".join(f"{label} {mib:.0f}" for label, mib in sorted(rss.items(), key=lambda item: -item[1]))
    return f"PSS {sum(pss.values()):.0f} MiB, RSS {sum(rss.values()):.0f} MiB ({parts})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=300, help="turns per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--turns-per-conversation", type=int, default=5)
    parser.add_argument("--knowledge-base", type=int, default=2000, metavar="N", help="MedQuAD answers to ingest")
    parser.add_argument("--seed", type=int, default=7, help="picks the topics and orders the questions")
    parser.add_argument("--fresh-kb", action="store_true", help="ingest the knowledge base again (minutes)")
    parser.add_argument(
        "--kb-source",
        type=Path,
        metavar="DIR",
        help="copy the knowledge base cached for this medchat source dir (another checkout, same index version)",
    )
    parser.add_argument("--stream", action="store_true", help="add streamed levels at one client (API, chat page)")
    parser.add_argument("--stream-turns", type=int, default=100, help="turns of each streamed level")
    parser.add_argument("--otlp", action="store_true", help="export spans over OTLP to a receiver in this process")
    parser.add_argument("--profile", action="store_true", help="py-spy the web worker and nx-27017 per level")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every figure to PATH")
    options = parser.parse_args()

    model, llm_url = start_model()
    try:
        with span_receiver(options.otlp) as receiver:
            report = measure(options, (model, llm_url), receiver)
            if receiver is not None:
                spans = len(receiver.spans)  # type: ignore[attr-defined]
                print(f"spans received over OTLP: {spans}")
                report["spans_received"] = spans
    finally:
        model.terminate()
        model.wait(timeout=10)
    if options.json:
        options.json.write_text(json.dumps(report, indent=2, default=str))
        print(f"figures written to {options.json}")


if __name__ == "__main__":
    main()
