"""Auth's typed Litestar dependencies: the service from the runtime's registry, and who is asking."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide

from medchat.auth.guards import Principal, current_user
from medchat.auth.services import Accounts
from medchat.platform.registry import registry_of


def provide_accounts(state: State) -> Accounts:
    """The ``accounts`` dependency of auth's handlers: the one the runtime built and registered."""
    return registry_of(state).get(Accounts)


def provide_current_user(request: Request[Any, Any, Any]) -> Principal:
    """The app-wide ``current_user`` dependency: the signed-in ``Principal``, 401 when anonymous."""
    return current_user(request)


dependencies = {"accounts": Provide(provide_accounts, sync_to_thread=False)}
"""For auth's router."""
