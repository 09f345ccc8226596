"""Fixtures of the retrieval tests: the real embedding model and real vector stores, no stand-ins.

``vector_store`` runs each contract test on Qdrant Edge and on the server adapter through
qdrant-client's local mode; with MEDCHAT_TEST_QDRANT_URL set, also on that real Qdrant server.
"""

from __future__ import annotations

import gzip
import json
import os
import uuid
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from qdrant_client import AsyncQdrantClient

from medchat.retrieval.embeddings import Embedder, default_embedder
from medchat.retrieval.vectorstore import EdgeVectorStore, VectorStore
from medchat.retrieval.vectorstore.server import QdrantServerVectorStore

REPOSITORY = Path(__file__).resolve().parents[2]
MEDQUAD = REPOSITORY.parent / "shared" / "data" / "medquad" / "medquad.jsonl.gz"
STORE_KINDS = ["edge", "qdrant-local"] + (["qdrant-server"] if os.environ.get("MEDCHAT_TEST_QDRANT_URL") else [])


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    model = default_embedder()
    model.load()
    return model


@pytest.fixture(params=STORE_KINDS)
async def vector_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorStore]:
    store: VectorStore
    if request.param == "edge":
        store = EdgeVectorStore(tmp_path / "qdrant")
    elif request.param == "qdrant-local":
        store = QdrantServerVectorStore(AsyncQdrantClient(location=":memory:"), collection="passages")
    else:
        store = QdrantServerVectorStore.from_url(
            os.environ["MEDCHAT_TEST_QDRANT_URL"], api_key=None, collection=f"test_{uuid.uuid4().hex[:12]}"
        )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Payload indexes have no effect in the local Qdrant", UserWarning)
        await store.ensure_collection()
    yield store
    await store.close()


@pytest.fixture(scope="session")
def medquad_sample() -> list[dict]:
    """50 MedQuAD answers of distinct topics, with their questions (fixed, so runs compare)."""
    if not MEDQUAD.exists():
        message = f"MedQuAD not found at {MEDQUAD} (the shared data folder sits beside the repository)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    picked: list[dict] = []
    seen_focus: set[str] = set()
    with gzip.open(MEDQUAD, "rt", encoding="utf-8") as lines:
        for index, line in enumerate(lines):
            row = json.loads(line)
            if index % 97 == 0 and row["focus"] not in seen_focus and 200 < len(row["answer"]) < 1500:
                picked.append(row)
                seen_focus.add(row["focus"])
            if len(picked) == 50:
                break
    return picked
