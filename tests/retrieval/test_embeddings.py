from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from medchat.retrieval.embeddings import EMBEDDING_DIM, Embedder


def test_vectors_are_unit_length_float32_rows(embedder: Embedder) -> None:
    vectors = embedder.embed(["Aspirin thins the blood.", "Fever in children", ""])
    assert vectors.shape == (3, EMBEDDING_DIM)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert embedder.embed([]).shape == (0, EMBEDDING_DIM)


def test_similar_sentences_are_closer_than_unrelated_ones(embedder: Embedder) -> None:
    diabetes, glucose, football = embedder.embed(
        [
            "Diabetes is a disease in which blood sugar levels are too high.",
            "High blood glucose is the main sign of diabetes mellitus.",
            "The football match ended in a draw after extra time.",
        ]
    )
    assert diabetes @ glucose > 0.6
    assert diabetes @ football < 0.2
    assert diabetes @ glucose > diabetes @ football + 0.4


def test_batching_padding_and_order_do_not_change_a_vector(embedder: Embedder) -> None:
    short = "Short text about asthma."
    long = " ".join(["A much longer passage about inhalers, steroids and peak flow monitoring."] * 6)
    alone = embedder.embed([short])[0]
    batched = embedder.embed([long, short, long])
    assert batched[1] @ alone > 0.999
    assert batched[0] @ batched[2] > 0.999


def test_texts_beyond_the_model_window_are_truncated_not_rejected(embedder: Embedder) -> None:
    head = "Hypertension raises the risk of stroke and heart disease. " * 40
    vectors = embedder.embed([head, head + "Completely different trailing words about gardening. " * 40])
    assert vectors[0] @ vectors[1] > 0.99


@pytest.mark.asyncio
async def test_async_embedding_runs_off_the_event_loop(embedder: Embedder) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    original = embedder.embed

    def spying(texts):  # a probe around the real model, which still runs
        seen.append(threading.get_ident())
        return original(texts)

    embedder.embed = spying  # type: ignore[method-assign]
    try:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        vectors = await embedder.embed_async(["Chest pain radiating to the left arm."] * 64, bulk=True)
        task.cancel()
    finally:
        del embedder.embed
    assert vectors.shape == (64, EMBEDDING_DIM)
    assert seen and loop_thread not in seen
    assert ticks > 1
    assert np.allclose(vectors[0], embedder.embed(["Chest pain radiating to the left arm."])[0], atol=1e-5)


class CountingEmbedder(Embedder):
    """The real model, counting its runs and the texts in each."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.runs.append(list(texts))
        return super().embed(texts)


async def test_queries_asked_together_share_model_runs_and_keep_their_own_vectors() -> None:
    embedder = CountingEmbedder()
    questions = [f"What are the symptoms of condition number {number}?" for number in range(12)]
    try:
        vectors = await asyncio.gather(*(embedder.embed_query(question) for question in questions))
        expected = embedder.embed(questions)
    finally:
        embedder.close()
    model_runs = embedder.runs[:-1]  # the last run is the check's own
    assert sorted(text for run in model_runs for text in run) == sorted(questions)
    assert len(model_runs) < len(questions), "every query had a model run of its own"
    for vector, wanted in zip(vectors, expected, strict=True):
        assert float(vector @ wanted) > 0.9999


async def test_a_recent_query_is_not_embedded_again() -> None:
    embedder = CountingEmbedder()
    try:
        first = await embedder.embed_query("How is gout treated?")
        again = await embedder.embed_query("How is gout treated?")
        other = await embedder.embed_query("How is asthma treated?")
    finally:
        embedder.close()
    assert embedder.runs == [["How is gout treated?"], ["How is asthma treated?"]]
    assert np.array_equal(first, again)
    assert not again.flags.writeable
    assert float(first @ other) < 0.99
