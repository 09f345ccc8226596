"""What counts as found, and what a search returns per document: real model, real stores, MedQuAD distractors."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from medchat.retrieval import Retriever, SearchScope
from medchat.retrieval.chunking import Chunk
from medchat.retrieval.embeddings import Embedder
from medchat.retrieval.ranking import join_overlapping, unknown_terms
from medchat.retrieval.search import DocumentInfo, embedding_text
from medchat.retrieval.vectorstore import EdgeVectorStore, VectorStore
from tests.support.chunks import chunks_of
from tests.support.leaflets import GOUT_LEAFLET

ALICE = SearchScope(user_id="alice")
OFF_TOPIC = [
    "What is the capital of France?",
    "How do I fix a flat tyre on my bicycle?",
    "What's a good recipe for banana bread?",
    "How do I reset my router password?",
    "Tell me a joke about penguins.",
]


@pytest.fixture
async def vector_store(tmp_path: Path) -> AsyncIterator[VectorStore]:
    """Ranking happens after the store (the store contract is tested on every adapter elsewhere)."""
    store = EdgeVectorStore(tmp_path / "qdrant")
    await store.ensure_collection()
    yield store
    await store.close()


@pytest.fixture
async def retriever(vector_store: VectorStore, embedder: Embedder, medquad_sample: list[dict]) -> Retriever:
    retriever = Retriever(vector_store, embedder=embedder, top_k=5, score_threshold=0.3)
    for row in medquad_sample[:12]:
        await retriever.index_chunks(DocumentInfo(row["id"], "admin", "shared", row["focus"]), chunks_of(row["answer"]))
    return retriever


async def add_leaflet(retriever: Retriever) -> None:
    await retriever.index_chunks(
        DocumentInfo("gout", "admin", "shared", "Gout leaflet"), chunks_of(GOUT_LEAFLET, chunk_tokens=80)
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("question", ["What is hyperuricaemia?", "What are tophi?"])
async def test_terms_the_model_does_not_know_find_the_passage_defining_them(
    retriever: Retriever, question: str
) -> None:
    await add_leaflet(retriever)
    passages = await retriever.search(question, scope=ALICE)
    assert passages, question
    assert passages[0].document_id == "gout"
    term = re.sub(r"^What (is|are) |\?$", "", question)
    assert term in passages[0].text


@pytest.mark.asyncio
async def test_a_made_up_term_with_ordinary_words_ranks_its_passage_first(retriever: Retriever) -> None:
    text = (
        "Zorvaxin is a new tablet for long-term joint pain. Adults take one tablet in the morning with food. "
        "It should not be combined with other anti-inflammatory painkillers."
    )
    await retriever.index_chunks(DocumentInfo("zorvaxin", "admin", "shared", "New medicines bulletin"), chunks_of(text))
    passages = await retriever.search("zorvaxin morning advice", scope=ALICE)
    assert passages[0].document_id == "zorvaxin"


@pytest.mark.asyncio
async def test_off_topic_questions_still_find_nothing(retriever: Retriever) -> None:
    await add_leaflet(retriever)
    for question in OFF_TOPIC:
        assert await retriever.search(question, scope=ALICE) == [], question


@pytest.mark.asyncio
async def test_one_long_document_does_not_crowd_out_the_others(retriever: Retriever) -> None:
    await add_leaflet(retriever)
    passages = await retriever.search("gout flare treatment and prevention", scope=ALICE, top_k=6)
    per_document: dict[str, int] = {}
    for passage in passages:
        per_document[passage.document_id] = per_document.get(passage.document_id, 0) + 1
    assert per_document.get("gout", 0) in (1, 2), per_document
    assert max(per_document.values()) <= 2


@pytest.mark.asyncio
async def test_adjacent_chunks_of_a_document_come_back_as_one_passage(
    vector_store: VectorStore, embedder: Embedder
) -> None:
    retriever = Retriever(vector_store, embedder=embedder, top_k=5, score_threshold=0.0)
    chunks = chunks_of(GOUT_LEAFLET, chunk_tokens=60)
    await retriever.index_chunks(DocumentInfo("gout", "admin", "shared", "Gout leaflet"), chunks)
    passages = await retriever.search("gout urate crystals hyperuricaemia tophi flare", scope=ALICE, top_k=5)
    assert len(passages) <= 2  # one document: at most two passages, whatever top_k asks
    flat = " ".join(GOUT_LEAFLET.split())
    merged = [passage for passage in passages if len(passage.text) > max(len(chunk.text) for chunk in chunks)]
    assert merged, [len(p.text) for p in passages]
    for passage in passages:
        assert " ".join(passage.text.split()) in flat  # merged text repeats nothing and skips nothing


def test_joining_consecutive_chunks_gives_back_the_text() -> None:
    chunks = chunks_of(GOUT_LEAFLET, chunk_tokens=50)
    assert len(chunks) > 4
    joined = chunks[0].text
    for chunk in chunks[1:]:
        joined = join_overlapping(joined, chunk.text)
    assert " ".join(joined.split()) == " ".join(GOUT_LEAFLET.split())


def test_unrelated_texts_join_with_a_paragraph_break() -> None:
    assert join_overlapping("Rest the joint.", "Drink water.") == "Rest the joint.\n\nDrink water."


def test_unknown_terms_are_the_words_the_embedding_model_splits() -> None:
    assert unknown_terms("What are tophi and is naproxen safe?") == {"tophi", "naproxen"}
    assert unknown_terms("What is the capital of France?") == frozenset()


def test_every_chunk_is_embedded_with_its_title_and_heading_path() -> None:
    chunk = Chunk(index=3, page=2, section="Treatment > Flares", text="Rest the joint.", token_count=4)
    assert embedding_text(chunk, "Gout leaflet") == "Gout leaflet > Treatment > Flares\nRest the joint."
    plain = Chunk(index=3, page=2, section="", text="Rest the joint.", token_count=4)
    assert embedding_text(plain, "Gout leaflet") == "Gout leaflet\nRest the joint."
    titled = Chunk(index=0, page=1, section="Gout leaflet > Flares", text="Rest.", token_count=2)
    assert embedding_text(titled, "Gout leaflet") == "Gout leaflet > Flares\nRest."
    assert embedding_text(plain, "0042-7731") == embedding_text(plain, "12345678") == "Rest the joint."
