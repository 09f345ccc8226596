from __future__ import annotations

from pathlib import Path

import pytest

from medchat.llm import LLMProvider, build_provider
from medchat.llm import factory as factory_module
from medchat.llm.factory import LLMConfigurationError
from medchat.llm.local import LocalProvider
from medchat.llm.remote import RemoteProvider
from medchat.llm.sources_only import SourcesOnlyProvider
from medchat.settings import Settings


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings.load(environment="test", data_dir=tmp_path, **overrides)


@pytest.mark.asyncio
async def test_an_api_key_selects_the_remote_model(tmp_path: Path) -> None:
    provider = build_provider(_settings(tmp_path, llm_api_key="sk-test", llm_model="vendor/model-x"))

    assert isinstance(provider, RemoteProvider)
    assert provider.kind == "remote"
    assert provider.model == "vendor/model-x"
    assert provider.label == "vendor/model-x via openrouter.ai"
    assert isinstance(provider, LLMProvider)
    await provider.aclose()


def test_without_a_key_an_installed_local_model_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model_file = tmp_path / "model.gguf"
    model_file.write_bytes(b"GGUF")
    monkeypatch.setattr(factory_module, "find_local_model", lambda: model_file)

    provider = build_provider(_settings(tmp_path, llm_api_key=None))

    assert isinstance(provider, LocalProvider)
    assert provider.kind == "local"
    assert provider.model == "SmolLM2-135M-Instruct"
    assert "demo" in provider.label
    assert "not for medical decisions" in provider.label
    assert isinstance(provider, LLMProvider)


def test_without_a_key_or_local_model_answers_come_from_the_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(factory_module, "find_local_model", lambda: None)

    provider = build_provider(_settings(tmp_path, llm_api_key=None))

    assert isinstance(provider, SourcesOnlyProvider)
    assert provider.kind == "sources-only"
    assert provider.model == "sources-only"
    assert provider.label == "Sources only — no language model configured"
    assert isinstance(provider, LLMProvider)


def test_the_provider_can_be_chosen_explicitly(tmp_path: Path) -> None:
    keyed = Settings.load(data_dir=tmp_path, llm_api_key="k", llm_provider="sources-only")
    assert build_provider(keyed).kind == "sources-only"
    with pytest.raises(LLMConfigurationError, match="MEDCHAT_LLM_API_KEY"):
        build_provider(Settings.load(data_dir=tmp_path, llm_api_key=None, llm_provider="remote"))
