"""structlog, set up once per process: JSON lines in production, readable lines in a terminal.

Every event passes through the registered scrubbers (``add_scrubber``) before it is rendered, so a
module that knows what must never be logged (tokens, health identifiers) can remove it everywhere.

Tracebacks are plain text in both formats and never show the local variables of their frames: those
held e-mail addresses, questions, passages, token prefixes and password hashes. (structlog's console
renderer would draw them with rich, locals included; its dict tracebacks include them by default.)
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

from medchat.settings import Settings

Scrubber = Callable[[str], str]
_scrubbers: list[Scrubber] = []


def add_scrubber(scrubber: Scrubber) -> None:
    """Apply ``scrubber`` to every string value of every log event from now on."""
    if scrubber not in _scrubbers:
        _scrubbers.append(scrubber)


def _scrub_strings(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if _scrubbers:
        for key, value in event.items():
            if isinstance(value, str):
                scrubbed = value
                for scrubber in _scrubbers:
                    scrubbed = scrubber(scrubbed)
                event[key] = scrubbed
    return event


def configure_logging(settings: Settings) -> None:
    json_output = settings.log_format == "json" or (settings.log_format == "auto" and settings.is_production)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # Plain text, no locals (dict_tracebacks would carry them).
        structlog.processors.ExceptionRenderer() if json_output else structlog.dev.set_exc_info,
        _scrub_strings,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # httpx2/httpcore2: the HTTP client openai uses; one INFO line per model call otherwise.
    for noisy in ("pymongo", "httpx", "httpcore", "httpx2", "httpcore2", "arq.worker", "openai"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(settings.log_level)))
