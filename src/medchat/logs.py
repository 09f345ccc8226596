"""Logging for every medchat process (web app, worker, CLI): structlog set up, and health identifiers
(e-mail addresses, phone numbers, record numbers...) scrubbed from every log line.

Its own module, light to import, so a CLI command logs like the server without loading the runtime.
"""

from __future__ import annotations

from medchat import chat
from medchat.platform.logging import add_scrubber, configure_logging
from medchat.settings import Settings


def configure_process_logging(settings: Settings) -> None:
    configure_logging(settings)
    add_scrubber(chat.phi_scrubber)
