from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.messages.utils import count_tokens_approximately

from medchat.llm import ChatTurn, ContextPassage, GenerationRequest
from medchat.llm.prompts import DEFAULT_SYSTEM_PROMPT, NO_SOURCES_NOTE, build_prompt, to_openai_messages

PASSAGES = (
    ContextPassage(1, "Hypertension guideline", 3, "Blood pressure above 140/90 mmHg on repeated readings."),
    ContextPassage(2, "Patient leaflet", None, "Reduce salt and\n  exercise regularly."),
)


def _conversation(turns: int, *, chars: int) -> list[ChatTurn]:
    return [
        ChatTurn("user" if index % 2 == 0 else "assistant", f"turn {index:03d} " + "x" * chars)
        for index in range(turns)
    ]


def test_system_prompt_then_numbered_passages_then_history_then_question() -> None:
    history = [ChatTurn("user", "What is blood pressure?"), ChatTurn("assistant", "The force of blood [1].")]
    request = GenerationRequest("And when is it too high?", history=history, passages=PASSAGES)

    messages = build_prompt(request, context_tokens=8000)

    assert [type(message) for message in messages] == [SystemMessage, HumanMessage, AIMessage, HumanMessage]
    system = messages[0].content
    assert system.startswith(DEFAULT_SYSTEM_PROMPT)
    assert "[1] Hypertension guideline, page 3: Blood pressure above 140/90 mmHg on repeated readings." in system
    assert "[2] Patient leaflet: Reduce salt and exercise regularly." in system
    assert system.index("[1]") < system.index("[2]")
    assert messages[-1].content == "And when is it too high?"


def test_a_custom_system_prompt_replaces_the_default() -> None:
    request = GenerationRequest("Q?", passages=PASSAGES, system_prompt="Answer in French {literally}.")

    system = build_prompt(request, context_tokens=8000)[0].content

    assert system.startswith("Answer in French {literally}.")
    assert DEFAULT_SYSTEM_PROMPT not in system
    assert "[1] Hypertension guideline" in system


def test_history_is_trimmed_to_the_budget_keeping_the_newest_turns() -> None:
    history = _conversation(60, chars=400)
    request = GenerationRequest("Latest question?", history=history, passages=PASSAGES)

    messages = build_prompt(request, context_tokens=2000)
    kept = messages[1:-1]

    assert 0 < len(kept) < len(history)
    assert kept[-1].content == history[-1].content
    assert [message.content for message in kept] == [turn.content for turn in history[-len(kept) :]]
    assert isinstance(kept[0], HumanMessage)
    assert count_tokens_approximately(messages) <= 2000


def test_no_room_means_no_history_but_still_the_question() -> None:
    request = GenerationRequest("Q?", history=_conversation(4, chars=4000), passages=PASSAGES)

    messages = build_prompt(request, context_tokens=600)

    assert [type(message) for message in messages] == [SystemMessage, HumanMessage]
    assert messages[-1].content == "Q?"


def test_passages_that_do_not_fit_are_left_out_and_the_first_is_cut() -> None:
    long_passages = [ContextPassage(number, f"Doc {number}", 1, "word " * 2000) for number in (1, 2, 3)]
    request = GenerationRequest("Q?", passages=long_passages)

    system = build_prompt(request, context_tokens=1200)[0].content

    assert "[1] Doc 1, page 1:" in system
    assert system.endswith("…")
    assert "[2] Doc" not in system
    assert "[3] Doc" not in system
    assert count_tokens_approximately([SystemMessage(system)]) <= 1200


def test_without_passages_the_prompt_says_there_are_none() -> None:
    messages = build_prompt(GenerationRequest("Q?"), context_tokens=8000)

    assert NO_SOURCES_NOTE in messages[0].content


def test_openai_message_dicts() -> None:
    history = [ChatTurn("user", "Hi"), ChatTurn("assistant", "Hello")]
    messages = to_openai_messages(build_prompt(GenerationRequest("Q?", history=history), context_tokens=8000))

    assert [message["role"] for message in messages] == ["system", "user", "assistant", "user"]
    assert all(isinstance(message["content"], str) for message in messages)
