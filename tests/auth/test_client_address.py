"""The client's address behind trusted proxies: believed only from a trusted peer, right-most untrusted hop,
and the same address for the limits and the audit log (a real ``medchat serve`` behind a pretend proxy)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from medchat.platform.requests import client_address, parse_networks
from medchat.settings import Settings, SettingsError
from tests.support.accounts import TEST_PASSWORD
from tests.support.serve import ServeProcess

POD_NETWORK = parse_networks(["10.42.0.0/16"])


def resolve(peer: str, *, xff: list[str] | None = None, forwarded: list[str] | None = None) -> str | None:
    return client_address(peer, trusted=POD_NETWORK, forwarded_for=xff or [], forwarded=forwarded or [])


def test_forwarding_headers_count_only_from_a_trusted_peer() -> None:
    assert resolve("203.0.113.5", xff=["198.51.100.1"]) == "203.0.113.5"
    assert resolve("10.42.0.9", xff=["198.51.100.1"]) == "198.51.100.1"
    assert resolve("10.42.0.9") == "10.42.0.9", "no header: the proxy itself"
    assert client_address("10.42.0.9", trusted=(), forwarded_for=["198.51.100.1"], forwarded=[]) == "10.42.0.9"


def test_the_right_most_untrusted_address_is_the_client() -> None:
    # The client wrote "1.1.1.1" itself; the proxy appended the address it saw.
    assert resolve("10.42.0.9", xff=["1.1.1.1, 198.51.100.1"]) == "198.51.100.1"
    assert resolve("10.42.0.9", xff=["1.1.1.1", "198.51.100.1, 10.42.3.4"]) == "198.51.100.1", "proxies chained"
    assert resolve("10.42.0.9", xff=["10.42.0.1, 10.42.0.2"]) == "10.42.0.1", "only proxies: the farthest one"
    assert resolve("10.42.0.9", xff=["198.51.100.1, garbage"]) == "10.42.0.9", "an unreadable hop ends the walk"
    assert resolve("10.42.0.9", xff=["198.51.100.1:4711"]) == "198.51.100.1"
    assert resolve("::ffff:10.42.0.9", xff=["2001:db8::1"]) == "2001:db8::1"


def test_forwarded_is_read_when_there_is_no_x_forwarded_for() -> None:
    header = 'for=1.1.1.1;proto=https, for="[2001:db8:cafe::17]:4711";by=10.42.0.9'
    assert resolve("10.42.0.9", forwarded=[header]) == "2001:db8:cafe::17"
    assert resolve("10.42.0.9", xff=["198.51.100.1"], forwarded=["for=1.1.1.1"]) == "198.51.100.1"


def test_the_setting_takes_comma_separated_networks(tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path, trusted_proxies="10.42.0.0/16, 192.168.1.7,fd00::/8")
    assert settings.trusted_proxies == ["10.42.0.0/16", "192.168.1.7/32", "fd00::/8"]
    assert Settings.load(data_dir=tmp_path).trusted_proxies == []
    with pytest.raises(SettingsError, match="MEDCHAT_TRUSTED_PROXIES"):
        Settings.load(data_dir=tmp_path, trusted_proxies="10.42.0.0/16,not-a-network")


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """``medchat serve`` trusting loopback as its proxy, with a tight per-address sign-in limit."""
    env = {
        "MEDCHAT_TRUSTED_PROXIES": "127.0.0.0/8",
        "MEDCHAT_LOGIN_ATTEMPTS_PER_MINUTE_PER_ADDRESS": "3",
        "MEDCHAT_SECRET_KEY": "k" * 40,
    }
    with ServeProcess(tmp_path_factory.mktemp("proxy") / "data", extra_env=env) as server:
        yield server


@pytest.mark.slow
async def test_clients_behind_the_proxy_have_their_own_limits_and_audit_address(behind_proxy: ServeProcess) -> None:
    async with httpx.AsyncClient(base_url=behind_proxy.base_url, timeout=30) as http:

        async def wrong_login(address: str) -> int:
            email = f"nobody-{uuid.uuid4().hex[:6]}@example.org"
            body = {"email": email, "password": "a wrong password 1"}
            response = await http.post("/api/v1/auth/login", json=body, headers={"X-Forwarded-For": address})
            return response.status_code

        assert [await wrong_login("198.51.100.1") for _ in range(4)] == [401, 401, 401, 429]
        assert await wrong_login("198.51.100.2") == 401, "another client behind the same proxy is not limited"
        assert await wrong_login("1.1.1.1, 198.51.100.1") == 429, "a forged left-most entry changes nothing"

        email = f"admin-{uuid.uuid4().hex[:6]}@example.org"
        registered = await http.post(
            "/api/v1/auth/register",
            json={"email": email, "password": TEST_PASSWORD},
            headers={"X-Forwarded-For": "192.0.2.44"},
        )
        assert registered.status_code == 201, registered.text
    user_id = registered.json()["user"]["id"]
    promote = subprocess.run(
        [str(Path(sys.executable).with_name("medchat")), "user", "promote", email],
        env=behind_proxy.environment(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert promote.returncode == 0, promote.stderr
    async with httpx.AsyncClient(base_url=behind_proxy.base_url, timeout=30) as http:
        login = await http.post("/api/v1/auth/login", json={"email": email, "password": TEST_PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        events = (await http.get("/api/v1/audit", params={"action": "register"}, headers=headers)).json()["items"]
    assert [(event["resource_id"], event["ip"]) for event in events] == [(user_id, "192.0.2.44")]
