"""What the vector store holds per passage, and what a search returns."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from medchat.retrieval.scope import Visibility
from medchat.retrieval.sparse import SparseVector

DENSE_VECTOR = "dense"
SPARSE_VECTOR = "sparse"
KEYWORD_INDEXES = ("document_id", "owner_id", "scope")
_POINT_NAMESPACE = uuid.UUID("6f1c8a52-3e0b-4d59-9a57-1f6a0c2b7d11")

SearchMode = Literal["hybrid", "dense", "sparse"]


def point_id(document_id: str, chunk_index: int) -> str:
    """Deterministic, so indexing a document again replaces its points instead of adding to them."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{document_id}\x1f{chunk_index}"))


@dataclass(frozen=True, slots=True)
class PassageRecord:
    """The payload of one point."""

    document_id: str
    owner_id: str
    scope: Visibility
    title: str
    page: int
    section: str
    text: str
    chunk_index: int

    @property
    def point_id(self) -> str:
        return point_id(self.document_id, self.chunk_index)

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> PassageRecord:
        return cls(
            document_id=str(payload["document_id"]),
            owner_id=str(payload["owner_id"]),
            scope=payload["scope"],
            title=str(payload.get("title", "")),
            page=int(payload.get("page", 1)),
            section=str(payload.get("section", "")),
            text=str(payload.get("text", "")),
            chunk_index=int(payload.get("chunk_index", 0)),
        )


@dataclass(frozen=True, slots=True)
class PassagePoint:
    record: PassageRecord
    dense: np.ndarray
    """Unit-length float32 vector of the embedding dimension."""
    sparse: SparseVector


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    score: float
    """The ranking score of the mode: cosine (dense), BM25 (sparse) or the fusion score (hybrid)."""
    dense_score: float
    """Cosine similarity of the query and the passage embeddings, whatever the mode: comparable across
    queries and modes, so thresholds use it."""
    record: PassageRecord


@dataclass(frozen=True, slots=True)
class HybridParams:
    """How hybrid search fuses its dense and lexical candidate lists (measured in bench/retrieval_eval.py).

    DBSF normalises each list's scores by its mean +- 3 standard deviations and sums them. Qdrant's DBSF
    takes no weights, so a weight is a whole number of times that list enters the fusion (the same
    prefetch repeated); RRF takes real weights.
    """

    fusion: Literal["rrf", "dbsf"] = "dbsf"
    dense_weight: float = 3
    sparse_weight: float = 1
    rrf_k: int = 60
    prefetch_limit: int = 50
    """Candidates taken from each list before fusion (at least the requested limit)."""

    def __post_init__(self) -> None:
        if self.fusion == "dbsf" and not all(float(w).is_integer() and w >= 1 for w in self.weights):
            raise ValueError("DBSF weights are repeat counts: whole numbers >= 1")
        if min(self.weights) <= 0:
            raise ValueError("fusion weights must be positive")

    @property
    def weights(self) -> tuple[float, float]:
        return (self.dense_weight, self.sparse_weight)

    @property
    def repeats(self) -> tuple[int, int]:
        """How many times the dense and the lexical prefetch enter a DBSF fusion."""
        return (int(self.dense_weight), int(self.sparse_weight))


def cosine(query: np.ndarray, vector: list[float] | np.ndarray | None) -> float:
    if vector is None:
        return 0.0
    stored = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(stored))
    return float(np.dot(query, stored) / norm) if norm else 0.0
