"""The VectorStore contract, run on every adapter (see conftest.vector_store)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient

from medchat.platform.errors import DependencyUnavailable, ServerError
from medchat.retrieval import SearchScope
from medchat.retrieval.sparse import document_vector, query_vector
from medchat.retrieval.vectorstore import (
    EdgeVectorStore,
    PassagePoint,
    PassageRecord,
    SearchMode,
    VectorStore,
    point_id,
)
from medchat.retrieval.vectorstore.server import QdrantServerVectorStore

DIM = 384
ALICE = SearchScope(user_id="alice")
BOB = SearchScope(user_id="bob")


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def near(vector: np.ndarray, *, seed: int, noise: float = 0.05) -> np.ndarray:
    moved = vector + noise * np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return (moved / np.linalg.norm(moved)).astype(np.float32)


def point(
    document_id: str,
    chunk_index: int = 0,
    *,
    text: str = "some passage text",
    owner: str = "admin",
    scope: str = "shared",
    dense: np.ndarray | None = None,
    page: int = 1,
) -> PassagePoint:
    record = PassageRecord(
        document_id=document_id,
        owner_id=owner,
        scope=scope,  # type: ignore[arg-type]
        title=f"Title of {document_id}",
        page=page,
        section="Intro > Details",
        text=text,
        chunk_index=chunk_index,
    )
    vector = dense if dense is not None else unit(hash((document_id, chunk_index)) % 10_000)
    return PassagePoint(record=record, dense=vector, sparse=document_vector(text))


async def search_dense(store: VectorStore, query: np.ndarray, scope: SearchScope = ALICE, limit: int = 10):
    return await store.search(query, query_vector(""), scope=scope, limit=limit, mode="dense")


@pytest.mark.asyncio
async def test_dense_search_returns_the_nearest_passage_with_its_payload(vector_store: VectorStore) -> None:
    target = unit(1)
    await vector_store.upsert([point("a", dense=unit(2)), point("b", dense=target, page=3), point("c", dense=unit(3))])
    hits = await search_dense(vector_store, near(target, seed=9))
    assert hits[0].record.document_id == "b"
    best = hits[0]
    assert best.id == point_id("b", 0)
    assert best.record == point("b", dense=target, page=3).record
    assert best.dense_score == pytest.approx(float(near(target, seed=9) @ target), abs=1e-3)
    assert best.dense_score > hits[1].dense_score


@pytest.mark.asyncio
async def test_sparse_search_ranks_by_shared_terms(vector_store: VectorStore) -> None:
    await vector_store.upsert(
        [
            point("diabetes", text="Metformin lowers blood glucose in type 2 diabetes."),
            point("asthma", text="Inhaled corticosteroids reduce airway inflammation in asthma."),
            point("gout", text="Allopurinol lowers uric acid in gout."),
        ]
    )
    hits = await vector_store.search(
        unit(5), query_vector("which drug lowers glucose?"), scope=ALICE, limit=3, mode="sparse"
    )
    assert hits[0].record.document_id == "diabetes"
    assert all(hit.record.document_id != "asthma" for hit in hits)


@pytest.mark.asyncio
async def test_hybrid_search_finds_both_dense_and_lexical_matches(vector_store: VectorStore) -> None:
    query_dense = unit(10)
    await vector_store.upsert(
        [
            point("semantic", text="A passage about something else entirely.", dense=near(query_dense, seed=1)),
            point("lexical", text="Warfarin interacts with many antibiotics.", dense=unit(11)),
            *[point(f"noise{i}", text=f"Unrelated filler number {i}.", dense=unit(100 + i)) for i in range(8)],
        ]
    )
    hits = await vector_store.search(
        query_dense, query_vector("warfarin antibiotics"), scope=ALICE, limit=2, mode="hybrid"
    )
    assert {hit.record.document_id for hit in hits} == {"semantic", "lexical"}


@pytest.mark.asyncio
async def test_search_sees_shared_and_own_private_passages_only(vector_store: VectorStore) -> None:
    query = unit(20)
    await vector_store.upsert(
        [
            point("shared-doc", dense=near(query, seed=1)),
            point("alice-doc", owner="alice", scope="private", dense=near(query, seed=2)),
            point("bob-doc", owner="bob", scope="private", dense=near(query, seed=3)),
        ]
    )
    sparse = query_vector("some passage text")

    async def seen_by(scope: SearchScope, mode: SearchMode) -> set[str]:
        hits = await vector_store.search(query, sparse, scope=scope, limit=10, mode=mode)
        return {hit.record.document_id for hit in hits}

    for mode in ("dense", "sparse", "hybrid"):
        assert await seen_by(ALICE, mode) == {"shared-doc", "alice-doc"}, mode
        assert await seen_by(BOB, mode) == {"shared-doc", "bob-doc"}, mode
        assert await seen_by(SearchScope(user_id="carol", is_admin=True), mode) == {"shared-doc"}, mode


@pytest.mark.asyncio
async def test_visibility_filter_runs_inside_the_query_not_after_it(vector_store: VectorStore) -> None:
    query = unit(30)
    bobs = [point(f"bob{i}", owner="bob", scope="private", dense=near(query, seed=i, noise=0.01)) for i in range(30)]
    await vector_store.upsert([*bobs, point("far-shared", dense=unit(31))])
    hits = await search_dense(vector_store, query, limit=3)
    assert [hit.record.document_id for hit in hits] == ["far-shared"]


@pytest.mark.asyncio
async def test_upserting_again_replaces_instead_of_duplicating(vector_store: VectorStore) -> None:
    first = [point("doc", i, text=f"old text {i}") for i in range(3)]
    await vector_store.upsert(first)
    await vector_store.upsert(first)
    assert await vector_store.count() == 3
    await vector_store.upsert([point("doc", 1, text="new text", dense=unit(40))])
    assert await vector_store.count() == 3
    hits = await search_dense(vector_store, unit(40), limit=1)
    assert hits[0].record.text == "new text"


@pytest.mark.asyncio
async def test_delete_document_removes_its_points_or_its_tail(vector_store: VectorStore) -> None:
    await vector_store.upsert([point("doc", i) for i in range(5)] + [point("other", i) for i in range(2)])
    await vector_store.delete_document("doc", from_chunk_index=3)
    assert await vector_store.count(document_id="doc") == 3
    await vector_store.delete_document("doc")
    assert await vector_store.count(document_id="doc") == 0
    assert await vector_store.count() == 2


@pytest.mark.asyncio
async def test_delete_owner_forgets_every_passage_of_that_owner(vector_store: VectorStore) -> None:
    await vector_store.upsert(
        [
            point("a", owner="alice", scope="private"),
            point("b", owner="alice"),
            point("c", owner="bob", scope="private"),
        ]
    )
    await vector_store.delete_owner("alice")
    assert await vector_store.count() == 1
    assert [h.record.document_id for h in await search_dense(vector_store, unit(1), scope=BOB)] == ["c"]


@pytest.mark.asyncio
async def test_empty_store_and_empty_queries(vector_store: VectorStore) -> None:
    assert await vector_store.ping()
    assert await vector_store.count() == 0
    assert await search_dense(vector_store, unit(1)) == []
    await vector_store.upsert([point("a", text="lonely passage"), point("no-terms", text="- - of the and -")])
    assert len(document_vector("- - of the and -")) == 0
    stopwords_only = query_vector("what is the")
    assert len(stopwords_only) == 0
    assert await vector_store.search(unit(1), stopwords_only, scope=ALICE, limit=5, mode="sparse") == []
    hybrid = await vector_store.search(unit(1), stopwords_only, scope=ALICE, limit=5, mode="hybrid")
    assert {hit.record.document_id for hit in hybrid} == {"a", "no-terms"}


@pytest.mark.asyncio
async def test_edge_store_persists_and_holds_its_directory(tmp_path: Path) -> None:
    store = EdgeVectorStore(tmp_path / "qdrant")
    await store.ensure_collection()
    await store.upsert([point("kept", dense=unit(50))])
    second = EdgeVectorStore(tmp_path / "qdrant")
    with pytest.raises(DependencyUnavailable, match="one process"):
        await second.ensure_collection()
    await second.close()
    await store.close()
    reopened = EdgeVectorStore(tmp_path / "qdrant")
    await reopened.ensure_collection()
    await reopened.optimize()
    assert await reopened.count() == 1
    assert (await search_dense(reopened, unit(50)))[0].record.document_id == "kept"
    await reopened.close()
    assert not await reopened.ping()


@pytest.mark.asyncio
async def test_server_store_refuses_a_collection_of_another_dimension() -> None:
    client = AsyncQdrantClient(location=":memory:")
    await QdrantServerVectorStore(client, collection="passages", dim=128).ensure_collection()
    with pytest.raises(ServerError, match="384"):
        await QdrantServerVectorStore(client, collection="passages").ensure_collection()
    await client.close()
