from __future__ import annotations

import re

import pytest

from medchat.llm import ContextPassage, GenerationDone, GenerationRequest, TextDelta
from medchat.llm.sources_only import (
    QUOTED_NOTICE,
    WEAK_MATCH_NOTICE,
    SourcesOnlyProvider,
    extractive_answer,
    split_sentences,
)

pytestmark = pytest.mark.asyncio

PASSAGES = (
    ContextPassage(
        2,
        "Hypertension guideline",
        3,
        "Hypertension is diagnosed when blood pressure stays above 140/90 mmHg on repeated readings. "
        "The guideline was revised in 2023. Office readings should be confirmed at home.",
    ),
    ContextPassage(
        5,
        "Diet leaflet",
        None,
        "Eat more vegetables. Reducing salt lowers blood pressure within weeks. Drink water.",
    ),
    ContextPassage(7, "Asthma protocol", 12, "Inhaled steroids are the mainstay of asthma control."),
)


async def _answer(request: GenerationRequest) -> tuple[str, list[object]]:
    events = [event async for event in SourcesOnlyProvider().stream(request)]
    return "".join(event.text for event in events if isinstance(event, TextDelta)), events


async def test_quotes_the_relevant_sentences_and_cites_only_existing_passages() -> None:
    text, events = await _answer(GenerationRequest("When is blood pressure too high?", passages=PASSAGES))

    assert text.startswith(QUOTED_NOTICE)
    assert "stays above 140/90 mmHg" in text
    assert "Reducing salt lowers blood pressure" in text
    assert "Inhaled steroids" not in text
    assert "Drink water" not in text
    cited = {int(number) for number in re.findall(r"\[(\d+)\]", text)}
    assert cited
    assert cited <= {passage.number for passage in PASSAGES}
    assert sum(isinstance(event, TextDelta) for event in events) > 3
    done = events[-1]
    assert isinstance(done, GenerationDone)
    assert done.model == "sources-only"
    assert sum(isinstance(event, GenerationDone) for event in events) == 1


async def test_sentences_keep_their_passage_order_and_citation() -> None:
    text = extractive_answer("hypertension readings home", PASSAGES)

    line = next(line for line in text.splitlines() if line.endswith("[2]"))
    assert line.index("Hypertension is diagnosed") < line.index("Office readings")


async def test_sentences_repeated_by_overlapping_passages_are_quoted_once() -> None:
    overlapping = [
        ContextPassage(1, "Guideline", 1, "Intro text. Salt raises blood pressure."),
        ContextPassage(2, "Guideline", 2, "Salt raises blood pressure. More text."),
    ]

    text = extractive_answer("Does salt raise blood pressure?", overlapping)

    assert text.count("Salt raises blood pressure.") == 1


async def test_says_not_covered_when_there_are_no_passages() -> None:
    text, events = await _answer(GenerationRequest("What is the dose of drug X?"))

    assert "not covered" in text.lower()
    assert "knowledge base has nothing" in text
    assert not re.search(r"\[\d+\]", text)
    assert isinstance(events[-1], GenerationDone)


async def test_unrelated_passages_are_quoted_as_the_closest_material_with_a_warning() -> None:
    text = extractive_answer("zebra migration patterns", PASSAGES)

    assert WEAK_MATCH_NOTICE in text
    cited = {int(number) for number in re.findall(r"\[(\d+)\]", text)}
    assert cited == {2, 5}


async def test_complete_makes_a_title_from_the_last_line() -> None:
    prompt = "Write a short title for this conversation.\nQuestion: What is high blood pressure and how is it treated?"

    title = await SourcesOnlyProvider().complete(prompt)

    assert title == "What is high blood pressure and how is"


async def test_ping_is_always_ready() -> None:
    assert await SourcesOnlyProvider().ping() is True


async def test_sentence_splitting_keeps_decimals_and_bullets_apart() -> None:
    assert split_sentences("Take 2.5 mg daily. Then stop.\n- Bullet one\n- Bullet two") == [
        "Take 2.5 mg daily.",
        "Then stop.",
        "Bullet one",
        "Bullet two",
    ]
