"""Password storage (argon2id, rehashed when the costs change), the policy, and login timing."""

from __future__ import annotations

import time
from typing import Any

import pytest

from medchat.auth.passwords import password_problems
from medchat.settings import Settings
from tests.support.accounts import TEST_PASSWORD
from tests.support.app import AppFactory


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("short", "Use at least 12 characters (this one has 5)."),
        ("x" * 257, "Use at most 256 characters."),
        ("jane.doe@example.org", "Don't use your email address in your password."),
        ("JANE.DOE-rules-2024!", "Don't use your email address in your password."),
        ("password123456", "This password is too easy to guess."),
        ("qwertyuiop1234", "This password is too easy to guess."),
        ("aaaaaaaaaaaaaaaa", "This password is too easy to guess."),
    ],
)
def test_policy_refuses_with_a_clear_message(password: str, expected: str) -> None:
    problems = password_problems(password, email="jane.doe@example.org", min_length=12)
    assert problems[0] == expected
    assert all(problem.endswith(".") for problem in problems)


def test_policy_accepts_passphrases_and_uses_the_configured_length() -> None:
    assert password_problems(TEST_PASSWORD, email="jane.doe@example.org", min_length=12) == []
    assert password_problems("Velvet-otter-climbs-9", email="jane.doe@example.org", min_length=12) == []
    assert password_problems("Velvet-otter-climbs-9", email="a@b.org", min_length=30)[0].startswith("Use at least 30")
    weak_by_name = password_problems(
        "Florence Nightingale", email="x@y.org", full_name="Florence Nightingale", min_length=12
    )
    assert weak_by_name and weak_by_name[0] == "This password is too easy to guess."


async def test_stored_hash_is_argon2id_with_the_production_costs(
    make_client: AppFactory, users_collection: Any
) -> None:
    defaults = {
        name: Settings.model_fields[name].default for name in Settings.model_fields if name.startswith("password_hash_")
    }
    async with make_client(**defaults) as client:
        response = await client.post(
            "/api/v1/auth/register", json={"email": "hash@example.org", "password": TEST_PASSWORD}
        )
        assert response.status_code == 201
    stored = users_collection.find_one({"email_normalized": "hash@example.org"})["password_hash"]
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert TEST_PASSWORD not in str(users_collection.find_one({"email_normalized": "hash@example.org"}))


async def test_login_rehashes_when_the_costs_change(make_client: AppFactory, users_collection: Any) -> None:
    credentials = {"email": "rehash@example.org", "password": TEST_PASSWORD}
    async with make_client() as client:  # the suite's cheap costs: m=1024, t=1
        assert (await client.post("/api/v1/auth/register", json=credentials)).status_code == 201
        assert (await client.post("/api/v1/auth/login", json=credentials)).status_code == 200
    before = users_collection.find_one({"email_normalized": "rehash@example.org"})["password_hash"]
    assert before.startswith("$argon2id$v=19$m=1024,t=1,p=1$"), "an unchanged cost does not rehash"

    async with make_client(password_hash_time_cost=2, password_hash_memory_kib=2048) as client:
        wrong = await client.post("/api/v1/auth/login", json={**credentials, "password": "not it, not it"})
        assert wrong.status_code == 401
        assert users_collection.find_one({"email_normalized": "rehash@example.org"})["password_hash"] == before
        assert (await client.post("/api/v1/auth/login", json=credentials)).status_code == 200
    after = users_collection.find_one({"email_normalized": "rehash@example.org"})["password_hash"]
    assert after.startswith("$argon2id$v=19$m=2048,t=2,p=1$")

    async with make_client(password_hash_time_cost=2, password_hash_memory_kib=2048) as client:
        assert (await client.post("/api/v1/auth/login", json=credentials)).status_code == 200, "the new hash verifies"


async def test_unknown_email_takes_as_long_as_a_wrong_password(make_client: AppFactory) -> None:
    """Same answer and same timing class: an unknown email is verified against a dummy hash.

    Compares the fastest of several tries (the least disturbed by other load on the machine): without
    the dummy verification an unknown email answers ~10x faster than a wrong password.
    """
    limits = {"login_attempts_per_minute": 100, "login_attempts_per_minute_per_address": 100}
    async with make_client(password_hash_memory_kib=16384, **limits) as client:
        known = {"email": "timing@example.org", "password": TEST_PASSWORD}
        assert (await client.post("/api/v1/auth/register", json=known)).status_code == 201

        async def seconds(email: str) -> float:
            started = time.perf_counter()
            response = await client.post("/api/v1/auth/login", json={"email": email, "password": "wrong password 99"})
            assert response.status_code == 401
            return time.perf_counter() - started

        await seconds("warm-up@example.org")
        wrong, unknown = [], []
        for index in range(8):
            wrong.append(await seconds(known["email"]))
            unknown.append(await seconds(f"nobody{index}@example.org"))
    ratio = min(unknown) / min(wrong)
    assert 0.6 < ratio < 1.6, f"fastest unknown {min(unknown):.4f} s vs fastest wrong {min(wrong):.4f} s"


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("admin@example.org", "badminton court at nine 42"),
        ("ada@example.org", "Canada geese fly south in May"),
        ("info@example.org", "information overload in the ward"),
    ],
)
def test_a_password_without_the_email_is_not_refused_for_holding_it(email: str, password: str) -> None:
    """The local part inside another word is not the address: no "Don't use your email address" for these."""
    assert "Don't use your email address in your password." not in password_problems(
        password, email=email, min_length=12
    )
    assert password_problems(password, email=email, min_length=12) == []


@pytest.mark.parametrize(
    "password", ["my admin password is long", "admin2024 velvet otter climbs", "Admin@Example.org is mine"]
)
def test_a_password_with_the_email_or_its_local_part_as_a_word_is_refused(password: str) -> None:
    problems = password_problems(password, email="admin@example.org", min_length=12)
    assert problems == ["Don't use your email address in your password."]
