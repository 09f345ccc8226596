"""``medchat model ...``: the click group the app's CLI mounts."""

from __future__ import annotations

import click

from medchat.llm.install import LocalModelInstallFailed, install_local_model, local_model_status


@click.group("model", help="The optional local language model.")
def model_cli() -> None:
    pass


@model_cli.command("install-local")
def install_local_command() -> None:
    """Install the small offline demo model (SmolLM2-135M on llama.cpp, ~130 MB) and check that it runs."""
    try:
        install_local_model(echo=click.echo)
    except LocalModelInstallFailed as error:
        raise click.ClickException(str(error)) from error


@model_cli.command("status")
def status_command() -> None:
    """Say whether the local model is installed."""
    click.echo(local_model_status())
