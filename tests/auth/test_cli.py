"""``medchat user ...``: in process against the test stores, and as a subprocess beside a real ``medchat serve``."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from pymongo import MongoClient

from medchat.cli import main
from medchat.settings import Settings
from tests.support.accounts import TEST_PASSWORD
from tests.support.app import AppFactory
from tests.support.serve import MEDCHAT, STORE_VARIABLES, ServeProcess


def cli_env(settings: Settings) -> dict[str, str]:
    return {
        "MEDCHAT_DATA_DIR": str(settings.data_dir),
        "MEDCHAT_MONGODB_URI": str(settings.mongodb_uri),
        "MEDCHAT_MONGODB_DATABASE": settings.mongodb_database,
        "MEDCHAT_REDIS_URL": str(settings.redis_url),
        "MEDCHAT_SECRET_KEY": str(settings.secret_key),
        "MEDCHAT_PASSWORD_HASH_TIME_COST": "1",
        "MEDCHAT_PASSWORD_HASH_MEMORY_KIB": "1024",
    }


async def medchat_user(settings: Settings, *args: str, stdin: str | None = None) -> Result:
    """Run ``medchat user ARGS`` in process (in a thread: the command runs its own event loop)."""
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, main, ["user", *args], input=stdin, env=cli_env(settings))


def stored_user(settings: Settings, email: str) -> dict[str, Any] | None:
    with MongoClient(settings.mongodb_uri) as mongo:
        return mongo[settings.mongodb_database]["users"].find_one({"email_normalized": email.lower()})


async def test_create_the_first_admin_and_sign_in(settings: Settings, make_client: AppFactory) -> None:
    created = await medchat_user(settings, "create", "--admin", "--name", "Boss", "Boss@Clinic.example",
                                 stdin=TEST_PASSWORD + "\n")  # fmt: skip
    assert created.exit_code == 0, created.output
    assert "created admin Boss@Clinic.example" in created.output
    assert stored_user(settings, "boss@clinic.example")["password_hash"].startswith("$argon2id$")

    async with make_client() as client:
        login = await client.post(
            "/api/v1/auth/login", json={"email": "boss@clinic.example", "password": TEST_PASSWORD}
        )
        assert login.status_code == 200, login.text
        assert login.json()["user"]["role"] == "admin"
        assert login.json()["user"]["full_name"] == "Boss"
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert (await client.get("/api/v1/users/", headers=headers)).status_code == 200


async def test_promote_disable_enable_and_demote(settings: Settings) -> None:
    assert (await medchat_user(settings, "create", "staff@clinic.example", stdin=TEST_PASSWORD)).exit_code == 0
    assert stored_user(settings, "staff@clinic.example")["role"] == "user"

    promoted = await medchat_user(settings, "promote", "STAFF@clinic.example")
    assert promoted.exit_code == 0, promoted.output
    assert "staff@clinic.example is now an admin" in promoted.output
    assert stored_user(settings, "staff@clinic.example")["role"] == "admin"

    last_admin = await medchat_user(settings, "disable", "staff@clinic.example")
    assert last_admin.exit_code == 1
    assert "only enabled administrator" in last_admin.output

    assert (
        await medchat_user(settings, "create", "--admin", "second@clinic.example", stdin=TEST_PASSWORD)
    ).exit_code == 0
    before = stored_user(settings, "staff@clinic.example")["token_version"]
    disabled = await medchat_user(settings, "disable", "staff@clinic.example")
    assert disabled.exit_code == 0, disabled.output
    stored = stored_user(settings, "staff@clinic.example")
    assert stored["disabled"]  # (nx-27017 stores a $set boolean as 1)
    assert stored["token_version"] == before + 1, "its sessions and tokens are revoked"

    assert (await medchat_user(settings, "enable", "staff@clinic.example")).exit_code == 0
    assert not stored_user(settings, "staff@clinic.example")["disabled"]
    assert (await medchat_user(settings, "demote", "staff@clinic.example")).exit_code == 0
    assert stored_user(settings, "staff@clinic.example")["role"] == "user"


async def test_clear_errors(settings: Settings) -> None:
    weak = await medchat_user(settings, "create", "weak@clinic.example", stdin="password\n")
    assert weak.exit_code == 1
    assert "Error: Use at least 12 characters" in weak.output
    assert stored_user(settings, "weak@clinic.example") is None

    assert (await medchat_user(settings, "create", "dup@clinic.example", stdin=TEST_PASSWORD)).exit_code == 0
    duplicate = await medchat_user(settings, "create", "DUP@clinic.example", stdin=TEST_PASSWORD)
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output

    unknown = await medchat_user(settings, "promote", "ghost@clinic.example")
    assert unknown.exit_code == 1
    assert "No account with the email ghost@clinic.example" in unknown.output

    no_password = await medchat_user(settings, "create", "empty@clinic.example", stdin="")
    assert no_password.exit_code == 1 and "no password on stdin" in no_password.output


def run_medchat(server: ServeProcess, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in server.environment().items() if key != "MEDCHAT_PORT"}
    return subprocess.run([MEDCHAT, *args], input=stdin, env=env, capture_output=True, text=True, timeout=120)


def in_process(server: ServeProcess, *args: str, stdin: str | None = None) -> Result:
    """``medchat ARGS`` in this process, with the server's environment (and none of the store URLs)."""
    env: dict[str, str | None] = {**server.environment(), **dict.fromkeys(STORE_VARIABLES)}
    return CliRunner().invoke(main, list(args), input=stdin, env=env)


@pytest.mark.slow
def test_the_cli_works_with_and_without_a_running_server(tmp_path: Path) -> None:
    """On an idle data dir, then beside ``medchat serve`` on the same one (once as the real ``medchat`` binary)."""
    server = ServeProcess(tmp_path / "data")
    # No server yet: the command starts the embedded stores itself, and stops them again.
    first = in_process(server, "user", "create", "--admin", "first@clinic.example", stdin=TEST_PASSWORD + "\n")
    assert first.exit_code == 0, first.output
    assert "created admin first@clinic.example" in first.output

    with server:
        admin = httpx.post(
            f"{server.base_url}/api/v1/auth/login", json={"email": "first@clinic.example", "password": TEST_PASSWORD}
        )
        assert admin.status_code == 200 and admin.json()["user"]["role"] == "admin"
        registered = httpx.post(
            f"{server.base_url}/api/v1/auth/register", json={"email": "staff@clinic.example", "password": TEST_PASSWORD}
        )
        headers = {"Authorization": f"Bearer {registered.json()['access_token']}"}
        assert httpx.get(f"{server.base_url}/api/v1/users/", headers=headers).status_code == 403

        # `medchat serve` holds the data dir: the command joins its servers instead of failing.
        env = {key: value for key, value in server.environment().items() if key != "MEDCHAT_PORT"}
        promoted = subprocess.run(
            [MEDCHAT, "user", "promote", "staff@clinic.example"], env=env, capture_output=True, text=True, timeout=120
        )
        assert promoted.returncode == 0, promoted.stderr + promoted.stdout
        assert httpx.get(f"{server.base_url}/api/v1/users/", headers=headers).status_code == 200, "no new token needed"

        disabled = in_process(server, "user", "disable", "staff@clinic.example")
        assert disabled.exit_code == 0, disabled.output
        assert httpx.get(f"{server.base_url}/api/v1/users/me", headers=headers).status_code == 401, "at once"
