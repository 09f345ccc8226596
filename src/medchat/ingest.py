"""``medchat ingest PATH...``: add files and folders to the shared knowledge base, with progress.

With the data dir free, ingestion runs in this process. When ``medchat serve`` holds the embedded
index, the files are queued to it instead and this command follows their progress.
"""

from __future__ import annotations

import asyncio
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


async def ingest_paths(settings: Settings, paths: list[Path], *, console: Console | None = None) -> list[IngestOutcome]:
    console = console or Console(stderr=True)
    files = list(expand(paths))
    runtime = await Runtime.open(settings, join_running=True)
    try:
        documents = runtime.services.get(DocumentService)
        in_process = documents.indexes_here
        if not in_process:
            console.print("medchat serve is running on this data dir: queuing the files to it")
        with Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            return [await _ingest_one(documents, path, progress, in_process=in_process) for path in files]
    finally:
        await runtime.close()


async def _ingest_one(documents: DocumentService, path: Path, progress: Progress, *, in_process: bool) -> IngestOutcome:
    task = progress.add_task(path.name[:40], total=1.0, status="reading")
    try:
        data = await asyncio.to_thread(path.read_bytes)
        view = await documents.upload(
            owner=SYSTEM_OWNER, filename=path.name, data=data, scope="shared", enqueue=not in_process
        )
    except (OSError, ClientError) as error:
        detail = getattr(error, "detail", None) or str(error)
        progress.update(task, status=f"[red]skipped: {detail}")
        return IngestOutcome(path, "skipped", detail)
    work = asyncio.create_task(documents.ingest(view.id)) if in_process else None
    final = await _follow(documents, view, progress, task, work=work)
    if work is not None:
        try:
            await work
        except Exception as error:  # noqa: BLE001 - reported per file; the next file still runs
            progress.update(task, status=f"[red]failed: {error}")
            return IngestOutcome(path, "failed", str(error), view.id)
        final = await documents.get_visible(SYSTEM_OWNER, document_id=view.id)
    colour = "green" if final.status == "ready" else "red"
    detail = f"{final.pages} pages, {final.chunks} passages" if final.status == "ready" else (final.error or "")
    progress.update(
        task, completed=1.0 if final.status == "ready" else final.progress, status=f"[{colour}]{final.status}: {detail}"
    )
    return IngestOutcome(path, final.status, detail, view.id)


async def _follow(
    documents: DocumentService, view: DocumentView, progress: Progress, task: TaskID, *, work: asyncio.Task | None
) -> DocumentView:
    current = view
    while not current.is_final and not (work is not None and work.done()):
        await asyncio.sleep(POLL_SECONDS)
        current = await documents.get_visible(SYSTEM_OWNER, document_id=view.id)
        progress.update(task, completed=current.progress, status=current.stage or current.status)
    return current


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
        views = [await documents.get_visible(SYSTEM_OWNER, document_id=document_id) for document_id in pending]
        failed += sum(view.status == "failed" for view in views)
        pending = [view.id for view in views if not view.is_final]
        progress.update(task, completed=len(queued) - len(pending), current=views[0].title[:40] if pending else "")
    return failed
