"""The UI's answer as it streams: the text so far rendered by the one sanitiser (``markdown.py``), paced.

The page's answer stream sends the whole answer so far as safe HTML rather than raw text pieces, so the
reader sees Markdown (bold, lists, citations as links) while it is written, sanitised exactly as the stored
answer is; the page patches its answer body in place with it (``static/js/stream.js``). Rendering is
throttled: at most one snapshot every ``LIVE_RENDER_SECONDS`` and one as soon as the text stops changing
(``with_ticks`` wakes the stream when no event came for that long), so the last tokens never wait for the
answer's end. The JSON API's event stream is not touched (it sends the text pieces, see API.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from medchat.chat.markdown import render_markdown

LIVE_RENDER_SECONDS = 0.08
"""At most one rendered snapshot per this many seconds (~12 a second: smooth, and cheap to render)."""

T = TypeVar("T")


class LiveAnswer:
    """The answer's text so far and when its HTML was last sent; ``add`` returns the HTML when one is due."""

    def __init__(self, *, interval: float = LIVE_RENDER_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._parts: list[str] = []
        self._sent_at: float | None = None
        self._pending = False
        self.citation_prefix = ""
        self.source_count = 0

    def cite(self, message_id: str, source_count: int) -> None:
        """Link ``[n]`` to the answer's sources as the stored answer does (``#src-<message id>-n``)."""
        self.citation_prefix = f"src-{message_id}"
        self.source_count = source_count

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def add(self, piece: str) -> str | None:
        """Take a token; the HTML of the answer so far if the last snapshot is old enough, else ``None``."""
        if piece:
            self._parts.append(piece)
            self._pending = True
        if self._sent_at is not None and self._clock() - self._sent_at < self._interval:
            return None
        return self.flush()

    def flush(self) -> str | None:
        """The HTML of the answer so far if tokens came since the last snapshot (and the text is not blank)."""
        if not self._pending or not self.text.strip():
            return None
        self._pending = False
        self._sent_at = self._clock()
        return str(render_markdown(self.text, citation_prefix=self.citation_prefix, source_count=self.source_count))


async def with_ticks(events: AsyncIterator[T], interval: float = LIVE_RENDER_SECONDS) -> AsyncIterator[T | None]:
    """``events`` as they come, with a ``None`` whenever ``interval`` seconds pass without one.

    The pending read survives the ticks (it is never cancelled mid-event); it is cancelled if the consumer
    stops early (the page went away), and ``events`` is then closed."""
    iterator = aiter(events)
    pending: asyncio.Future[T] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield None
                continue
            finished, pending = pending, None
            try:
                event = finished.result()
            except StopAsyncIteration:
                return
            yield event
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.wait({pending})
        closing = getattr(iterator, "aclose", None)
        if closing is not None:
            await closing()
