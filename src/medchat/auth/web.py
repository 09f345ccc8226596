"""The auth module's HTTP surface: the JSON API (accounts, users, audit) and the pages, as one router."""

from litestar import Router

from medchat.auth import deps
from medchat.auth.admin_pages import AdminPages
from medchat.auth.api_key_pages import AdminApiKeyPages
from medchat.auth.api_key_routes import AdminApiKeysController, ApiKeysController
from medchat.auth.audit import AuditController, AuditPages
from medchat.auth.pages import AccountPages, ProfilePages
from medchat.auth.routes import AuthController, UsersController
from medchat.platform.web import VARY_ON_HTMX

_api = Router(
    path="/",
    route_handlers=[AuthController, UsersController, ApiKeysController, AdminApiKeysController, AuditController],
)
_pages = Router(
    path="/",
    route_handlers=[AccountPages, ProfilePages, AdminPages, AdminApiKeyPages, AuditPages],
    response_headers=VARY_ON_HTMX,  # a page or an HTMX fragment (or redirect) for the same URL
)
router = Router(path="/", route_handlers=[_api, _pages], dependencies=deps.dependencies)
