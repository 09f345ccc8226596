"""``medchat model ...``: the click group the app's CLI mounts.

Loading this group imports no model: ``install-local`` imports the installer (and through it the local
model's runtime code) only when it runs, as click's docs suggest for deferring imports.
"""

from __future__ import annotations

from pathlib import Path

import click

from medchat.llm.discovery import local_model_status


@click.group("model", help="The optional local language model.")
def model_cli() -> None:
    pass


@model_cli.command("install-local")
@click.option(
    "--target",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Install into this directory instead of the environment; only processes with it on PYTHONPATH use it.",
)
def install_local_command(target: Path | None) -> None:
    """Install the small offline demo model (SmolLM2-135M on llama.cpp, ~130 MB) and check that it runs."""
    from medchat.llm.install import LocalModelInstallFailed, install_local_model

    try:
        install_local_model(echo=click.echo, target=target.resolve() if target else None)
    except LocalModelInstallFailed as error:
        raise click.ClickException(str(error)) from error


@model_cli.command("status")
def status_command() -> None:
    """Say whether the local model is installed."""
    click.echo(local_model_status())
