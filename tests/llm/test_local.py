"""The real local model (SmolLM2-135M on xllamacpp), when installed by `medchat model install-local`."""

from __future__ import annotations

import pytest

from medchat.llm import GenerationDone, GenerationRequest, TextDelta
from medchat.llm.discovery import local_model_status
from medchat.llm.local import LOCAL_MODEL_NAME, LocalProvider, find_local_model

MODEL_PATH = find_local_model()

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(MODEL_PATH is None, reason="local model not installed (medchat model install-local)"),
]


@pytest.fixture
def provider() -> LocalProvider:
    assert MODEL_PATH is not None
    return LocalProvider(MODEL_PATH, max_output_tokens=24)


@pytest.mark.asyncio
async def test_answers_a_short_question_with_capped_output(provider: LocalProvider) -> None:
    events = [event async for event in provider.stream(GenerationRequest("What is a fever?"))]

    text = "".join(event.text for event in events if isinstance(event, TextDelta))
    done = events[-1]
    assert text.strip()
    assert isinstance(done, GenerationDone)
    assert sum(isinstance(event, GenerationDone) for event in events) == 1
    assert done.model == LOCAL_MODEL_NAME
    assert 0 < done.usage.completion_tokens <= 24
    assert done.usage.prompt_tokens > 0


@pytest.mark.asyncio
async def test_leaving_a_stream_early_frees_the_model_for_the_next_one(provider: LocalProvider) -> None:
    stream = provider.stream(GenerationRequest("Describe the heart in detail."))
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    await stream.aclose()

    title = await provider.complete("Write a three-word title about fever.", max_tokens=8)

    assert title


def test_status_reports_the_installed_model() -> None:
    assert local_model_status().startswith(f"installed: {LOCAL_MODEL_NAME}")
