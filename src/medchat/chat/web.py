"""The chat module's HTTP surface: the JSON API and the pages, as one router."""

from litestar import Router

from medchat.chat import deps
from medchat.chat.model_pages import AdminModelPages
from medchat.chat.model_routes import ChatModelsController, ModelAccessController
from medchat.chat.openai_compat import OpenAIController
from medchat.chat.pages import page_handlers
from medchat.chat.routes import ChatController
from medchat.platform.web import VARY_ON_HTMX

_api = Router(path="/", route_handlers=[ChatController, ChatModelsController, ModelAccessController, OpenAIController])
_pages = Router(
    path="/",
    route_handlers=[*page_handlers, AdminModelPages],
    response_headers=VARY_ON_HTMX,  # a page or an HTMX fragment (or redirect) for the same URL
)
router = Router(path="/", route_handlers=[_api, _pages], dependencies=deps.dependencies)
