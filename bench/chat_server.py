"""A ``medchat serve`` on a filled knowledge base, for the chat benchmarks (``chat_overhead.py``,
``peer_open_webui.py``): a fresh copy of the cached data dir (``knowledge_base.py``), checked to serve
every document before any figure is taken, and users registered through the API.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))
sys.path.insert(0, str(REPOSITORY / "bench"))

import knowledge_base  # noqa: E402
from proc_cpu import pss_by_label, rss_by_label, settle  # noqa: E402
from tests.support.serve import ServeProcess, descendants  # noqa: E402

PASSWORD = "benchmark password 42 long"


async def register(http: httpx.AsyncClient) -> dict[str, str]:
    """A new user's bearer header."""
    return (await new_account(http))[1]


async def new_account(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    """A new user: its e-mail address (to sign in through the pages) and its bearer header."""
    email = f"bench-{uuid.uuid4().hex[:10]}@example.org"
    response = await http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    response.raise_for_status()
    return email, {"Authorization": f"Bearer {response.json()['access_token']}"}


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


class FilledServer(ServeProcess):
    """A ``medchat serve`` on the knowledge base, with the memory its processes held before any question
    (per process label: RSS and PSS, MiB)."""

    memory_before_first_question: tuple[dict[str, float], dict[str, float]] = ({}, {})


def serve_filled(
    directory: Path, env: dict[str, str], options: argparse.Namespace, code: tuple[Path, str], probe: str
) -> FilledServer:
    """A started ``medchat serve`` on a fresh copy of the cached knowledge base; rebuilds the cache once
    when it was indexed with another index version, or the copy does not serve (a changed store format,
    a broken or partial build). With ``options.kb_source`` (another checkout's source dir, same index
    version) that checkout's cache is copied instead and never rebuilt: a before/after run then needs
    one ingest, not two, and a copy that does not serve this code stops the run."""
    index_version = code[1]
    source_dir = getattr(options, "kb_source", None) or code[0]
    borrowed = source_dir != code[0]
    if borrowed and options.fresh_kb:
        raise ValueError("--fresh-kb rebuilds this checkout's own knowledge base: leave out --kb-source")
    environment = ServeProcess(directory / "probe", extra_env=env).environment()
    rebuild = options.fresh_kb
    for attempt in range(3):
        kb = knowledge_base.cached_data_dir(
            options.knowledge_base, options.seed, source_dir, environment, index_version=index_version, rebuild=rebuild
        )
        if kb.manifest.get("index_version", index_version) != index_version and borrowed:
            raise RuntimeError(f"the knowledge base of {source_dir} is indexed as {kb.manifest['index_version']!r}")
        if kb.manifest.get("index_version", index_version) != index_version:
            print(f"the cached knowledge base was indexed as {kb.manifest['index_version']!r}; rebuilding it")
            rebuild = True
            continue
        if kb.built_now:
            print(f"  ingested in {kb.manifest['ingest_seconds']:.0f} s: {kb.manifest['ingest_output']}")
        data_dir = directory / f"data-{attempt}"
        copy_seconds = knowledge_base.copy_data_dir(kb, data_dir)
        server = FilledServer(data_dir, extra_env=env)
        problem = ""
        try:
            ready_seconds = server.start().wait_ready()
            assert server.process is not None
            asyncio.run(settle(server.process.pid))
            # Before the first question (the knowledge-base check below asks one, which loads the model).
            server.memory_before_first_question = (
                rss_by_label(server.process.pid),
                pss_by_label(server.process.pid),
            )
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
        if kb.built_now or borrowed:
            raise RuntimeError(
                f"the knowledge base of {source_dir} (built now: {kb.built_now}) does not serve: {problem}"
            )
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


def web_worker_pid(root: int) -> int | None:
    """The granian worker serving the app: the child of ``medchat serve`` that is neither store server."""
    try:
        children = Path(f"/proc/{root}/task/{root}/children").read_text().split()
    except OSError:
        return None
    for child in map(int, children):
        command = _command(child)
        if "nx_server" not in command and "redis-server" not in command:
            return child
    return None


def nx_server_pid(root: int) -> int | None:
    """The embedded MongoDB wire server (nx-27017, a Python process) below ``medchat serve``."""
    return next((pid for pid in sorted(descendants(root)) if "nx_server" in _command(pid)), None)


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
