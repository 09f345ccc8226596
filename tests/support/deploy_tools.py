"""The deploy checks' tools (kubectl, kubernetes-validate, checkov, hadolint, check-jsonschema, promtool), run
offline, and the overlays as kustomize renders them: shared by the tests under ``tests/deploy``.

Where ``unshare --net`` works (as root), every tool runs in an empty network namespace. A missing tool skips
its tests on a workstation and fails them in CI (``CI`` set), so CI cannot pass without having run them.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = {"dev": "medchat-dev", "production": "medchat"}
"""Each overlay and the namespace it deploys to."""
TOOL_TIMEOUT_SECONDS = 180

Doc = dict[str, Any]


def tool(name: str) -> str:
    """The path of a check tool: the test virtualenv, checkov's own virtualenv, then PATH."""
    for directory in (Path(sys.executable).parent, DEPLOY / ".venv-checkov" / "bin"):
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed: run deploy/check.sh tools"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@functools.cache
def _offline_prefix() -> tuple[str, ...]:
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "--net", "true"], capture_output=True, check=False).returncode == 0:
        return (unshare, "--net")
    return ()


def run(
    command: list[str], *, cwd: Path = ROOT, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_offline_prefix(), *command],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_SECONDS,
        env={**os.environ, "KUBECONFIG": os.devnull, **(env or {})},
        check=False,
    )


@functools.cache
def kustomized(path: Path) -> str:
    """``kubectl kustomize`` of a kustomization folder."""
    result = run([tool("kubectl"), "kustomize", str(path)])
    assert result.returncode == 0, f"kustomize {path} failed:\n{result.stderr}"
    return result.stdout


def rendered_text(target: str) -> str:
    """An overlay (``dev``, ``production``) or a folder under ``deploy/``, rendered."""
    return kustomized(DEPLOY / "overlays" / target if target in OVERLAYS else DEPLOY / target)


def rendered(target: str) -> list[Doc]:
    return documents(rendered_text(target))


def documents(text: str) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def objects(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}
