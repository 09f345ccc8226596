"""What the llm module costs per answer: prompt building, sources-only answers, the remote client
against a zero-latency OpenAI-compatible server (tests.support.fake_llm in its own process), and
the local model when installed. Prints numbers; never passes or fails.

    .venv/bin/python bench/llm_stream.py [--streams 400] [--clients 16] [--skip-local]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

from medchat.llm import ChatTurn, ContextPassage, GenerationDone, GenerationRequest, TextDelta
from medchat.llm.local import LocalProvider, engine_threads, find_local_model
from medchat.llm.prompts import build_prompt, to_openai_messages
from medchat.llm.remote import RemoteProvider
from medchat.llm.sources_only import extractive_answer

REPOSITORY = Path(__file__).resolve().parents[1]
PASSAGE_TEXT = (
    "Hypertension is diagnosed when clinic blood pressure is 140/90 mmHg or higher and confirmed by "
    "ambulatory or home monitoring. Offer lifestyle advice to everyone with raised blood pressure. "
    "Start drug treatment when the ten-year cardiovascular risk is above ten percent or there is target "
    "organ damage. Review the patient every year and measure blood pressure at each visit. "
) * 3
REQUEST = GenerationRequest(
    "When should drug treatment for high blood pressure start?",
    history=[ChatTurn("user" if i % 2 else "assistant", f"Earlier turn {i} on blood pressure.") for i in range(1, 21)],
    passages=[ContextPassage(n, f"Guideline {n}", n, PASSAGE_TEXT) for n in range(1, 7)],
)
REPLY = " ".join(["Treatment starts when the ten-year risk is above ten percent [1]."] * 6)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def per_call_microseconds(function, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        function()
    return (time.perf_counter() - started) / repeat * 1e6


async def one_stream(
    provider: RemoteProvider | LocalProvider, request: GenerationRequest = REQUEST
) -> tuple[float, float, int]:
    started = time.perf_counter()
    first = 0.0
    tokens = 0
    async for event in provider.stream(request):
        if isinstance(event, TextDelta) and not first:
            first = time.perf_counter() - started
        if isinstance(event, GenerationDone):
            tokens = event.usage.completion_tokens
    return time.perf_counter() - started, first, tokens


async def bench_remote(base_url: str, *, streams: int, clients: int) -> None:
    provider = RemoteProvider(base_url=base_url, api_key="bench", model="bench/model")
    for _ in range(20):
        await one_stream(provider)
    cpu_started = time.process_time()
    latencies = [(await one_stream(provider))[0] for _ in range(streams)]
    cpu_ms = (time.process_time() - cpu_started) / streams * 1000
    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    print(
        f"remote, 1 client:   p50 {p50:.1f} ms, p99 {p99:.1f} ms per streamed answer "
        f"({len(REPLY.split())} tokens); client CPU {cpu_ms:.2f} ms/answer"
    )

    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(streams * 2):
        queue.put_nowait(index)
    concurrent: list[float] = []

    async def worker() -> None:
        while not queue.empty():
            queue.get_nowait()
            concurrent.append((await one_stream(provider))[0])

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    print(
        f"remote, {clients} clients: {len(concurrent) / elapsed:.0f} answers/s, "
        f"p50 {percentile(concurrent, 0.5) * 1000:.1f} ms, p99 {percentile(concurrent, 0.99) * 1000:.1f} ms"
    )
    await provider.aclose()


async def bench_local(model_path: Path) -> None:
    provider = LocalProvider(model_path, max_output_tokens=128)
    started = time.perf_counter()
    await provider.complete("Hi", max_tokens=1)
    print(f"local model: loaded in {time.perf_counter() - started:.2f} s ({engine_threads()} threads)")
    total, first, tokens = await one_stream(provider)
    print(f"local model, 6 passages + 20 turns (uncached prompt): first token after {first:.2f} s")
    long_answer = GenerationRequest("Describe the human heart and how it works, in detail.")
    total, first, tokens = await one_stream(provider, long_answer)
    generating = total - first
    print(f"local model, generation: {tokens} tokens in {generating:.2f} s = {tokens / generating:.0f} tokens/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=400)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--skip-local", action="store_true")
    options = parser.parse_args()

    prompt_us = per_call_microseconds(lambda: to_openai_messages(build_prompt(REQUEST, context_tokens=8000)), 2000)
    print(f"prompt build (6 passages, 20 turns, trim + OpenAI dicts): {prompt_us:.0f} µs")
    with asyncio.Runner() as runner:  # extractive_answer is async (it may await an embedder); none here
        extract_us = per_call_microseconds(
            lambda: runner.run(extractive_answer(REQUEST.question, REQUEST.passages)), 500
        )
    print(f"sources-only answer (6 passages): {extract_us:.0f} µs")

    server = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_llm", "--port", "0", "--reply", REPLY],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        asyncio.run(bench_remote(server.stdout.readline().strip(), streams=options.streams, clients=options.clients))
    finally:
        server.terminate()
        server.wait(timeout=5)

    model_path = None if options.skip_local else find_local_model()
    if model_path is not None:
        asyncio.run(bench_local(model_path))
    elif not options.skip_local:
        print("local model: not installed (medchat model install-local)")


if __name__ == "__main__":
    main()
