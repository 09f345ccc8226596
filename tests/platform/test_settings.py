from __future__ import annotations

import os
from pathlib import Path

import pytest

from medchat.settings import Settings, SettingsError


def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDCHAT_PORT", "not-a-port")
    with pytest.raises(SettingsError, match="MEDCHAT_PORT"):
        Settings.load()


def test_production_requires_a_secret_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"MEDCHAT_SECRET_KEY \(or MEDCHAT_SECRET_KEY_FILE\) is required"):
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


# --- secrets from files (MEDCHAT_<NAME>_FILE): a mounted Secret instead of environment variables ----------

SECRET_VARIABLES = {
    "MEDCHAT_SECRET_KEY": "secret_key",
    "MEDCHAT_MONGODB_URI": "mongodb_uri",
    "MEDCHAT_REDIS_URL": "redis_url",
    "MEDCHAT_QDRANT_URL": "qdrant_url",
    "MEDCHAT_QDRANT_API_KEY": "qdrant_api_key",
    "MEDCHAT_LLM_API_KEY": "llm_api_key",
}


@pytest.fixture
def clean_secret_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for variable in SECRET_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
        monkeypatch.delenv(f"{variable}_FILE", raising=False)
    return monkeypatch


@pytest.mark.parametrize(("variable", "field"), SECRET_VARIABLES.items())
def test_each_secret_can_come_from_a_file(
    variable: str, field: str, clean_secret_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    value = f"{field}-value-{'x' * 40}"
    secret_file = tmp_path / variable.lower()
    secret_file.write_text(f"  {value}\n")  # as `kubectl create secret` or an editor may leave it
    clean_secret_environment.setenv(f"{variable}_FILE", str(secret_file))

    settings = Settings.load(data_dir=tmp_path)

    assert getattr(settings, field) == value


def test_a_production_secret_key_from_a_file_satisfies_the_production_check(
    clean_secret_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("k" * 48 + "\n")
    clean_secret_environment.setenv("MEDCHAT_SECRET_KEY_FILE", str(key_file))

    settings = Settings.load(environment="production", data_dir=tmp_path)

    assert settings.signing_key == "k" * 48


def test_a_variable_and_its_file_variant_together_are_an_error_naming_both(
    clean_secret_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("from-the-file-" + "f" * 40)
    clean_secret_environment.setenv("MEDCHAT_QDRANT_API_KEY", "from-the-environment")
    clean_secret_environment.setenv("MEDCHAT_QDRANT_API_KEY_FILE", str(key_file))

    with pytest.raises(SettingsError) as raised:
        Settings.load(data_dir=tmp_path)

    message = str(raised.value)
    assert "MEDCHAT_QDRANT_API_KEY " in message or "MEDCHAT_QDRANT_API_KEY and" in message
    assert "MEDCHAT_QDRANT_API_KEY_FILE" in message
    assert "from-the-environment" not in message and "from-the-file" not in message, "no secret in the message"


@pytest.mark.parametrize("kind", ["missing", "directory", "unreadable"])
def test_an_unreadable_file_is_an_error_naming_it(
    kind: str, clean_secret_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "llm-key"
    if kind == "directory":
        path.mkdir()
    elif kind == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads any file")
        path.write_text("key")
        path.chmod(0)
    clean_secret_environment.setenv("MEDCHAT_LLM_API_KEY_FILE", str(path))

    with pytest.raises(SettingsError) as raised:
        Settings.load(data_dir=tmp_path)

    assert "MEDCHAT_LLM_API_KEY_FILE" in str(raised.value)
    assert str(path) in str(raised.value)


def test_every_problem_with_secret_files_is_reported_at_once(
    clean_secret_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_secret_environment.setenv("MEDCHAT_REDIS_URL_FILE", str(tmp_path / "absent"))
    clean_secret_environment.setenv("MEDCHAT_SECRET_KEY", "s" * 40)
    clean_secret_environment.setenv("MEDCHAT_SECRET_KEY_FILE", str(tmp_path / "absent-too"))

    with pytest.raises(SettingsError) as raised:
        Settings.load(data_dir=tmp_path)

    assert "MEDCHAT_REDIS_URL_FILE" in str(raised.value)
    assert "MEDCHAT_SECRET_KEY_FILE" in str(raised.value)


def test_a_secret_read_from_a_file_stays_out_of_the_settings_repr(
    clean_secret_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("do-not-print-" + "z" * 40)
    clean_secret_environment.setenv("MEDCHAT_SECRET_KEY_FILE", str(key_file))

    assert "do-not-print" not in repr(Settings.load(data_dir=tmp_path))
