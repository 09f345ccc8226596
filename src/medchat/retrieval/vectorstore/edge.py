"""The embedded adapter: Qdrant Edge, Qdrant's engine in process, on disk under one directory.

One process per directory (the shard locks its write-ahead log). Edge has no background optimizer,
so after writes this adapter runs ``EdgeShard.optimize()`` (segment merging, HNSW building) on its
own thread.

qdrant-edge-py 0.9 holds the GIL for the whole of every call, so while the shard queries (a few ms)
or builds an HNSW graph (seconds), no other Python code in the process runs, event loop included.
Segments are therefore kept small (``MAX_SEGMENT_KB``): a build never covers more than one segment's
worth of new points, which bounds each stall to a few seconds (measured: at most 4.5 s while
ingesting 50k passages, 1.4 s per build with half-size segments), and the builds use every core.
The worker threads still keep the event loop free between calls.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import qdrant_edge as edge

from medchat.platform.errors import DependencyUnavailable
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

T = TypeVar("T")
_CONFIG_FILE = "edge_config.json"
MAX_SEGMENT_KB = 32_000
"""About 10k passages per segment: more segments make searches slower, bigger ones make builds stall longer."""
INDEXING_THRESHOLD_KB = 16_000


def _config(dim: int) -> edge.EdgeConfig:
    return edge.EdgeConfig(
        vectors={DENSE_VECTOR: edge.EdgeVectorParams(size=dim, distance=edge.Distance.Cosine)},
        sparse_vectors={SPARSE_VECTOR: edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)},
        optimizers=edge.EdgeOptimizersConfig(max_segment_size=MAX_SEGMENT_KB, indexing_threshold=INDEXING_THRESHOLD_KB),
    )


def scope_filter(scope: SearchScope) -> edge.Filter:
    return edge.Filter(
        should=[
            edge.FieldCondition("scope", match=edge.MatchValue("shared")),
            edge.FieldCondition("owner_id", match=edge.MatchValue(scope.user_id)),
        ]
    )


def _document_filter(document_id: str, from_chunk_index: int = 0) -> edge.Filter:
    conditions = [edge.FieldCondition("document_id", match=edge.MatchValue(document_id))]
    if from_chunk_index > 0:
        conditions.append(edge.FieldCondition("chunk_index", range=edge.RangeFloat(gte=float(from_chunk_index))))
    return edge.Filter(must=conditions)


def _sparse(vector: SparseVector) -> edge.SparseVector:
    return edge.SparseVector(list(vector.indices), list(vector.values))


def _point(point: PassagePoint) -> edge.Point:
    vectors = {DENSE_VECTOR: point.dense.astype(np.float32).tolist(), SPARSE_VECTOR: _sparse(point.sparse)}
    return edge.Point(point.record.point_id, vectors, point.record.to_payload())


class EdgeVectorStore:
    def __init__(self, path: Path, *, dim: int = EMBEDDING_DIM, threads: int = 4) -> None:
        self._path = path
        self._dim = dim
        self._shard: edge.EdgeShard | None = None
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="qdrant-edge")
        self._optimizer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qdrant-edge-optimize")
        self._optimize_lock = threading.Lock()
        self._optimize_running = False
        self._optimize_again = False

    @property
    def path(self) -> Path:
        return self._path

    @property
    def collection(self) -> str:
        return self._path.name

    async def _run(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    @property
    def _open_shard(self) -> edge.EdgeShard:
        if self._shard is None:
            raise DependencyUnavailable("the embedded vector store is not open: call ensure_collection() first")
        return self._shard

    @qdrant_call("ensure_collection")
    async def ensure_collection(self) -> None:
        if self._shard is None:
            self._shard = await self._run(self._open)

    def _open(self) -> edge.EdgeShard:
        try:
            if (self._path / _CONFIG_FILE).exists():
                shard = edge.EdgeShard.load(str(self._path), _config(self._dim))
            else:
                self._path.mkdir(parents=True, exist_ok=True)
                shard = edge.EdgeShard.create(str(self._path), _config(self._dim))
        except Exception as error:
            raise DependencyUnavailable(
                f"cannot open the embedded vector store at {self._path} ({error}); it serves one process "
                "at a time: stop the other one, or set MEDCHAT_QDRANT_URL to use a Qdrant server"
            ) from error
        indexed = set(shard.info().payload_schema)
        for field in KEYWORD_INDEXES:
            if field not in indexed:
                shard.update(edge.UpdateOperation.create_field_index(field, edge.PayloadSchemaType.Keyword))
        return shard

    @qdrant_call("upsert")
    async def upsert(self, points: Sequence[PassagePoint]) -> None:
        if not points:
            return
        shard = self._open_shard
        operation = edge.UpdateOperation.upsert_points([_point(point) for point in points])
        await self._run(lambda: shard.update(operation))
        self._schedule_optimize()

    async def delete_document(self, document_id: str, *, from_chunk_index: int = 0) -> None:
        await self._delete(_document_filter(document_id, from_chunk_index))

    async def delete_owner(self, owner_id: str) -> None:
        await self._delete(edge.Filter(must=[edge.FieldCondition("owner_id", match=edge.MatchValue(owner_id))]))

    @qdrant_call("delete")
    async def _delete(self, selection: edge.Filter) -> None:
        shard = self._open_shard
        await self._run(lambda: shard.update(edge.UpdateOperation.delete_points_by_filter(selection)))
        self._schedule_optimize()

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
        shard = self._open_shard
        request = _query_request(dense, sparse, scope=scope, limit=limit, mode=mode, hybrid=hybrid)
        if request is None:
            return []
        scored = await self._run(lambda: shard.query(request))
        return [_hit(point, dense) for point in scored]

    @qdrant_call("count")
    async def count(self, *, document_id: str | None = None) -> int:
        shard = self._open_shard
        request = edge.CountRequest(exact=True, filter=_document_filter(document_id) if document_id else None)
        return await self._run(lambda: shard.count(request))

    async def ping(self) -> bool:
        try:
            await self.count()
        except Exception:  # noqa: BLE001 - a health check reports, it does not raise
            return False
        return True

    async def optimize(self) -> None:
        """Wait until pending segment optimizations (HNSW builds) are done."""
        shard = self._open_shard
        await asyncio.get_running_loop().run_in_executor(self._optimizer, shard.optimize)

    def _schedule_optimize(self) -> None:
        with self._optimize_lock:
            if self._optimize_running:
                self._optimize_again = True
                return
            self._optimize_running = True
        self._optimizer.submit(self._optimize_until_settled)

    def _optimize_until_settled(self) -> None:
        while True:
            shard = self._shard
            if shard is not None:
                shard.optimize()
            with self._optimize_lock:
                if not self._optimize_again:
                    self._optimize_running = False
                    return
                self._optimize_again = False

    async def close(self) -> None:
        """Flush and close; waits for a running optimization to finish (pending ones are dropped)."""
        shard, self._shard = self._shard, None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: self._optimizer.shutdown(wait=True, cancel_futures=True))
        if shard is not None:
            await loop.run_in_executor(self._pool, shard.close)
        self._pool.shutdown(wait=False)


def _query_request(
    dense: np.ndarray,
    sparse: SparseVector,
    *,
    scope: SearchScope,
    limit: int,
    mode: SearchMode,
    hybrid: HybridParams,
) -> edge.QueryRequest | None:
    visible = scope_filter(scope)
    dense_query = edge.Query.Nearest(dense.astype(np.float32).tolist(), using=DENSE_VECTOR)
    sparse_query = edge.Query.Nearest(_sparse(sparse), using=SPARSE_VECTOR) if len(sparse) else None
    common = {"limit": limit, "filter": visible, "with_payload": True, "with_vector": [DENSE_VECTOR]}
    if mode == "dense" or (mode == "hybrid" and sparse_query is None):
        return edge.QueryRequest(query=dense_query, **common)
    if mode == "sparse":
        return edge.QueryRequest(query=sparse_query, **common) if sparse_query is not None else None
    depth = max(hybrid.prefetch_limit, limit)
    dense_prefetch = edge.Prefetch(limit=depth, query=dense_query, filter=visible)
    sparse_prefetch = edge.Prefetch(limit=depth, query=sparse_query, filter=visible)
    if hybrid.fusion == "dbsf":
        dense_times, sparse_times = hybrid.repeats
        prefetches = [dense_prefetch] * dense_times + [sparse_prefetch] * sparse_times
        fusion: edge.Fusion.Dbsf | edge.Fusion.Rrf = edge.Fusion.Dbsf()
    else:
        prefetches = [dense_prefetch, sparse_prefetch]
        fusion = edge.Fusion.Rrf(k=hybrid.rrf_k, weights=list(hybrid.weights))
    return edge.QueryRequest(prefetches=prefetches, query=fusion, **common)


def _hit(point: edge.ScoredPoint, dense: np.ndarray) -> Hit:
    vectors = point.vector if isinstance(point.vector, dict) else {}
    return Hit(
        id=str(point.id),
        score=float(point.score),
        dense_score=cosine(dense, vectors.get(DENSE_VECTOR)),
        record=PassageRecord.from_payload(point.payload or {}),
    )
