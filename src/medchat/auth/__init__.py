"""Accounts: users, password hashing (argon2id), access tokens and sessions, and the guards every module uses.

Every request is authenticated when it carries credentials (``Authorization: Bearer`` for ``/api/``,
the session cookie for pages) and passes through anonymous otherwise: ``request.user`` is a
``Principal`` or None. Protect a route with ``guards=[require_user]`` (``require_admin`` and the rest
live in ``medchat.platform.identity``), or by declaring the app-wide dependency
``current_user: Principal`` (401 when anonymous). The OpenAI-compatible ``/v1/`` routes take personal
API keys only (``Authorization: Bearer mck_...``): guard them with ``require_api_key``.

The runtime builds the one ``Accounts`` service and registers it in its ``ServiceRegistry``; it
returns frozen data, never documents. Deleting an account publishes ``USER_DELETED(user_id=...)``; an
export gathers each module's share through ``USER_EXPORT_REQUESTED(user_id=...)``
(``medchat.platform.events``). Subscribe to both.

The admin area also shows the audit log (``/api/v1/audit``, ``/admin/audit``) every module records into.
"""

from typing import TYPE_CHECKING

from medchat.auth.models import ApiKey, RefreshToken, User
from medchat.platform.lazy import lazy_exports

if TYPE_CHECKING:
    from litestar import Router

    from medchat.auth.api_key_access import require_api_key
    from medchat.auth.cli import user_cli
    from medchat.auth.guards import Principal, require_user
    from medchat.auth.middleware import AuthPlugin
    from medchat.auth.services import Accounts

    router: Router

document_models: list[type] = [User, RefreshToken, ApiKey]

__getattr__ = lazy_exports(
    __name__,
    {
        "Accounts": "medchat.auth.services",
        "AuthPlugin": "medchat.auth.middleware",
        "Principal": "medchat.auth.guards",
        "require_api_key": "medchat.auth.api_key_access",
        "require_user": "medchat.auth.guards",
        "router": "medchat.auth.web",
        "user_cli": "medchat.auth.cli",
    },
)

__all__ = [
    "Accounts",
    "AuthPlugin",
    "Principal",
    "document_models",
    "require_api_key",
    "require_user",
    "router",
    "user_cli",
]
