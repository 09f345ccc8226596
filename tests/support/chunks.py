"""Chunks of a one-page text, as ingestion makes them (220-token chunks with 40 tokens of overlap)."""

from __future__ import annotations

from medchat.retrieval.chunking import Chunk, chunk_document
from medchat.retrieval.document import ParsedPage


def chunks_of(text: str, *, chunk_tokens: int = 220) -> list[Chunk]:
    return chunk_document([ParsedPage(1, text)], chunk_tokens=chunk_tokens, overlap_tokens=40)
