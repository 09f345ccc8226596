"""Retrieval: parsing uploads, chunking, embeddings, the vector store and hybrid search.

The public surface of the module; everything not exported here is private to it.
"""

from __future__ import annotations

from litestar import Router
from litestar.datastructures import State
from litestar.di import Provide

from medchat.retrieval.chunking import Chunk, chunk_document
from medchat.retrieval.document import Heading, ParsedDocument, ParsedPage
from medchat.retrieval.embeddings import EMBEDDING_DIM, Embedder, default_embedder
from medchat.retrieval.errors import UnreadableDocument
from medchat.retrieval.jobs import JOB_FUNCTIONS
from medchat.retrieval.models import SourceDocument
from medchat.retrieval.pages import KnowledgeBasePages
from medchat.retrieval.parsing import detect_media_type, ocr_image, parse_document, transcribe
from medchat.retrieval.routes import DocumentController, OriginalFileController, SearchController
from medchat.retrieval.scope import SearchScope, Visibility
from medchat.retrieval.search import DocumentInfo, IndexResult, Passage, Retriever
from medchat.retrieval.services import DocumentService, DocumentView
from medchat.retrieval.sparse import SparseVector
from medchat.retrieval.storage import FileStore
from medchat.retrieval.vectorstore import (
    EdgeVectorStore,
    Hit,
    HybridParams,
    PassagePoint,
    PassageRecord,
    QdrantServerVectorStore,
    SearchMode,
    VectorStore,
    open_vector_store,
)

document_models: list[type] = [SourceDocument]


def _documents(state: State) -> DocumentService:
    return state.runtime.documents


router = Router(
    path="/",
    route_handlers=[DocumentController, SearchController, OriginalFileController, KnowledgeBasePages],
    dependencies={"documents": Provide(_documents, sync_to_thread=False)},
)

__all__ = [
    "EMBEDDING_DIM",
    "JOB_FUNCTIONS",
    "Chunk",
    "DocumentInfo",
    "DocumentService",
    "DocumentView",
    "EdgeVectorStore",
    "Embedder",
    "FileStore",
    "Heading",
    "Hit",
    "HybridParams",
    "IndexResult",
    "ParsedDocument",
    "ParsedPage",
    "Passage",
    "PassagePoint",
    "PassageRecord",
    "QdrantServerVectorStore",
    "Retriever",
    "SearchMode",
    "SearchScope",
    "SparseVector",
    "UnreadableDocument",
    "VectorStore",
    "Visibility",
    "chunk_document",
    "default_embedder",
    "detect_media_type",
    "document_models",
    "ocr_image",
    "open_vector_store",
    "parse_document",
    "router",
    "transcribe",
]
