"""``medchat ingest``: in this process when the data dir is free, through a running server otherwise."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from medchat.ingest import ingest_paths
from medchat.retrieval import SearchScope
from medchat.runtime import Runtime
from medchat.settings import Settings
from tests.support.serve import MEDCHAT, ServeProcess


def knowledge_folder(root: Path) -> Path:
    folder = root / "sources"
    (folder / "nested").mkdir(parents=True)
    (folder / "asthma.md").write_text("# Asthma action plan\n\nUse the blue reliever inhaler when wheezy.\n")
    (folder / "nested" / "gout.txt").write_text("Gout flares: rest the joint, apply ice and take the prescribed NSAID.")
    (folder / "nested" / "photo.bin").write_bytes(b"\x00\x01\x02\x03 not a document")
    (folder / ".hidden.txt").write_text("never ingested")
    return folder


async def test_ingest_in_process_reports_each_file_and_makes_them_searchable(
    settings: Settings, tmp_path: Path
) -> None:
    outcomes = await ingest_paths(settings, [knowledge_folder(tmp_path)])
    by_name = {outcome.path.name: outcome for outcome in outcomes}
    assert set(by_name) == {"asthma.md", "gout.txt", "photo.bin"}
    assert by_name["asthma.md"].status == by_name["gout.txt"].status == "ready"
    assert by_name["photo.bin"].status == "skipped"
    assert "unsupported" in by_name["photo.bin"].detail

    runtime = await Runtime.open(settings)
    try:
        passages = await runtime.retriever.search("what to do in a gout flare", scope=SearchScope(user_id="anyone"))
        assert passages[0].document_id == by_name["gout.txt"].document_id
    finally:
        await runtime.close()


@pytest.mark.slow
def test_ingest_goes_through_a_running_server(tmp_path: Path) -> None:
    folder = knowledge_folder(tmp_path)
    with ServeProcess(tmp_path / "data") as server:
        result = subprocess.run(
            [MEDCHAT, "ingest", str(folder)], env=server.environment(), capture_output=True, text=True, timeout=180
        )
        assert result.returncode == 1, "photo.bin is skipped, so not every file is ready"
        assert "2 of 3 files ready" in result.stdout
        assert "queuing the files to it" in result.stderr
        register = httpx.post(
            f"{server.base_url}/api/v1/auth/register",
            json={"email": "reader@example.org", "password": "a sensible passphrase 9"},
        )
        headers = {"Authorization": f"Bearer {register.json()['access_token']}"}
        found = httpx.post(f"{server.base_url}/api/v1/search", json={"query": "blue reliever inhaler"}, headers=headers)
        assert found.status_code == 200
        assert found.json()["results"][0]["title"].lower().startswith("asthma")
