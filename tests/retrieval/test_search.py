"""The Retriever end to end: real model, real stores, 50 MedQuAD answers."""

from __future__ import annotations

import pytest

from medchat.retrieval import Retriever, SearchScope
from medchat.retrieval.embeddings import Embedder
from medchat.retrieval.search import DocumentInfo
from medchat.retrieval.vectorstore import VectorStore
from tests.support.chunks import chunks_of

ADMIN = SearchScope(user_id="admin", is_admin=True)
ALICE = SearchScope(user_id="alice")
BOB = SearchScope(user_id="bob")


@pytest.fixture
async def retriever(vector_store: VectorStore, embedder: Embedder) -> Retriever:
    return Retriever(vector_store, embedder=embedder, top_k=5, score_threshold=0.3)


async def index_medquad(retriever: Retriever, sample: list[dict]) -> None:
    for row in sample:
        info = DocumentInfo(row["id"], "admin", "shared", row["focus"])
        await retriever.index_chunks(info, chunks_of(row["answer"]))


@pytest.mark.asyncio
async def test_questions_find_their_answers(retriever: Retriever, medquad_sample: list[dict]) -> None:
    await index_medquad(retriever, medquad_sample)
    first, within_five = 0, 0
    for row in medquad_sample:
        passages = await retriever.search(row["question"], scope=ALICE)
        found = [passage.document_id for passage in passages]
        first += found[:1] == [row["id"]]
        within_five += row["id"] in found
    assert within_five >= 45, within_five
    assert first >= 35, first


@pytest.mark.asyncio
async def test_passages_carry_citation_fields(retriever: Retriever, medquad_sample: list[dict]) -> None:
    row = medquad_sample[0]
    await index_medquad(retriever, medquad_sample[:5])
    passage = (await retriever.search(row["question"], scope=ALICE))[0]
    assert passage.document_id == row["id"]
    assert passage.title == row["focus"]
    assert passage.page == 1
    assert passage.text in row["answer"]
    assert 0 < len(passage.snippet) <= 245
    assert 0.3 <= passage.score <= 1.0
    assert passage.chunk_id


@pytest.mark.asyncio
async def test_private_passages_never_reach_another_user(retriever: Retriever, embedder: Embedder) -> None:
    secret = "Alice's lab result: her ferritin level was 9 micrograms per litre, showing iron deficiency."
    await retriever.index_chunks(DocumentInfo("alice-labs", "alice", "private", "Alice labs"), chunks_of(secret))
    await retriever.index_chunks(
        DocumentInfo("leaflet", "admin", "shared", "Iron"),
        chunks_of("Iron deficiency anaemia is treated with iron tablets and a diet rich in iron."),
    )
    query = "What was the ferritin level in the lab result showing iron deficiency?"
    for mode in ("hybrid", "dense", "sparse"):
        assert "alice-labs" in {p.document_id for p in await retriever.search(query, scope=ALICE, mode=mode)}
        for other in (BOB, ADMIN):
            seen = {p.document_id for p in await retriever.search(query, scope=other, mode=mode, score_threshold=0)}
            assert "alice-labs" not in seen, (mode, other)
            assert seen == {"leaflet"}, (mode, other)


@pytest.mark.asyncio
async def test_nothing_counts_as_found_below_the_threshold(retriever: Retriever, medquad_sample: list[dict]) -> None:
    await index_medquad(retriever, medquad_sample[:20])
    assert await retriever.search("How do I reset the password of my wifi router?", scope=ALICE) == []
    assert await retriever.search("   ", scope=ALICE) == []
    everything = await retriever.search(
        "How do I reset the password of my wifi router?", scope=ALICE, score_threshold=0
    )
    assert everything and all(p.score < 0.3 for p in everything)


@pytest.mark.asyncio
async def test_duplicates_and_near_duplicates_are_collapsed(retriever: Retriever) -> None:
    text = (
        "Gout is a form of arthritis caused by uric acid crystals in the joints. It often starts in the big toe "
        "with sudden severe pain, redness and swelling, usually at night."
    )
    await retriever.index_chunks(DocumentInfo("gout-a", "admin", "shared", "Gout"), chunks_of(text))
    await retriever.index_chunks(DocumentInfo("gout-b", "admin", "shared", "Gout copy"), chunks_of(text))
    await retriever.index_chunks(
        DocumentInfo("gout-c", "admin", "shared", "Gout edited"), chunks_of(text.replace("usually", "mostly"))
    )
    await retriever.index_chunks(
        DocumentInfo("gout-diet", "admin", "shared", "Gout diet"),
        chunks_of("People with gout should limit red meat, seafood and beer, which raise uric acid levels."),
    )
    found = [p.document_id for p in await retriever.search("What causes gout pain in the big toe?", scope=ALICE)]
    copies = [document_id for document_id in found if document_id in {"gout-a", "gout-b", "gout-c"}]
    assert len(copies) == 1, found
    assert "gout-diet" in found


@pytest.mark.asyncio
async def test_reindexing_replaces_a_document_and_delete_removes_it(retriever: Retriever) -> None:
    long_text = " ".join(
        f"Paragraph {i} explains a different aspect of kidney stones and hydration." for i in range(60)
    )
    info = DocumentInfo("stones", "alice", "private", "Kidney stones")
    progress: list[tuple[int, int]] = []

    async def record(done: int, total: int) -> None:
        progress.append((done, total))

    first = await retriever.index_chunks(info, chunks_of(long_text), on_progress=record)
    assert first.chunks > 3
    assert progress[-1] == (first.chunks, first.chunks)
    assert await retriever.store.count(document_id="stones") == first.chunks
    again = await retriever.index_chunks(info, chunks_of(long_text))
    assert await retriever.store.count(document_id="stones") == again.chunks == first.chunks
    shorter = await retriever.index_chunks(info, chunks_of("Drink plenty of water to prevent kidney stones."))
    assert shorter.chunks == 1
    assert await retriever.store.count(document_id="stones") == 1
    await retriever.delete_document("stones")
    assert await retriever.store.count(document_id="stones") == 0
    assert await retriever.search("kidney stones water", scope=ALICE) == []


@pytest.mark.asyncio
async def test_index_batches_are_pipelined_and_complete(vector_store: VectorStore, embedder: Embedder) -> None:
    retriever = Retriever(vector_store, embedder=embedder, index_batch_size=4)
    chunks = chunks_of(" ".join(f"Sentence {i} about migraine triggers such as sleep loss." for i in range(200)))
    result = await retriever.index_chunks(DocumentInfo("migraine", "admin", "shared", "Migraine"), chunks)
    assert result.chunks == len(chunks) > 8
    assert await vector_store.count() == len(chunks)


@pytest.mark.asyncio
async def test_chunks_must_be_numbered_from_zero(retriever: Retriever) -> None:
    chunks = chunks_of("First sentence about asthma. " * 80)
    with pytest.raises(ValueError, match="numbered"):
        await retriever.index_chunks(DocumentInfo("asthma", "admin", "shared", "Asthma"), chunks[1:])
