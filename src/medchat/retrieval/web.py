"""The retrieval module's HTTP surface: documents, search, OCR and voice APIs and the knowledge-base pages."""

from litestar import Router

from medchat.retrieval.deps import dependencies
from medchat.retrieval.pages import pages_router
from medchat.retrieval.routes import DocumentController, OriginalFileController, SearchController

router = Router(
    path="/",
    route_handlers=[DocumentController, SearchController, OriginalFileController, pages_router],
    dependencies=dependencies,
)
