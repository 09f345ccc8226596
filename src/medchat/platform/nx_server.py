"""Run the embedded MongoDB stand-in, ``nx-27017``, with its one type-losing update path turned off.

nx-27017 (on neosqlite) translates simple ``$set`` updates into SQLite ``json_set`` calls and binds
the values as SQLite parameters, so a top-level ``datetime`` is stored as a string and a ``bool`` as
``1`` (nested values are serialised as JSON and survive). Its own Python update path keeps every
BSON type. ``python -m medchat.platform.nx_server ARGS`` is ``nx-27017 ARGS`` with updates that set
such values sent down that path, so every module can ``$set`` as it would on MongoDB.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from neosqlite.collection.query_helper._sql_updates import SqlUpdatesMixin
from nx_27017.nx_27017 import main as nx_main

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


def main() -> int:
    keep_types_in_updates()
    sys.argv[0] = "nx-27017"
    return nx_main()


if __name__ == "__main__":
    sys.exit(main())
