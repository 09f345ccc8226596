"""Retrieval: the knowledge base — documents, parsing, chunking, embeddings, the vector store and hybrid search.

The public surface of the module; everything not exported here is private to it. What leaves the module is
frozen (``DocumentView``, ``Passage``, ``SearchScope``) or a service; its Beanie records stay inside.
The runtime opens it with ``open_knowledge_base`` and registers the services its handlers are given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medchat.platform.lazy import lazy_exports
from medchat.retrieval.jobs import JOB_FUNCTIONS
from medchat.retrieval.knowledge_base import KnowledgeBase, open_knowledge_base
from medchat.retrieval.models import document_models
from medchat.retrieval.scope import SearchScope
from medchat.retrieval.search import Passage, Retriever
from medchat.retrieval.services import DocumentService, DocumentView

if TYPE_CHECKING:
    from litestar import Router

    router: Router

__getattr__ = lazy_exports(__name__, {"router": "medchat.retrieval.web"})

__all__ = [
    "JOB_FUNCTIONS",
    "DocumentService",
    "DocumentView",
    "KnowledgeBase",
    "Passage",
    "Retriever",
    "SearchScope",
    "document_models",
    "open_knowledge_base",
    "router",
]
