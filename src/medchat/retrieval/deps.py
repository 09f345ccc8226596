"""Retrieval's typed Litestar dependencies: the services the runtime built and registered."""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import Provide

from medchat.platform.registry import registry_of
from medchat.retrieval.search import Retriever
from medchat.retrieval.services import DocumentService


def provide_documents(state: State) -> DocumentService:
    """The ``documents`` dependency of retrieval's handlers."""
    return registry_of(state).get(DocumentService)


def provide_retriever(state: State) -> Retriever:
    """The ``retriever`` dependency: search over the passages (the web process always holds the index)."""
    return registry_of(state).get(Retriever)


dependencies = {
    "documents": Provide(provide_documents, sync_to_thread=False),
    "retriever": Provide(provide_retriever, sync_to_thread=False),
}
"""For retrieval's router."""
