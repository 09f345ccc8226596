from __future__ import annotations

from pathlib import Path

import pytest

from medchat.settings import Settings, SettingsError


def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDCHAT_PORT", "not-a-port")
    with pytest.raises(SettingsError, match="MEDCHAT_PORT"):
        Settings.load()


def test_production_requires_a_secret_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="MEDCHAT_SECRET_KEY is required"):
        Settings.load(environment="production", data_dir=tmp_path)
    with pytest.raises(SettingsError, match="at least 32"):
        Settings.load(environment="production", data_dir=tmp_path, secret_key="short")


def test_development_secret_is_generated_once_into_the_data_dir(tmp_path: Path) -> None:
    first = Settings.load(data_dir=tmp_path).signing_key
    second = Settings.load(data_dir=tmp_path).signing_key
    assert first == second
    assert len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_lists_come_from_comma_separated_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDCHAT_REGISTRATION_DOMAINS", "Example.org, @clinic.test")
    monkeypatch.setenv("MEDCHAT_CORS_ORIGINS", "https://a.test,https://b.test")
    settings = Settings.load()
    assert settings.registration_domains == ["example.org", "clinic.test"]
    assert settings.cors_origins == ["https://a.test", "https://b.test"]


def test_embedded_stores_are_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MEDCHAT_MONGODB_URI", "MEDCHAT_REDIS_URL", "MEDCHAT_QDRANT_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.load()
    assert settings.embedded_mongodb and settings.embedded_redis and settings.embedded_qdrant
    assert settings.any_store_embedded


@pytest.mark.parametrize(
    ("urls", "any_embedded"),
    [
        ({}, True),
        ({"mongodb_uri": "mongodb://db", "redis_url": "redis://cache"}, True),
        ({"qdrant_url": "http://vectors:6333"}, True),
        ({"mongodb_uri": "mongodb://db", "redis_url": "redis://cache", "qdrant_url": "http://vectors:6333"}, False),
    ],
    ids=["all-embedded", "only-qdrant-embedded", "only-qdrant-real", "all-real"],
)
def test_any_store_embedded_is_true_when_one_store_is(
    urls: dict[str, str], any_embedded: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One embedded store pins serving to one process; the old name ``fully_embedded`` said otherwise."""
    for name in ("MEDCHAT_MONGODB_URI", "MEDCHAT_REDIS_URL", "MEDCHAT_QDRANT_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.load(**urls)

    assert settings.any_store_embedded is any_embedded
    assert not hasattr(settings, "fully_embedded"), "a stale use of the misleading name must fail, not mislead"
