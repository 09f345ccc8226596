"""Run the embedded MongoDB stand-in, ``nx-27017``, on a Unix socket, with its one type-losing update path off.

nx-27017 has no password and listens on TCP, where any local process could read or forge the data. Here
its own protocol handler serves a Unix socket instead, in a folder only medchat's user may enter:
``python -m medchat.platform.nx_server --data-dir DIR --unix-socket PATH --log-file FILE``.

nx-27017 (on neosqlite) translates simple ``$set`` updates into SQLite ``json_set`` calls and binds
the values as SQLite parameters, so a top-level ``datetime`` is stored as a string and a ``bool`` as
``1`` (nested values are serialised as JSON and survive). Its own Python update path keeps every
BSON type. Updates that set such values are sent down that path, so every module can ``$set`` as it
would on MongoDB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from neosqlite.collection.query_helper._sql_updates import SqlUpdatesMixin
from neosqlite.options import JournalMode
from nx_27017.handler import NeoSQLiteHandler
from nx_27017.server import handle_client

_SETTING_OPERATORS = ("$set", "$setOnInsert")


def sets_typed_scalar(update_spec: dict[str, Any]) -> bool:
    """True when the update sets a top-level datetime or boolean, which the SQL path would flatten."""
    return any(
        isinstance(value, datetime | bool)
        for operator in _SETTING_OPERATORS
        for value in (update_spec.get(operator) or {}).values()
    )


def keep_types_in_updates() -> None:
    sql_path_allowed = SqlUpdatesMixin._can_use_sql_updates

    def can_use_sql_updates(self: Any, update_spec: dict[str, Any], *args: Any, **kwargs: Any) -> bool:
        return not sets_typed_scalar(update_spec) and sql_path_allowed(self, update_spec, *args, **kwargs)

    SqlUpdatesMixin._can_use_sql_updates = can_use_sql_updates  # type: ignore[method-assign]


async def serve_unix_socket(handler: NeoSQLiteHandler, socket_path: Path) -> None:
    """Serve the wire protocol on ``socket_path`` until SIGTERM or SIGINT."""

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handle_client(reader, writer, handler)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stop_signal, stopping.set)
    server = await asyncio.start_unix_server(on_client, path=str(socket_path))  # replaces a stale socket
    os.chmod(socket_path, 0o600)
    logging.getLogger("nx_27017").info("listening on %s", socket_path)
    async with server:
        await stopping.wait()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)


def main() -> int:
    parser = argparse.ArgumentParser(prog="nx-27017", description="MongoDB wire protocol on SQLite, on a Unix socket.")
    parser.add_argument("--data-dir", type=Path, required=True, help="one <database>.db SQLite file per database")
    parser.add_argument("--unix-socket", type=Path, required=True)
    parser.add_argument("--log-file", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(
        filename=args.log_file, level=logging.INFO, format="%(asctime)s %(levelname)s [%(process)d] %(message)s"
    )
    keep_types_in_updates()
    args.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    handler = NeoSQLiteHandler("nx-27017.db", data_dir=str(args.data_dir), journal_mode=JournalMode.validate("WAL"))
    asyncio.run(serve_unix_socket(handler, args.unix_socket))
    return 0


if __name__ == "__main__":
    sys.exit(main())
