"""The module boundaries of ARCHITECTURE.md, as import-linter contracts in pyproject.toml; and the tests' own."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_tests_share_helpers_only_through_tests_support() -> None:
    """A test module imports no other test module and no conftest: shared helpers live in tests/support."""
    offending = []
    for path in sorted((REPOSITORY / "tests").rglob("*.py")):
        if "support" in path.relative_to(REPOSITORY / "tests").parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            imported = re.match(r"\s*(?:from|import)\s+(tests(?:\.\w+)*)", line)
            if imported and not re.fullmatch(r"tests\.support(\.\w+)*", imported.group(1)):
                offending.append(f"{path.relative_to(REPOSITORY)}:{number}: {line.strip()}")
    assert offending == [], "\n".join(offending)
