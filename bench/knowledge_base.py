"""A filled knowledge base for the chat benchmark: MedQuAD answers ingested with ``medchat ingest``.

``select_rows`` picks ``n`` distinct MedQuAD answers, whole topics (focus) at a time in a seeded order;
``write_topics`` writes one plain-text file per topic (each answer preceded by its question);
``cached_data_dir`` ingests them once into a data dir under the system temp dir, keyed by ``n``, the seed
and the medchat source dir under test (the index format may differ between checkouts), and
``copy_data_dir`` gives each run its own copy. The data stays in ``../shared/data``; nothing is copied
into the repository.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
MEDQUAD = REPOSITORY.parent / "shared" / "data" / "medquad" / "medquad.jsonl.gz"
CACHE = Path(tempfile.gettempdir()) / "medchat-bench-cache"
MEDCHAT = str(Path(sys.executable).with_name("medchat"))


def medquad_rows() -> list[dict]:
    """The rows of ``bench/retrieval_data.py``'s reader, without its model imports."""
    with gzip.open(MEDQUAD, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def select_rows(n: int, seed: int) -> list[dict]:
    """Rows of whole topics, in a seeded topic order, until ``n`` distinct answers are in (the last topic
    may be cut short). Rows repeating an answer already taken are kept: their question is still asked."""
    by_focus: dict[str, list[dict]] = defaultdict(list)
    for row in medquad_rows():
        if row["answer"].strip() and row["question"].strip() and row["focus"].strip():
            by_focus[row["focus"]].append(row)
    topics = sorted(by_focus)
    random.Random(seed).shuffle(topics)
    answers: set[str] = set()
    selected: list[dict] = []
    for topic in topics:
        for row in by_focus[topic]:
            if row["answer"] not in answers:
                if len(answers) == n:
                    continue
                answers.add(row["answer"])
            selected.append(row)
        if len(answers) == n:
            break
    return selected


def _file_name(focus: str, taken: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "-", focus).strip("-")[:80] or "topic"
    name, number = f"{stem}.txt", 2
    while name.lower() in taken:
        name, number = f"{stem}-{number}.txt", number + 1
    taken.add(name.lower())
    return name


def write_topics(rows: list[dict], folder: Path) -> int:
    """One plain-text file per topic: each distinct answer after its question as a line. Returns the file count."""
    by_focus: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_focus[row["focus"]].append(row)
    taken: set[str] = set()
    folder.mkdir(parents=True, exist_ok=True)
    for focus, topic_rows in by_focus.items():
        seen: set[str] = set()
        parts = [focus, ""]
        for row in topic_rows:
            if row["answer"] not in seen:
                seen.add(row["answer"])
                parts += [row["question"].strip(), row["answer"].strip(), ""]
        (folder / _file_name(focus, taken)).write_text("\n".join(parts), encoding="utf-8")
    return len(by_focus)


@dataclass(frozen=True)
class KnowledgeBase:
    data_dir: Path
    """The cached, filled data dir: copy it, never serve it."""
    manifest: dict
    built_now: bool

    @property
    def manifest_path(self) -> Path:
        return self.data_dir.parent / "manifest.json"

    def record(self, **fields: object) -> None:
        self.manifest.update(fields)
        self.manifest_path.write_text(json.dumps(self.manifest, indent=2))


def cache_dir(n: int, seed: int, source_dir: Path) -> Path:
    key = hashlib.sha256(f"{n}|{seed}|{source_dir.resolve()}".encode()).hexdigest()[:12]
    return CACHE / f"chat-kb-{n}-{seed}-{key}"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_data_dir(
    n: int,
    seed: int,
    source_dir: Path,
    environment: dict[str, str],
    *,
    index_version: str = "",
    rebuild: bool = False,
) -> KnowledgeBase:
    """The filled data dir for (``n``, ``seed``, ``source_dir``), ingesting it first when missing or ``rebuild``.

    ``environment`` is the server's (minus ``MEDCHAT_DATA_DIR``, set here), so ``medchat ingest`` runs the
    code under test with the settings ``medchat serve`` will use; ``index_version`` (the code's
    ``retrieval.search.INDEX_VERSION``, if it has one) is recorded, for the caller to compare.
    """
    target = cache_dir(n, seed, source_dir)
    with _locked(target.with_suffix(".lock")):
        manifest_path = target / "manifest.json"
        if not rebuild and manifest_path.exists() and (target / "data").is_dir():
            return KnowledgeBase(target / "data", json.loads(manifest_path.read_text()), built_now=False)
        shutil.rmtree(target, ignore_errors=True)
        building = target.with_name(target.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        rows = select_rows(n, seed)
        files = write_topics(rows, building / "topics")
        answers = len({row["answer"] for row in rows})
        print(f"ingesting {answers} MedQuAD answers in {files} topic files with `medchat ingest` ...", flush=True)
        log_path = building / "ingest.log"
        started = time.perf_counter()
        with log_path.open("w") as log:
            completed = subprocess.run(
                [MEDCHAT, "ingest", str(building / "topics")],
                env={**environment, "MEDCHAT_DATA_DIR": str(building / "data")},
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                check=False,
            )
        seconds = time.perf_counter() - started
        if completed.returncode != 0:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"medchat ingest exited with {completed.returncode}: {completed.stdout}\n{tail}")
        shutil.rmtree(building / "topics")
        manifest = {
            "answers": answers,
            "files": files,
            "seed": seed,
            "source_dir": str(source_dir),
            "index_version": index_version,
            "ingest_seconds": round(seconds, 1),
            "ingest_output": completed.stdout.strip(),
            "built": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        (building / "manifest.json").write_text(json.dumps(manifest, indent=2))
        building.rename(target)
        return KnowledgeBase(target / "data", manifest, built_now=True)


def copy_data_dir(knowledge_base: KnowledgeBase, destination: Path) -> float:
    """Copy the cached data dir to ``destination`` (which must not exist); returns the seconds it took.

    The vector index's memory-mapped files are sparse (hundreds of MB apparent, a few MB used): ``cp``
    keeps the holes, where ``shutil.copytree`` would write them out.
    """
    started = time.perf_counter()
    subprocess.run(["cp", "-a", "--sparse=always", str(knowledge_base.data_dir), str(destination)], check=True)
    return time.perf_counter() - started


def disk_mb(path: Path) -> float:
    """Space used on disk (sparse files count what they hold, not their length)."""
    return sum(entry.stat().st_blocks * 512 for entry in path.rglob("*") if entry.is_file()) / 1e6
