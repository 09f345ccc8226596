"""Accounts: users, password hashing (argon2id), access tokens and sessions, and the guards every module uses.

Every request is authenticated when it carries credentials (``Authorization: Bearer`` for ``/api/``,
the session cookie for pages) and passes through anonymous otherwise: ``request.user`` is a
``Principal`` or None. Protect a route with ``guards=[require_user]`` / ``[require_admin]``, or by
declaring the app-wide dependency ``current_user: Principal`` (401 when anonymous).

Deleting an account publishes ``USER_DELETED(user_id=...)``; an export gathers each module's share
through ``USER_EXPORT_REQUESTED(user_id=...)`` (``medchat.platform.events``). Subscribe to both.

The admin area also shows the audit log (``/api/v1/audit``, ``/admin/audit``) every module records into.
"""

from litestar import Router
from litestar.di import Provide

from medchat.auth.audit import AuditController, AuditPages
from medchat.auth.cli import user_cli
from medchat.auth.guards import Principal, current_user, principal_of, require_admin, require_user
from medchat.auth.middleware import AuthPlugin, provide_accounts
from medchat.auth.models import RefreshToken, User
from medchat.auth.pages import AccountPages, AdminPages, ProfilePages
from medchat.auth.routes import AuthController, UsersController

document_models: list[type] = [User, RefreshToken]
event_handlers: dict[str, object] = {}


router = Router(
    path="/",
    route_handlers=[
        *(AuthController, UsersController, AuditController),
        *(AccountPages, ProfilePages, AdminPages, AuditPages),
    ],
    dependencies={"accounts": Provide(provide_accounts, sync_to_thread=False)},
)

__all__ = [
    "AuthPlugin",
    "Principal",
    "current_user",
    "document_models",
    "event_handlers",
    "principal_of",
    "require_admin",
    "require_user",
    "router",
    "user_cli",
]
