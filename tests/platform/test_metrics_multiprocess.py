"""Several processes, one scrape: metrics written by separate processes are summed by ``medchat serve``'s ``/metrics``.

Several granian workers need real store servers, which these machines cannot run; separate Python
processes writing into the same ``PROMETHEUS_MULTIPROC_DIR`` are what those workers do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.serve import ServeProcess, descendants, wait_gone

pytestmark = pytest.mark.slow

MODEL = "multiprocess-test-model"
WRITER = f"""
import sys
from medchat.platform.metrics import LLM_DURATION, LLM_TOKENS, STREAMS_IN_FLIGHT
from medchat.platform.metrics_dir import mark_this_process_dead

tokens, seconds, streams = map(float, sys.argv[1:])
LLM_TOKENS.labels(model={MODEL!r}, direction="output").inc(tokens)
LLM_DURATION.labels(model={MODEL!r}).observe(seconds)
STREAMS_IN_FLIGHT.set(streams)
print("written", flush=True)
sys.stdin.readline()  # held open until the test has scraped
mark_this_process_dead()
"""


@contextmanager
def writer(metrics_dir: Path, *, tokens: int, seconds: float, streams: int) -> Iterator[subprocess.Popen[str]]:
    """A separate Python process that has written its metrics and waits; it marks itself dead when it exits."""
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tokens), str(seconds), str(streams)],
        env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "PATH": "/usr/bin:/bin"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "written"
        yield process
    finally:
        finish(process)


def finish(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        assert process.stdin is not None
        process.stdin.close()
        assert process.wait(timeout=30) == 0


def scrape(server: ServeProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(f"{server.base_url}/metrics", timeout=10)
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def web_worker(server: ServeProcess) -> int:
    """The granian worker below ``medchat serve`` (a fork of it: same command line; the stores are other programs)."""
    assert server.process is not None
    workers = [
        pid
        for pid in descendants(server.process.pid)
        if "serve" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace").split("\0")
    ]
    assert len(workers) == 1, workers
    return workers[0]


def metrics_dir_of(pid: int) -> Path:
    """The directory of the metric files process ``pid`` has mapped (``prometheus_client`` mmaps them)."""
    mapped = {
        Path(line.split(maxsplit=5)[5]).parent
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
        if line.endswith(".db") and len(line.split(maxsplit=5)) == 6
    }
    assert len(mapped) == 1, f"process {pid} maps metric files in {mapped or 'no directory'}"
    return mapped.pop()


def test_two_processes_metrics_are_summed_in_one_scrape_and_a_dead_process_leaves_the_live_gauge(
    tmp_path: Path,
) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    with writer(metrics_dir, tokens=1000, seconds=9.0, streams=9):
        pass  # a previous run's values: medchat serve empties the directory when it starts

    with (
        ServeProcess(tmp_path / "data", extra_env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}) as server,
        writer(metrics_dir, tokens=5, seconds=0.25, streams=2) as first,
        writer(metrics_dir, tokens=7, seconds=1.5, streams=3),
    ):
        both = scrape(server)
        finish(first)
        one = scrape(server)

    tokens = "medchat_llm_tokens_total"
    assert value(both, tokens, model=MODEL, direction="output") == 12
    assert value(both, "medchat_llm_request_duration_seconds_count", model=MODEL) == 2
    assert value(both, "medchat_llm_request_duration_seconds_sum", model=MODEL) == 1.75
    assert value(both, "medchat_streams_in_flight") == 5, "the serving worker's own 0 plus 2 plus 3"
    assert value(one, tokens, model=MODEL, direction="output") == 12, "counters outlive their process"
    assert value(one, "medchat_streams_in_flight") == 3, "the finished process no longer counts as streaming"


def test_serve_gives_its_workers_a_private_metrics_dir_and_removes_it_when_it_stops(tmp_path: Path) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    of_a_killed_serve = Path(tempfile.mkdtemp(prefix=f"medchat-metrics-{finished.stdout.strip()}-"))
    of_a_running_serve = Path(tempfile.mkdtemp(prefix=f"medchat-metrics-{os.getpid()}-"))
    with ServeProcess(tmp_path / "data") as server:
        assert not of_a_killed_serve.exists(), "a killed serve's directory is removed by the next serve"
        assert of_a_running_serve.exists()
        of_a_running_serve.rmdir()
        worker = web_worker(server)
        metrics_dir = metrics_dir_of(worker)
        assert metrics_dir.stat().st_mode & 0o777 == 0o700
        assert httpx.get(f"{server.base_url}/readyz").status_code == 200
        samples = scrape(server)
        assert value(
            samples, "medchat_requests_total", method="GET", path="/readyz", status_code="200", app_name="medchat"
        )
        assert {path.name for path in metrics_dir.glob("*.db")} >= {
            f"gauge_livesum_{worker}.db",
            f"counter_{worker}.db",
        }
        assert server.stop() == 0
    assert wait_gone({worker}) == set()
    assert not metrics_dir.exists()


def test_a_stopping_worker_marks_itself_dead(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    with ServeProcess(tmp_path / "data", extra_env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}) as server:
        worker = web_worker(server)
        assert (metrics_dir / f"gauge_livesum_{worker}.db").exists()
        assert server.stop() == 0
    assert not (metrics_dir / f"gauge_livesum_{worker}.db").exists()
    assert (metrics_dir / f"counter_{worker}.db").exists(), "an operator's directory is kept, with the counters"
