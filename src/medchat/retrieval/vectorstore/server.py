"""The production adapter: a Qdrant server through qdrant-client's ``AsyncQdrantClient``.

Tests run it against qdrant-client's local mode (``AsyncQdrantClient(location=":memory:")``), which
speaks the same API; local mode is far too slow (and blocks the loop) to serve with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx
import numpy as np
from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from medchat.platform.errors import DependencyUnavailable, ServerError
from medchat.retrieval.embeddings import EMBEDDING_DIM
from medchat.retrieval.scope import SearchScope
from medchat.retrieval.sparse import SparseVector
from medchat.retrieval.vectorstore.records import (
    DENSE_VECTOR,
    KEYWORD_INDEXES,
    SPARSE_VECTOR,
    Hit,
    HybridParams,
    PassagePoint,
    PassageRecord,
    SearchMode,
    cosine,
)
from medchat.retrieval.vectorstore.timing import qdrant_call

_UNAVAILABLE = (ResponseHandlingException, UnexpectedResponse, httpx.HTTPError, ConnectionError, TimeoutError)


def scope_filter(scope: SearchScope) -> models.Filter:
    return models.Filter(
        should=[
            models.FieldCondition(key="scope", match=models.MatchValue(value="shared")),
            models.FieldCondition(key="owner_id", match=models.MatchValue(value=scope.user_id)),
        ]
    )


def _document_filter(document_id: str, from_chunk_index: int = 0) -> models.Filter:
    conditions: list[models.Condition] = [
        models.FieldCondition(key="document_id", match=models.MatchValue(value=document_id))
    ]
    if from_chunk_index > 0:
        conditions.append(models.FieldCondition(key="chunk_index", range=models.Range(gte=from_chunk_index)))
    return models.Filter(must=conditions)


def _sparse(vector: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=list(vector.indices), values=list(vector.values))


class QdrantServerVectorStore:
    def __init__(self, client: AsyncQdrantClient, *, collection: str, dim: int = EMBEDDING_DIM) -> None:
        self._client = client
        self._collection = collection
        self._dim = dim

    @classmethod
    def from_url(cls, url: str, *, api_key: str | None, collection: str, timeout: int = 10) -> QdrantServerVectorStore:
        return cls(AsyncQdrantClient(url=url, api_key=api_key, timeout=timeout), collection=collection)

    @property
    def collection(self) -> str:
        return self._collection

    @asynccontextmanager
    async def _calling(self, action: str) -> AsyncIterator[None]:
        try:
            yield
        except _UNAVAILABLE as error:
            raise DependencyUnavailable(f"Qdrant did not answer while trying to {action}: {error}") from error

    @qdrant_call("ensure_collection")
    async def ensure_collection(self) -> None:
        async with self._calling("create the collection"):
            if await self._client.collection_exists(self._collection):
                await self._check_dimension()
            else:
                await self._client.create_collection(
                    self._collection,
                    vectors_config={DENSE_VECTOR: models.VectorParams(size=self._dim, distance=models.Distance.COSINE)},
                    sparse_vectors_config={SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                )
            for field in KEYWORD_INDEXES:
                await self._client.create_payload_index(
                    self._collection, field_name=field, field_schema=models.PayloadSchemaType.KEYWORD, wait=True
                )

    async def _check_dimension(self) -> None:
        info = await self._client.get_collection(self._collection)
        vectors = info.config.params.vectors
        size = vectors[DENSE_VECTOR].size if isinstance(vectors, dict) and DENSE_VECTOR in vectors else None
        if size != self._dim:
            raise ServerError(
                f"Qdrant collection {self._collection!r} has no {self._dim}-dimensional {DENSE_VECTOR!r} vector "
                f"(found {size}); point MEDCHAT_QDRANT_COLLECTION at a new collection"
            )

    @qdrant_call("upsert")
    async def upsert(self, points: Sequence[PassagePoint]) -> None:
        if not points:
            return
        structs = [
            models.PointStruct(
                id=point.record.point_id,
                vector={DENSE_VECTOR: point.dense.astype(np.float32).tolist(), SPARSE_VECTOR: _sparse(point.sparse)},
                payload=point.record.to_payload(),
            )
            for point in points
        ]
        async with self._calling("store passages"):
            await self._client.upsert(self._collection, points=structs, wait=True)

    async def delete_document(self, document_id: str, *, from_chunk_index: int = 0) -> None:
        await self._delete(_document_filter(document_id, from_chunk_index))

    async def delete_owner(self, owner_id: str) -> None:
        await self._delete(
            models.Filter(must=[models.FieldCondition(key="owner_id", match=models.MatchValue(value=owner_id))])
        )

    @qdrant_call("delete")
    async def _delete(self, selection: models.Filter) -> None:
        async with self._calling("delete passages"):
            await self._client.delete(
                self._collection, points_selector=models.FilterSelector(filter=selection), wait=True
            )

    @qdrant_call("search")
    async def search(
        self,
        dense: np.ndarray,
        sparse: SparseVector,
        *,
        scope: SearchScope,
        limit: int,
        mode: SearchMode = "hybrid",
        hybrid: HybridParams = HybridParams(),  # noqa: B008
    ) -> list[Hit]:
        visible = scope_filter(scope)
        dense_query = dense.astype(np.float32).tolist()
        has_terms = len(sparse) > 0
        common = {"limit": limit, "query_filter": visible, "with_payload": True, "with_vectors": [DENSE_VECTOR]}
        async with self._calling("search"):
            if mode == "dense" or (mode == "hybrid" and not has_terms):
                response = await self._client.query_points(
                    self._collection, query=dense_query, using=DENSE_VECTOR, **common
                )
            elif mode == "sparse":
                if not has_terms:
                    return []
                response = await self._client.query_points(
                    self._collection, query=_sparse(sparse), using=SPARSE_VECTOR, **common
                )
            else:
                depth = max(hybrid.prefetch_limit, limit)
                response = await self._client.query_points(
                    self._collection,
                    prefetch=_prefetches(dense_query, sparse, visible=visible, depth=depth, hybrid=hybrid),
                    query=_fusion(hybrid),
                    **common,
                )
        return [_hit(point, dense) for point in response.points]

    @qdrant_call("count")
    async def count(self, *, document_id: str | None = None) -> int:
        async with self._calling("count passages"):
            result = await self._client.count(
                self._collection, count_filter=_document_filter(document_id) if document_id else None, exact=True
            )
        return result.count

    async def ping(self) -> bool:
        try:
            await self._client.collection_exists(self._collection)
        except Exception:  # noqa: BLE001 - a health check reports, it does not raise
            return False
        return True

    async def close(self) -> None:
        await self._client.close()


def _prefetches(
    dense: list[float], sparse: SparseVector, *, visible: models.Filter, depth: int, hybrid: HybridParams
) -> list[models.Prefetch]:
    dense_prefetch = models.Prefetch(query=dense, using=DENSE_VECTOR, limit=depth, filter=visible)
    sparse_prefetch = models.Prefetch(query=_sparse(sparse), using=SPARSE_VECTOR, limit=depth, filter=visible)
    if hybrid.fusion == "dbsf":
        dense_times, sparse_times = hybrid.repeats
        return [dense_prefetch] * dense_times + [sparse_prefetch] * sparse_times
    return [dense_prefetch, sparse_prefetch]


def _fusion(hybrid: HybridParams) -> models.Query:
    if hybrid.fusion == "dbsf":
        return models.FusionQuery(fusion=models.Fusion.DBSF)
    return models.RrfQuery(rrf=models.Rrf(k=hybrid.rrf_k, weights=list(hybrid.weights)))


def _hit(point: models.ScoredPoint, dense: np.ndarray) -> Hit:
    vectors = point.vector if isinstance(point.vector, dict) else {}
    stored = vectors.get(DENSE_VECTOR)
    return Hit(
        id=str(point.id),
        score=float(point.score),
        dense_score=cosine(dense, stored if isinstance(stored, list) else None),
        record=PassageRecord.from_payload(point.payload or {}),
    )
