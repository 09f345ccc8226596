"""Access JWTs and rotating refresh tokens: every forged, stale or replayed token is refused."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import jwt
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pymongo import MongoClient

from medchat.auth.tokens import derive_key
from medchat.settings import Settings
from tests.support.accounts import RegisteredUser, RegisterUser


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def forge(claims: dict[str, Any], *, key: str, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def status_with(client: AsyncTestClient[Litestar], token: str) -> int:
    return (await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})).status_code


async def test_access_token_claims(client: AsyncTestClient[Litestar], register_user: RegisterUser) -> None:
    user = await register_user(client)
    header = jwt.get_unverified_header(user.access_token)
    assert header["alg"] == "HS256"
    claims = claims_of(user.access_token)
    assert claims["sub"] == user.id
    assert claims["iss"] == "medchat"
    assert claims["aud"] == "medchat-api"
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert len(claims["jti"]) == 32
    assert "email" not in claims and "role" not in claims, "the role is read per request, never trusted from a token"


async def test_forged_tokens_are_refused(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, settings: Settings
) -> None:
    user = await register_user(client)
    claims = claims_of(user.access_token)
    key = derive_key(settings.signing_key, "access-token")
    now = int(time.time())
    # The forging helper makes tokens the app accepts, so each refusal below is for the one thing changed.
    assert await status_with(client, forge(claims, key=key)) == 200

    header, payload, signature = user.access_token.split(".")
    tampered = ".".join([header, b64({**claims, "sub": user.id[::-1]}), signature])
    flipped = ".".join([header, payload, signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")])
    refused = {
        "tampered payload": tampered,
        "tampered signature": flipped,
        "alg none": ".".join([b64({"alg": "none", "typ": "JWT"}), payload, ""]),
        "alg none, no dot": ".".join([b64({"alg": "none", "typ": "JWT"}), payload]),
        "wrong key": forge(claims, key="another-key-of-sufficient-length-123456"),
        "the raw secret instead of the derived key": forge(claims, key=settings.signing_key),
        "HS512 with the right key": forge(claims, key=key, algorithm="HS512"),
        "expired": forge({**claims, "iat": now - 3600, "exp": now - 60}, key=key),
        "other audience": forge({**claims, "aud": "someone-else"}, key=key),
        "other issuer": forge({**claims, "iss": "evil"}, key=key),
        "no jti": forge({k: v for k, v in claims.items() if k != "jti"}, key=key),
        "no exp": forge({k: v for k, v in claims.items() if k != "exp"}, key=key),
        "old token version": forge({**claims, "extras": {"ver": claims["extras"]["ver"] + 1}}, key=key),
        "unknown user": forge({**claims, "sub": "0123456789abcdef01234567"}, key=key),
        "not an object id": forge({**claims, "sub": "admin"}, key=key),
        "empty": "",
    }
    for name, token in refused.items():
        assert await status_with(client, token) == 401, name


async def test_access_token_lifetime_follows_settings(make_client: Any, register_user: RegisterUser) -> None:
    async with make_client(access_token_minutes=1) as client:
        user = await register_user(client)
        assert await status_with(client, user.access_token) == 200
        claims = claims_of(user.access_token)
        assert claims["exp"] - claims["iat"] == 60


async def refresh(client: AsyncTestClient[Litestar], token: str) -> Any:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def test_refresh_rotates_and_reuse_revokes_the_family(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    user = await register_user(client)
    first = await refresh(client, user.refresh_token)
    assert first.status_code == 200
    second = await refresh(client, first.json()["refresh_token"])
    assert second.status_code == 200
    latest = second.json()["refresh_token"]

    reused = await refresh(client, user.refresh_token)  # a stolen, already rotated token comes back
    assert reused.status_code == 401
    assert reused.json()["code"] == "invalid_token"
    assert "already used" in reused.json()["detail"]
    assert (await refresh(client, latest)).status_code == 401, "the whole family is revoked, the newest token too"

    # A separate login is a separate family and keeps working.
    login = await client.post("/api/v1/auth/login", json={"email": user.email, "password": user.password})
    assert (await refresh(client, login.json()["refresh_token"])).status_code == 200


async def test_concurrent_refreshes_with_one_token_yield_one_pair(
    client: AsyncTestClient[Litestar], register_user: RegisterUser
) -> None:
    user = await register_user(client)
    answers = await asyncio.gather(*(refresh(client, user.refresh_token) for _ in range(5)))
    assert [answer.status_code for answer in answers].count(200) == 1


async def test_refresh_tokens_are_stored_hashed(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, settings: Settings
) -> None:
    user: RegisteredUser = await register_user(client)
    with MongoClient(settings.mongodb_uri) as mongo:
        stored = list(mongo[settings.mongodb_database]["auth_refresh_tokens"].find({"user_id": user.id}))
    assert len(stored) == 1
    assert user.refresh_token not in json.dumps(stored, default=str)
    assert len(stored[0]["token_hash"]) == 64


async def test_unknown_or_garbage_refresh_tokens(client: AsyncTestClient[Litestar]) -> None:
    for token in ("", "garbage", "x" * 500):
        answer = await refresh(client, token)
        assert answer.status_code == 401
        assert answer.json()["code"] == "invalid_token"
    assert (await client.post("/api/v1/auth/logout", json={"refresh_token": "unknown"})).status_code == 204
    assert (await client.post("/api/v1/auth/refresh", json={})).status_code == 400
