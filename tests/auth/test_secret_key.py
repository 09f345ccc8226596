"""The key that signs tokens, sessions' CSRF tokens and cookies is at least 32 characters in every environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from medchat.settings import Settings, SettingsError


@pytest.mark.parametrize("environment", ["development", "test", "production"])
def test_a_short_secret_key_stops_start_up_in_every_environment(tmp_path: Path, environment: str) -> None:
    with pytest.raises(SettingsError, match="MEDCHAT_SECRET_KEY must be at least 32 characters"):
        Settings.load(environment=environment, data_dir=tmp_path, secret_key="x")
    with pytest.raises(SettingsError, match="at least 32"):
        Settings.load(environment=environment, data_dir=tmp_path, secret_key="k" * 31)
    assert Settings.load(environment=environment, data_dir=tmp_path, secret_key="k" * 32).signing_key == "k" * 32


def test_without_a_key_development_generates_a_long_one(tmp_path: Path) -> None:
    assert len(Settings.load(environment="development", data_dir=tmp_path).signing_key) >= 32
