"""A ``medchat`` command costs what it uses: help, the version and serve's main process import no app code.

Each case runs in a fresh interpreter (``sys.modules`` of the test process already holds everything).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEAVY = (
    "litestar",
    "onnxruntime",
    "qdrant_edge",
    "qdrant_client",
    "openai",
    "langchain_core",
    "beanie",
    "arq",
    "medchat.app",
    "medchat.runtime",
    "medchat.chat",
    "medchat.retrieval",
    "medchat.auth",
)

PROBE = textwrap.dedent(
    """
    import json, sys
    from click.testing import CliRunner
    import medchat.cli

    result = CliRunner().invoke(medchat.cli.main, sys.argv[1:], catch_exceptions=False)
    print(json.dumps({
        "exit_code": result.exit_code,
        "output": result.output,
        "modules": sorted(name for name in sys.modules if name.split(".")[0] in {"medchat", *HEAVY_ROOTS}),
    }))
    """
)


def _run(argv: list[str], *, env: dict[str, str], preamble: str = "") -> dict[str, object]:
    roots = sorted({name.split(".")[0] for name in HEAVY})
    script = f"HEAVY_ROOTS = {roots!r}\n{preamble}\n{PROBE}"
    finished = subprocess.run(
        [sys.executable, "-c", script, *argv], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.splitlines()[-1])


def _heavy(modules: object, heavy_modules: tuple[str, ...] = HEAVY) -> list[str]:
    assert isinstance(modules, list)
    return [name for name in modules if any(name == heavy or name.startswith(heavy + ".") for heavy in heavy_modules)]


ACCOUNT_COMMANDS_NEED = ("litestar", "beanie", "medchat.auth", "medchat.chat")
"""``medchat user`` uses the accounts service (Beanie documents, Litestar's JWT) and logs through the
chat module's PHI scrubber: none of the web surface, the answer engine, retrieval or a model client."""
NOT_FOR_ACCOUNT_COMMANDS = (
    *(name for name in HEAVY if name not in ACCOUNT_COMMANDS_NEED),
    "medchat.auth.web",
    "medchat.auth.pages",
    "medchat.chat.web",
    "medchat.chat.answering",
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MEDCHAT_")}
    return environment | {"MEDCHAT_DATA_DIR": str(tmp_path / "data"), "MEDCHAT_ENVIRONMENT": "test"}


@pytest.mark.parametrize("argv", [["--help"], ["--version"]], ids=" ".join)
def test_help_and_version_load_only_the_command_line(argv: list[str], env: dict[str, str]) -> None:
    outcome = _run(argv, env=env)

    assert outcome["exit_code"] == 0
    assert [name for name in outcome["modules"] if name.startswith("medchat")] == ["medchat", "medchat.cli"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "argv",
    [["serve", "--help"], ["worker", "--help"], ["doctor", "--help"], ["ingest", "--help"], ["model", "--help"]],
    ids=" ".join,
)
def test_a_commands_help_imports_no_app_code(argv: list[str], env: dict[str, str]) -> None:
    outcome = _run(argv, env=env)

    assert outcome["exit_code"] == 0
    assert _heavy(outcome["modules"]) == []


def test_model_status_imports_no_model_client(env: dict[str, str]) -> None:
    outcome = _run(["model", "status"], env=env)

    assert outcome["exit_code"] == 0
    assert _heavy(outcome["modules"]) == []


@pytest.mark.parametrize("argv", [["user", "--help"], ["user", "create", "--help"]])
def test_account_commands_import_only_the_accounts_service(env: dict[str, str], argv: list[str]) -> None:
    outcome = _run(argv, env=env)

    assert outcome["exit_code"] == 0
    assert _heavy(outcome["modules"], NOT_FOR_ACCOUNT_COMMANDS) == []


GRANIAN_STUB = textwrap.dedent(
    """
    import granian

    class Granian:
        def __init__(self, target, **options):
            print("granian target:", target, "factory:", options.get("factory"))

        def serve(self):
            pass

    granian.Granian = Granian
    """
)


@pytest.mark.parametrize("api_key", [None, "sk-test"], ids=["no-key", "remote-llm"])
def test_serve_leaves_the_app_to_granians_workers(env: dict[str, str], api_key: str | None) -> None:
    """The main process checks the settings and starts granian; only granian's workers import the app."""
    if api_key:
        env = env | {"MEDCHAT_LLM_API_KEY": api_key}
    outcome = _run(["serve", "--port", "8999"], env=env, preamble=GRANIAN_STUB)

    assert outcome["exit_code"] == 0, outcome["output"]
    assert "granian target: medchat.app:create_app factory: True" in outcome["output"]  # type: ignore[operator]
    assert _heavy(outcome["modules"]) == []
