"""``medchat reindex``: documents indexed with another version are redone, resumably, in this process or by
the running server."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from medchat.ingest import ingest_paths, reindex
from medchat.retrieval import DocumentService, SearchScope
from medchat.retrieval.models import SourceDocument
from medchat.retrieval.originals import open_original_store
from medchat.retrieval.search import INDEX_VERSION
from medchat.runtime import Runtime
from medchat.settings import Settings
from tests.support.serve import MEDCHAT, ServeProcess


def sources(root: Path) -> Path:
    folder = root / "sources"
    folder.mkdir()
    (folder / "gout.txt").write_text("Gout flares: rest the joint, apply ice and take the prescribed NSAID.")
    (folder / "asthma.txt").write_text("Asthma: use the blue reliever inhaler when wheezy.")
    return folder


async def mark_stale(settings: Settings, document_id: str) -> None:
    runtime = await Runtime.open(settings)
    try:
        document = await SourceDocument.get(document_id)
        assert document is not None and document.index_version == INDEX_VERSION
        await document.set({"index_version": "an-older-model:chunk-text"})
    finally:
        await runtime.close()


async def stale_ids(settings: Settings) -> list[str]:
    runtime = await Runtime.open(settings)
    try:
        return [view.id for view in await runtime.services.get(DocumentService).stale_documents()]
    finally:
        await runtime.close()


async def test_only_stale_documents_are_redone_and_a_second_run_has_nothing_left(
    settings: Settings, tmp_path: Path
) -> None:
    outcomes = {outcome.path.name: outcome for outcome in await ingest_paths(settings, [sources(tmp_path)])}
    gout = outcomes["gout.txt"].document_id or ""
    assert await stale_ids(settings) == []
    await mark_stale(settings, gout)
    assert await stale_ids(settings) == [gout]

    report = await reindex(settings)
    assert (report.done, report.failed, report.remaining) == (1, 0, 0)
    assert await stale_ids(settings) == []
    again = await reindex(settings)
    assert (again.done, again.failed, again.remaining) == (0, 0, 0)

    runtime = await Runtime.open(settings)
    try:
        passages = await runtime.retriever.search("what to do in a gout flare", scope=SearchScope(user_id="anyone"))
        assert passages[0].document_id == gout
    finally:
        await runtime.close()


async def test_all_redoes_every_ready_document(settings: Settings, tmp_path: Path) -> None:
    await ingest_paths(settings, [sources(tmp_path)])
    report = await reindex(settings, everything=True)
    assert (report.done, report.failed, report.remaining) == (2, 0, 0)


async def test_a_document_that_can_no_longer_be_read_counts_as_failed(settings: Settings, tmp_path: Path) -> None:
    outcomes = {outcome.path.name: outcome for outcome in await ingest_paths(settings, [sources(tmp_path)])}
    runtime = await Runtime.open(settings)
    try:
        document = await SourceDocument.get(outcomes["gout.txt"].document_id)
        assert document is not None
        await open_original_store(settings).delete(document.storage_key)
    finally:
        await runtime.close()
    report = await reindex(settings, everything=True)
    assert (report.done, report.failed) == (1, 1)


@pytest.mark.slow
def test_reindex_goes_through_a_running_server(tmp_path: Path) -> None:
    folder = sources(tmp_path)
    with ServeProcess(tmp_path / "data") as server:
        ingested = subprocess.run(
            [MEDCHAT, "ingest", str(folder)], env=server.environment(), capture_output=True, text=True, timeout=180
        )
        assert ingested.returncode == 0, ingested.stderr
        result = subprocess.run(
            [MEDCHAT, "reindex", "--all"], env=server.environment(), capture_output=True, text=True, timeout=180
        )
        assert result.returncode == 0, result.stderr
        assert "queuing the documents to it" in result.stderr
        assert "2 documents reindexed, 0 failed, 0 still stale" in result.stdout
