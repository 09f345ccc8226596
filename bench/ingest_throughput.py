"""Ingestion of many small documents against the embedding model's raw speed (issue 15's goal: >= 80%).

Run: .venv/bin/python bench/ingest_throughput.py [--files 1000] [--seed 7] [--before ../other-checkout]

``--files`` one-answer MedQuAD text files (the question, then its answer) are written to a temporary dir
(never into the repository) and measured three ways in one run:

1. raw: the embedding model alone on exactly the texts ingestion embeds (each file parsed and chunked as
   ingestion does, with its title), in this process: the ceiling;
2. ``medchat ingest FOLDER`` on a fresh data dir: wall time, CPU of the process and everything it started
   (``os.wait4``: its own and its reaped children's, as /proc's utime+stime+cutime+cstime), files/s,
   passages/s and % of raw;
3. the files uploaded through the API of a running ``medchat serve`` (4 concurrent uploads), until every
   one is ready or failed: the same figures, CPU summed over the server's process tree from /proc.

``--before PATH`` runs 2 and 3 for another checkout's code too (``PYTHONPATH=PATH/src``), interleaved with
this one's, for a before/after in one run. The load average is printed beside every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from knowledge_base import MEDCHAT, select_rows
from proc_cpu import CLOCK_TICK_MS, cpu_sample
from tests.support.serve import ServeProcess

from medchat.retrieval.chunking import chunk_document
from medchat.retrieval.embeddings import Embedder
from medchat.retrieval.parsing import parse_document
from medchat.retrieval.search import embedding_text
from medchat.settings import Settings

UPLOADERS = 4
POLL_SECONDS = 1.0
TIMEOUT_SECONDS = 3600
PASSWORD = "a long enough throughput passphrase 42"


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


@dataclass(frozen=True)
class Measure:
    label: str
    files: int
    passages: int
    wall: float
    cpu: float

    def line(self, raw_passages_per_second: float | None) -> str:
        share = (
            f", {100 * self.passages / self.wall / raw_passages_per_second:.0f}% of raw"
            if raw_passages_per_second
            else ""
        )
        return (
            f"{self.label:<28} {self.files} files, {self.passages} passages: "
            f"wall {self.wall:.1f} s, CPU {self.cpu:.1f} s, {self.files / self.wall:.1f} files/s, "
            f"{self.passages / self.wall:.1f} passages/s{share}   [{load()}]"
        )


def write_answers(n: int, seed: int, folder: Path) -> int:
    """``n`` files of one distinct MedQuAD answer each; returns how many were written."""
    rows = select_rows(n, seed)
    seen: set[str] = set()
    folder.mkdir(parents=True)
    for row in rows:
        if row["answer"] in seen:
            continue
        seen.add(row["answer"])
        slug = re.sub(r"[^A-Za-z0-9]+", "-", row["focus"]).strip("-")[:60] or "answer"
        text = f"{row['question'].strip()}\n\n{row['answer'].strip()}\n"
        (folder / f"{len(seen):05}-{slug}.txt").write_text(text, encoding="utf-8")
    return len(seen)


def embedding_texts(folder: Path) -> list[str]:
    """What ingestion embeds for these files: each parsed and chunked with the default settings, titled."""
    defaults = Settings.model_fields
    texts = []
    for path in sorted(folder.iterdir()):
        parsed = parse_document(path.read_bytes())
        title = parsed.title or path.stem.replace("_", " ").replace("-", " ").strip()
        chunks = chunk_document(
            parsed.pages,
            chunk_tokens=defaults["chunk_tokens"].default,
            overlap_tokens=defaults["chunk_overlap_tokens"].default,
        )
        texts += [embedding_text(chunk, title[:200]) for chunk in chunks]
    return texts


def measure_raw(texts: list[str], files: int) -> Measure:
    embedder = Embedder()
    embedder.load()
    embedder.embed(texts[:32])  # warm up
    wall, cpu = time.perf_counter(), time.process_time()
    embedder.embed(texts)
    return Measure(
        "raw embedding (in process)", files, len(texts), time.perf_counter() - wall, time.process_time() - cpu
    )


def code_env(checkout: Path | None) -> dict[str, str]:
    return {"PYTHONPATH": str(checkout / "src")} if checkout else {}


def measure_cli(folder: Path, work: Path, checkout: Path | None, label: str, expected_passages: int) -> Measure:
    data_dir = work / f"cli-{label}"
    env = {**os.environ, "MEDCHAT_DATA_DIR": str(data_dir), **code_env(checkout)}
    for variable in ("MEDCHAT_MONGODB_URI", "MEDCHAT_REDIS_URL", "MEDCHAT_QDRANT_URL"):
        env.pop(variable, None)
    log_path = work / f"cli-{label}.log"
    with log_path.open("w") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            [MEDCHAT, "ingest", str(folder)], env=env, stdout=subprocess.PIPE, stderr=log, text=True
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    output = (process.stdout.read() if process.stdout else "").strip()
    if os.waitstatus_to_exitcode(status) != 0:
        print(f"  medchat ingest ({label}) exited {os.waitstatus_to_exitcode(status)}: {output}; log {log_path}")
    ready = int(match.group(1)) if (match := re.search(r"(\d+) of \d+ files ready", output)) else 0
    summary = re.search(r"(\d+) passages in", log_path.read_text(errors="replace"))
    passages = int(summary.group(1)) if summary else expected_passages  # older code prints no count
    return Measure(f"medchat ingest [{label}]", ready, passages, wall, usage.ru_utime + usage.ru_stime)


async def measure_api(paths: list[Path], work: Path, checkout: Path | None, label: str) -> Measure:
    server = ServeProcess(work / f"api-{label}" / "data", extra_env=code_env(checkout))
    with server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=120) as client:
            registered = await client.post(
                "/api/v1/auth/register",
                json={"email": "ingest-runner@example.org", "password": PASSWORD, "full_name": "Bench"},
            )
            assert registered.status_code == 201, registered.text
            client.headers["Authorization"] = f"Bearer {registered.json()['access_token']}"
            assert server.process is not None
            before, started = cpu_sample(server.process.pid), time.perf_counter()
            await upload_all(client, paths)
            await until_none_pending(client)
            wall = time.perf_counter() - started
            spent = (cpu_sample(server.process.pid).total - before.total) * CLOCK_TICK_MS / 1000
            ready, passages = await ready_documents(client)
    return Measure(f"API upload + worker [{label}]", ready, passages, wall, spent)


async def upload_all(client: httpx.AsyncClient, paths: list[Path]) -> None:
    queue = list(reversed(paths))

    async def uploader() -> None:
        while queue:
            path = queue.pop()
            response = await client.post(
                "/api/v1/documents/",
                files={"file": (path.name, path.read_bytes(), "text/plain")},
                data={"scope": "private"},
            )
            response.raise_for_status()

    await asyncio.gather(*(uploader() for _ in range(UPLOADERS)))


async def until_none_pending(client: httpx.AsyncClient) -> None:
    """Two small list requests per poll: none queued and none processing means every upload is final."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        pending = 0
        for status in ("queued", "processing"):
            page = (await client.get("/api/v1/documents/", params={"status": status, "limit": 1})).json()
            pending += len(page["items"])
        if not pending:
            return
        await asyncio.sleep(POLL_SECONDS)
    raise TimeoutError("documents still pending")


async def ready_documents(client: httpx.AsyncClient) -> tuple[int, int]:
    ready = passages = 0
    cursor = None
    while True:
        params = {"status": "ready", "limit": 100, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/documents/", params=params)).json()
        ready += len(page["items"])
        passages += sum(item["chunks"] for item in page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return ready, passages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--before", type=Path, help="another checkout to measure the same way (its src/ first)")
    parser.add_argument("--skip-api", action="store_true", help="leave out the upload through a running server")
    parser.add_argument("--skip-cli", action="store_true", help="leave out `medchat ingest`")
    arguments = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="medchat-ingest-bench-"))
    try:
        folder = work / "answers"
        files = write_answers(arguments.files, arguments.seed, folder)
        texts = embedding_texts(folder)
        print(f"{files} one-answer MedQuAD files, {len(texts)} passages to embed   [{load()}]", flush=True)
        raw = measure_raw(texts, files)
        raw_rate = raw.passages / raw.wall
        print(raw.line(None), flush=True)
        runs: list[tuple[str, Path | None]] = [("after", None)]
        if arguments.before:
            runs.insert(0, ("before", arguments.before.resolve()))
        for label, checkout in [] if arguments.skip_cli else runs:
            print(measure_cli(folder, work, checkout, label, len(texts)).line(raw_rate), flush=True)
        if not arguments.skip_api:
            for label, checkout in runs:
                print(
                    asyncio.run(measure_api(sorted(folder.iterdir()), work, checkout, label)).line(raw_rate), flush=True
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
