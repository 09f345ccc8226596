"""medchat beside Open WebUI 0.12.4, interleaved in one session, as ``../shared/peers/open-webui/README.md`` says.

Rounds of two halves, medchat then Open WebUI, each after ``uptime``:

- medchat's half: ``medchat serve`` on a copy of the chat benchmark's cached knowledge base (2,000 MedQuAD
  answers, ``knowledge_base.py``), production defaults (request logs at INFO to a file, metrics), the peer
  folder's zero-latency ``stub_llm.py`` as its model and the per-user budgets off; the peer folder's
  ``load_owui.py`` sends ``medchat`` (stored turn: new conversation, both messages, retrieval) and
  ``medchat-stream`` requests, varied MedQuAD questions (``--questions``), and samples the serve tree's
  CPU and RSS (``--pid``). The server is started once and kept for every round.
- Open WebUI's half: the peer folder's ``run_peer.sh`` with ``MODES=persist,stream`` (fresh database, its
  own stub, stops what it started). ``PEER_DIR`` holds ``venv/``: by default a scratch folder whose
  ``venv`` links to ``--owui-venv`` (Open WebUI installed there once).

The peer scripts are used where they are, never copied. Comparable units: medchat ``medchat`` against
Open WebUI ``persist`` (one request that stores a chat and both messages); ``stream`` is Open WebUI's
stateless streamed call (stores nothing), beside ``medchat-stream`` (stores everything). The ratio is what
counts, the machine may be shared: it prints medchat / Open WebUI per concurrency (turns/s, p50, p99,
server CPU per turn) for every round, and the load averages.

    .venv/bin/python bench/peer_open_webui.py --requests 300            # the README's run (~15 min)
    .venv/bin/python bench/peer_open_webui.py --requests 40 --rounds 1  # does it run?
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))
sys.path.insert(0, str(REPOSITORY / "bench"))

import knowledge_base  # noqa: E402
from chat_server import register, serve_filled, served_code  # noqa: E402
from tests.support.serve import ServeProcess  # noqa: E402

from medchat.platform.embedded import free_port  # noqa: E402

PEER = REPOSITORY.parent / "shared" / "peers" / "open-webui"
OWUI_VENV = Path("/tmp/owui-venv")
COMPARED = {"medchat": "persist", "medchat-stream": "stream"}
"""medchat's mode -> Open WebUI's mode it is compared with."""


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def start_stub() -> tuple[subprocess.Popen[bytes], str]:
    """The peer folder's stub model on a free port (not run_peer.sh's, which starts its own)."""
    port = free_port()
    stub = subprocess.Popen([sys.executable, str(PEER / "stub_llm.py"), str(port)], stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/ok/v1"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                return stub, base
        except httpx.HTTPError:
            time.sleep(0.05)
    stub.terminate()
    raise RuntimeError("the stub model did not start")


def peer_dir(options: argparse.Namespace) -> Path:
    if options.peer_dir:
        return options.peer_dir
    scratch = Path(tempfile.gettempdir()) / "medchat-peer-open-webui"
    scratch.mkdir(exist_ok=True)
    link = scratch / "venv"
    if not link.exists():
        link.symlink_to(options.owui_venv)
    return scratch


def medchat_half(base_url: str, token: str, pid: int, questions: Path, options: argparse.Namespace) -> list[dict]:
    output = Path(tempfile.mkstemp(prefix="medchat-half-", suffix=".json")[1])
    command = [
        sys.executable, str(PEER / "load_owui.py"), "--base", base_url, "--token", token,
        "--modes", "medchat,medchat-stream", "--conc", options.conc, "--requests", str(options.requests),
        "--pid", str(pid), "--questions", str(questions), "--json", str(output),
    ]  # fmt: skip
    subprocess.run(command, check=True)
    return json.loads(output.read_text())


def peer_half(options: argparse.Namespace) -> list[dict]:
    directory = peer_dir(options)
    before = set(directory.glob("results_*.json"))
    env = {
        **os.environ,
        "PEER_DIR": str(directory),
        "MODES": "persist,stream",
        "CONC": options.conc,
        "REQUESTS": str(options.requests),
    }
    subprocess.run(["bash", str(PEER / "run_peer.sh")], env=env, check=True)
    written = sorted(set(directory.glob("results_*.json")) - before, key=lambda path: path.stat().st_mtime)
    if not written:
        raise RuntimeError(f"run_peer.sh wrote no results in {directory}")
    return json.loads(written[-1].read_text())


def ratios(medchat: list[dict], peer: list[dict]) -> list[str]:
    lines = [
        "  medchat / Open WebUI   conc   turns/s     p50     p99   CPU/turn   (medchat: turns/s, p50, p99 ms, CPU ms)"
    ]
    lines.append(
        "  (Open WebUI's stream stores nothing; medchat-stream stores the conversation, both messages, retrieval)"
    )
    by_key = {(row["mode"], row["conc"]): row for row in peer}
    for mine in medchat:
        theirs = by_key.get((COMPARED.get(mine["mode"], ""), mine["conc"]))
        if not theirs:
            continue
        cpu = mine["server_cpu_ms_per_req"] / theirs["server_cpu_ms_per_req"]
        lines.append(
            f"  {mine['mode']:>14} / {theirs['mode']:<7} {mine['conc']:>4}  {mine['rps'] / theirs['rps']:>7.2f}  "
            f"{mine['p50_ms'] / theirs['p50_ms']:>6.2f}  {mine['p99_ms'] / theirs['p99_ms']:>6.2f}  {cpu:>8.2f}   "
            f"({mine['rps']:.1f}/s, {mine['p50_ms']:.0f}, {mine['p99_ms']:.0f}, {mine['server_cpu_ms_per_req']:.1f})"
        )
    return lines


def distinct_questions(rows: list[dict], seed: int) -> list[str]:
    """Every distinct MedQuAD question of the knowledge base's answers, in a seeded order: each request of a
    whole run asks one no request asked before, so medchat's cache of recent query vectors never answers one
    (a real user's repeated question would be a hit; a benchmark's cycling through a short list is not)."""
    unique = list(dict.fromkeys(" ".join(row["question"].split()) for row in rows))
    random.Random(seed).shuffle(unique)
    return unique


def questions_of_round(questions: list[str], number: int, options: argparse.Namespace, directory: Path) -> Path:
    """Round ``number``'s slice of ``questions`` (``2 modes × concurrencies × requests`` of them) as a file."""
    per_round = 2 * len(options.conc.split(",")) * options.requests
    chosen = questions[(number - 1) * per_round : number * per_round]
    if len(chosen) < per_round:
        raise SystemExit(f"{len(questions)} distinct questions cannot give round {number} {per_round} new ones")
    path = directory / f"questions-{number}.txt"
    path.write_text("\n".join(chosen) + "\n")
    return path


def prepare_medchat(directory: Path, llm_url: str, options: argparse.Namespace) -> tuple[ServeProcess, str, list[str]]:
    """The started server, a user's token, and the distinct questions to ask."""
    env = {
        "MEDCHAT_LLM_BASE_URL": llm_url,
        "MEDCHAT_LLM_API_KEY": "sk-x",
        "MEDCHAT_LLM_MODEL": "stub-model",
        "MEDCHAT_MESSAGES_PER_HOUR_USER": "0",
        "MEDCHAT_TOKENS_PER_DAY_USER": "0",
        "MEDCHAT_LOG_LEVEL": os.environ.get("MEDCHAT_LOG_LEVEL", "INFO"),
    }
    code = served_code(env)
    questions = distinct_questions(knowledge_base.select_rows(options.knowledge_base, options.seed), options.seed)
    server = serve_filled(directory, env, options, code, questions[0])

    async def token() -> str:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            return (await register(http))["Authorization"].removeprefix("Bearer ")

    return server, asyncio.run(token()), questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="requests per mode and concurrency")
    parser.add_argument("--conc", default="1,16", help="concurrencies, comma-separated")
    parser.add_argument("--rounds", type=int, default=2, help="medchat + Open WebUI halves, interleaved")
    parser.add_argument("--owui-venv", type=Path, default=OWUI_VENV, help="virtualenv with open-webui==0.12.4")
    parser.add_argument("--peer-dir", type=Path, help="PEER_DIR for run_peer.sh (holds venv/); default: scratch")
    parser.add_argument("--knowledge-base", type=int, default=2000, metavar="N")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fresh-kb", action="store_true")
    parser.add_argument(
        "--kb-source",
        type=Path,
        metavar="DIR",
        help="copy the knowledge base cached for this medchat source dir (another checkout, same index version)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every round's figures to PATH")
    options = parser.parse_args()

    stub, llm_url = start_stub()
    rounds = []
    try:
        with tempfile.TemporaryDirectory() as directory:
            server, token, questions = prepare_medchat(Path(directory), llm_url, options)
            try:
                print(f"medchat serve at {server.base_url} (log {server.log_path}), stub model at {llm_url}")
                for number in range(1, options.rounds + 1):
                    print(f"== round {number}, medchat's half; uptime: {uptime()}", flush=True)
                    asked = questions_of_round(questions, number, options, Path(directory))
                    medchat = medchat_half(server.base_url, token, server.process.pid, asked, options)
                    print(f"== round {number}, Open WebUI's half; uptime: {uptime()}", flush=True)
                    peer = peer_half(options)
                    print(f"== round {number}: medchat / Open WebUI; uptime: {uptime()}")
                    print("\n".join(ratios(medchat, peer)), flush=True)
                    rounds.append({"medchat": medchat, "open_webui": peer, "load_after": list(os.getloadavg())})
            finally:
                server.__exit__()
    finally:
        stub.terminate()
        stub.wait(timeout=10)
    if options.json:
        options.json.write_text(json.dumps(rounds, indent=2))
        print(f"figures written to {options.json}")


if __name__ == "__main__":
    main()
