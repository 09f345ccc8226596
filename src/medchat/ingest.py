"""``medchat ingest PATH...``: add files and folders to the shared knowledge base, with one progress bar.

With the data dir free, ingestion runs in this process: the files are uploaded one after another while
two ingesters take what has been uploaded so far, small files in batches (``DocumentService.ingest_documents``:
embedded together), large ones alone. When ``medchat serve`` holds the embedded index, the files are queued
to it instead (its jobs batch them the same way) and this command follows them with one query per interval.

One bar for the whole run (files done of all, passages, files per second, the current file beside it), a
summary line after it, then the files that were skipped or failed: a row per file cost more to redraw
than ingesting a small file.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from medchat.platform.errors import ClientError
from medchat.platform.identity import Principal
from medchat.retrieval import DocumentService, DocumentView
from medchat.runtime import Runtime
from medchat.settings import Settings

SYSTEM_OWNER = Principal(id="system", email="system@medchat.local", full_name="medchat ingest", role="admin")
POLL_SECONDS = 0.25
"""How often the documents queued to a running server are read (all of them in one query)."""
INGESTERS = 2
"""Batches ingested at once in this process: one embeds while the other parses and writes."""
BATCH_FILES = 32
"""At most this many small files per batch (the server's jobs use ``batch_ingestion.BATCH_DOCUMENTS``)."""


@dataclass(frozen=True)
class IngestOutcome:
    path: Path
    status: str
    detail: str
    document_id: str | None = None


def expand(paths: Iterable[Path]) -> Iterator[Path]:
    """Files named directly, and every non-hidden file below a named folder, in a stable order."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path)
                if child.is_file() and not any(part.startswith(".") for part in relative.parts):
                    yield child
        else:
            yield path


class Tally:
    """The run's one progress bar: files done of all, passages, files per second, the current file."""

    def __init__(self, progress: Progress, total: int) -> None:
        self._progress = progress
        self._task = progress.add_task("ingesting", total=total, passages=0, rate="", current="")
        self._started = time.perf_counter()
        self.passages = 0
        self.outcomes: list[IngestOutcome] = []

    @staticmethod
    def progress(console: Console) -> Progress:
        return Progress(
            TextColumn("ingesting"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} files"),
            TextColumn("{task.fields[passages]} passages"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[current]}"),
            console=console,
        )

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self._started

    def working_on(self, path: Path) -> None:
        self._progress.update(self._task, current=path.name[:48])

    def finished(self, outcomes: Iterable[IngestOutcome], passages: int = 0) -> None:
        done = list(outcomes)
        self.outcomes += done
        self.passages += passages
        rate = f"{len(self.outcomes) / self.seconds:.1f} files/s" if self.seconds > 0 else ""
        self._progress.update(self._task, advance=len(done), passages=self.passages, rate=rate)

    def report(self, console: Console) -> None:
        """The summary line, then every file that is not ready with its reason."""
        ready = sum(outcome.status == "ready" for outcome in self.outcomes)
        console.print(
            f"{ready} of {len(self.outcomes)} files ready, {self.passages} passages in {self.seconds:.1f} s "
            f"({len(self.outcomes) / max(self.seconds, 1e-9):.1f} files/s)"
        )
        for outcome in self.outcomes:
            if outcome.status != "ready":
                console.print(f"[red]{outcome.path}: {outcome.status}: {outcome.detail}", highlight=False)


async def ingest_paths(settings: Settings, paths: list[Path], *, console: Console | None = None) -> list[IngestOutcome]:
    console = console or Console(stderr=True)
    files = list(expand(paths))
    runtime = await Runtime.open(settings, join_running=True)
    try:
        documents = runtime.services.get(DocumentService)
        in_process = documents.indexes_here
        if not in_process:
            console.print("medchat serve is running on this data dir: queuing the files to it")
        with Tally.progress(console) as progress:
            tally = Tally(progress, len(files))
            if in_process:
                await _ingest_here(documents, files, tally)
            else:
                await _queue_and_follow(documents, files, tally)
        tally.report(console)
        order = {path: position for position, path in enumerate(files)}
        return sorted(tally.outcomes, key=lambda outcome: order[outcome.path])
    finally:
        await runtime.close()


async def _upload(documents: DocumentService, path: Path, tally: Tally, *, enqueue: bool) -> DocumentView | None:
    """Store the file and its record; None (and the file reported skipped) when it cannot be."""
    try:
        data = await asyncio.to_thread(path.read_bytes)
        return await documents.upload(
            owner=SYSTEM_OWNER, filename=path.name, data=data, scope="shared", enqueue=enqueue
        )
    except (OSError, ClientError) as error:
        detail = getattr(error, "detail", None) or str(error)
        tally.finished([IngestOutcome(path, "skipped", detail)])
        return None


async def _ingest_here(documents: DocumentService, files: list[Path], tally: Tally) -> None:
    """Upload the files in order while ``INGESTERS`` tasks ingest what is uploaded, in batches."""
    uploaded: asyncio.Queue[tuple[Path, DocumentView] | None] = asyncio.Queue()

    async def upload_all() -> None:
        try:
            for path in files:
                view = await _upload(documents, path, tally, enqueue=False)
                if view is not None:
                    await uploaded.put((path, view))
        finally:
            for _ in range(INGESTERS):
                await uploaded.put(None)

    async def ingest_uploaded() -> None:
        while batch := await _next_batch(documents, uploaded):
            tally.working_on(batch[0][0])
            await _ingest_batch(documents, batch, tally)

    await asyncio.gather(upload_all(), *(ingest_uploaded() for _ in range(INGESTERS)))


async def _next_batch(
    documents: DocumentService, uploaded: asyncio.Queue[tuple[Path, DocumentView] | None]
) -> list[tuple[Path, DocumentView]]:
    """The next uploaded file, with the small files uploaded since (up to ``BATCH_FILES``) when it is small;
    empty once the uploads are over."""
    first = await uploaded.get()
    if first is None:
        return []
    batch = [first]
    while documents.is_small(first[1].size_bytes) and len(batch) < BATCH_FILES and not uploaded.empty():
        following = uploaded.get_nowait()
        if following is None or not documents.is_small(following[1].size_bytes):
            uploaded.put_nowait(following)  # the end, or a large file: it goes on its own, next
            break
        batch.append(following)
    return batch


async def _ingest_batch(documents: DocumentService, batch: list[tuple[Path, DocumentView]], tally: Tally) -> None:
    ids = [view.id for _, view in batch]
    try:
        if len(batch) == 1 and not documents.is_small(batch[0][1].size_bytes):
            await documents.ingest(ids[0])
        else:
            await documents.ingest_documents(ids)
    except Exception as error:  # noqa: BLE001 - reported per file; the next batch still runs
        tally.finished([IngestOutcome(path, "failed", str(error), view.id) for path, view in batch])
        return
    _record(tally, batch, await documents.views(ids))


def _record(tally: Tally, files: list[tuple[Path, DocumentView]], views: list[DocumentView]) -> None:
    """Count the files whose documents are final now (``views``): their outcome and passages."""
    by_id = {view.id: view for view in views}
    outcomes, passages = [], 0
    for path, uploaded in files:
        view = by_id.get(uploaded.id)
        if view is None:
            outcomes.append(IngestOutcome(path, "failed", "The document was deleted meanwhile.", uploaded.id))
        elif view.status == "ready":
            passages += view.chunks
            outcomes.append(IngestOutcome(path, "ready", f"{view.pages} pages, {view.chunks} passages", view.id))
        else:
            outcomes.append(IngestOutcome(path, view.status, view.error or "", view.id))
    tally.finished(outcomes, passages)


async def _queue_and_follow(documents: DocumentService, files: list[Path], tally: Tally) -> None:
    """Queue every file to the running server while following them all, one query per ``POLL_SECONDS``."""
    pending: dict[str, tuple[Path, DocumentView]] = {}
    uploading = True

    async def upload_all() -> None:
        nonlocal uploading
        try:
            for path in files:
                view = await _upload(documents, path, tally, enqueue=True)
                if view is not None:
                    pending[view.id] = (path, view)
        finally:
            uploading = False

    async def follow() -> None:
        while uploading or pending:
            await asyncio.sleep(POLL_SECONDS)
            asked = list(pending)  # uploads go on meanwhile: only these can be missing from the answer
            views = await documents.views(asked)
            final = [view for view in views if view.is_final]
            working = next((view for view in views if view.status == "processing"), None)
            if working is not None:
                tally.working_on(pending[working.id][0])
            missing = set(asked) - {view.id for view in views}
            done = [pending.pop(document_id) for document_id in [*(view.id for view in final), *missing]]
            _record(tally, done, final)

    await asyncio.gather(upload_all(), follow())


@dataclass(frozen=True)
class ReindexReport:
    done: int
    failed: int
    remaining: int


async def reindex(settings: Settings, *, everything: bool = False, console: Console | None = None) -> ReindexReport:
    """Index again every document indexed with another ``INDEX_VERSION`` (all with ``everything``), one overall
    progress bar. Each finished document is marked, so a stopped run resumes where it was."""
    console = console or Console(stderr=True)
    runtime = await Runtime.open(settings, join_running=True)
    try:
        documents = runtime.services.get(DocumentService)
        stale = await documents.stale_documents(everything=everything)
        if not stale:
            console.print("Every document is indexed with the current version: nothing to do.")
            return ReindexReport(0, 0, 0)
        with Progress(
            TextColumn("reindexing"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[current]}"),
            console=console,
        ) as progress:
            task = progress.add_task("reindex", total=len(stale), current="")
            if documents.indexes_here:
                failed = 0
                for view in stale:
                    progress.update(task, current=view.title[:40])
                    try:
                        await documents.ingest(view.id)
                        outcome = await documents.get_visible(SYSTEM_OWNER, document_id=view.id)
                        if outcome.status == "failed":  # an unreadable file fails the document, not the call
                            failed += 1
                            console.print(f"[red]{view.title}: {outcome.error}")
                    except Exception as error:  # noqa: BLE001 - reported; the next document still runs
                        failed += 1
                        console.print(f"[red]{view.title}: {error}")
                    progress.advance(task)
            else:
                console.print("medchat serve is running on this data dir: queuing the documents to it")
                for view in stale:
                    await documents.queue_reindex(view.id)
                failed = await _follow_reindex(documents, [view.id for view in stale], progress, task)
        return ReindexReport(len(stale) - failed, failed, len(await documents.stale_documents()))
    finally:
        await runtime.close()


async def _follow_reindex(documents: DocumentService, queued: list[str], progress: Progress, task: TaskID) -> int:
    """Poll until the server has redone every queued document; how many failed."""
    pending = list(queued)
    failed = 0
    while pending:
        await asyncio.sleep(POLL_SECONDS)
        views = await documents.views(pending)
        failed += sum(view.status == "failed" for view in views) + len(pending) - len(views)  # missing: deleted
        pending = [view.id for view in views if not view.is_final]
        progress.update(task, completed=len(queued) - len(pending), current=views[0].title[:40] if pending else "")
    return failed
