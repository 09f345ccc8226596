"""A logged exception shows its traceback but never the local variables of its frames.

Locals carried e-mail addresses, questions, passages, token prefixes and password hashes into the logs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from medchat.platform.logging import configure_logging
from medchat.settings import Settings

SECRET = "hash-7f3a91"  # short: a long value is cut to the terminal width, hiding what leaked


def _verify_password(password_hash: str) -> None:
    held_in_this_frame = {"password_hash": password_hash}
    raise ValueError(f"cannot check {len(held_in_this_frame)} hash")


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("log_format", ["json", "console"])
@pytest.mark.parametrize("through", ["structlog", "stdlib"])
def test_a_logged_traceback_never_shows_local_variables(
    log_format: str, through: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings.load(environment="test", data_dir=tmp_path, log_format=log_format))
    logger = structlog.get_logger("tests.tracebacks") if through == "structlog" else logging.getLogger("tests.tb")

    try:
        _verify_password(SECRET)
    except ValueError:
        logger.exception("request failed")

    output = capsys.readouterr().err
    assert "request failed" in output
    assert "_verify_password" in output, "the traceback itself is still logged"
    assert "cannot check 1 hash" in output
    assert SECRET not in output
