"""``medchat user create|promote|demote|disable|enable``: accounts from the command line (the first admin).

Each command opens the stores with ``join_running=True``: with a ``medchat serve`` running on the same
data dir it joins that server's embedded MongoDB and Redis through the runtime file; otherwise it
starts them for the length of the command. (``medchat.runtime`` sits above auth in the layers, so
auth opens the platform's ``Stores`` directly, which is what ``Runtime.open`` does for the stores.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from medchat.auth.models import RefreshToken, User
from medchat.auth.services import Accounts
from medchat.platform.audit import AuditEvent
from medchat.platform.data_dir import DataDirInUse
from medchat.platform.embedded import EmbeddedStartError
from medchat.platform.errors import AppError
from medchat.platform.events import EventBus
from medchat.platform.stores import Stores
from medchat.settings import Settings, SettingsError

T = TypeVar("T")


def _run(action: Callable[[Accounts], Awaitable[T]]) -> T:
    try:
        settings = Settings.load()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None

    async def main() -> T:
        # AuditEvent too: role changes from the command line are audited like the admin page's.
        stores = await Stores.open(settings, document_models=[User, RefreshToken, AuditEvent], join_running=True)
        try:
            return await action(Accounts(settings=settings, redis=stores.redis, events=EventBus()))
        finally:
            await stores.close()

    try:
        return asyncio.run(main())
    except AppError as error:
        raise click.ClickException(error.detail) from None
    except (DataDirInUse, EmbeddedStartError) as error:
        raise click.ClickException(str(error)) from None


def _read_password() -> str:
    """Prompt twice on a terminal; otherwise read one line from stdin (``echo "$PW" | medchat user create``)."""
    stdin = click.get_text_stream("stdin")
    if stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    password = stdin.readline().rstrip("\r\n")
    if not password:
        raise click.ClickException("no password on stdin")
    return password


@click.group("user", help="Create accounts and change roles from the command line.")
def user_cli() -> None:
    pass


@user_cli.command("create")
@click.argument("email")
@click.option("--admin", is_flag=True, help="Make the account an administrator.")
@click.option("--name", "full_name", default="", help="The person's full name.")
def create_command(email: str, admin: bool, full_name: str) -> None:
    """Create an account; the password is prompted for, or read from stdin when it is not a terminal."""
    password = _read_password()
    user = _run(
        lambda accounts: accounts.create_user(
            email=email, password=password, full_name=full_name, role="admin" if admin else "user"
        )
    )
    click.echo(f"created {user.role} {user.email} (id {user.id})")


def _change(email: str, **changes: object) -> User:
    async def action(accounts: Accounts) -> User:
        user = await accounts.find_by_email(email)
        return await accounts.update_user(str(user.id), **changes, actor="cli")  # type: ignore[arg-type]

    return _run(action)


@user_cli.command("promote")
@click.argument("email")
def promote_command(email: str) -> None:
    """Make an account an administrator."""
    user = _change(email, role="admin")
    click.echo(f"{user.email} is now an admin")


@user_cli.command("demote")
@click.argument("email")
def demote_command(email: str) -> None:
    """Make an administrator a plain user (refused for the last enabled admin)."""
    user = _change(email, role="user")
    click.echo(f"{user.email} is now a user")


@user_cli.command("disable")
@click.argument("email")
def disable_command(email: str) -> None:
    """Stop an account from signing in; its sessions and tokens stop working at once."""
    user = _change(email, disabled=True)
    click.echo(f"{user.email} is disabled")


@user_cli.command("enable")
@click.argument("email")
def enable_command(email: str) -> None:
    """Let a disabled account sign in again (its old sessions stay ended)."""
    user = _change(email, disabled=False)
    click.echo(f"{user.email} is enabled")
