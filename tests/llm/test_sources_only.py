"""Sources-only answers: quoted whole sentences, best first, each cited. Scored with the real embedder."""

from __future__ import annotations

import re

import pytest

from medchat.llm import ContextPassage, GenerationDone, GenerationRequest, TextDelta
from medchat.llm.extractive.scoring import MAX_SENTENCES, MAX_WORDS
from medchat.llm.sources_only import (
    NOT_COVERED_ANSWER,
    QUOTED_NOTICE,
    WEAK_MATCH_NOTICE,
    SentenceEmbedder,
    SourcesOnlyProvider,
    extractive_answer,
    split_sentences,
)
from medchat.retrieval.embeddings import Embedder, default_embedder

pytestmark = pytest.mark.asyncio

LEAFLET = """Gout: an overview
Gout is a type of arthritis that causes sudden attacks of severe pain, swelling and redness in a joint. \
It often starts in the joint at the base of the big toe. \
These attacks are called flares and usually settle within one or two weeks.

Symptoms
During a flare the joint becomes hot, swollen and so tender that even the weight of a bed sheet hurts. \
A flare of gout can also cause a mild fever and make you feel tired and generally unwell.
Signs of a flare include:
- sudden, severe pain in one joint, often starting at night
- red, shiny skin over the joint
Between flares most people have no symptoms at all.

What causes gout?
Gout happens when urate crystals build up in and around a joint. \
Drinking alcohol, especially beer, and eating a lot of red meat or seafood make flares more likely. \
Some water tablets (diuretics) raise the urate level too.

Treating a flare
Rest the painful joint, raise it and keep it cool with an ice pack wrapped in a towel. \
Flares are usually treated with an anti-inflammatory painkiller (e.g. naproxen) or with colchicine, \
started as soon as the pain begins. \
Steroid tablets or a steroid injection into the joint can be used if these medicines are not suitable. \
Your doctor will choose a medicine that suits your kidneys, your stomach and any \
other conditions and medicines you have.

Hyperuricaemia and tophi
Hyperuricaemia means having too much urate (uric acid) in the blood. \
It is the main cause of gout, although not everyone with hyperuricaemia develops gout. \
Tophi are hard, painless lumps of urate crystals that can form under the skin, for example on the ears, \
fingers or elbows, after years of high urate levels. \
Long-term treatment with allopurinol lowers urate, which prevents flares and slowly dissolves tophi."""


def _excerpt(start: str, end: str | None = None) -> str:
    return LEAFLET[LEAFLET.index(start) : LEAFLET.index(end) if end else None]


# The leaflet as the chunker passes it on: the third chunk starts with the tail of the sentence the
# second one ended with (chunk overlap), mid-sentence.
OVERVIEW = ContextPassage(1, "Gout leaflet", 1, _excerpt("Gout: an overview", "What causes gout?"))
CAUSES_AND_TREATMENT = ContextPassage(2, "Gout leaflet", 1, _excerpt("What causes gout?", "Hyperuricaemia and"))
HYPERURICAEMIA = ContextPassage(3, "Gout leaflet", 2, _excerpt("other conditions and medicines you have."))
GOUT = (OVERVIEW, CAUSES_AND_TREATMENT, HYPERURICAEMIA)
NAPROXEN = "Flares are usually treated with an anti-inflammatory painkiller (e.g. naproxen) or with colchicine"
FEVER = "A flare of gout can also cause a mild fever"

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

BULLET = re.compile(r"^- (?P<text>.+) \[(?P<number>\d+)\]$")


@pytest.fixture(scope="module")
def embed() -> SentenceEmbedder:
    return default_embedder().embed_async


def _bullets(answer: str) -> list[str]:
    return [line for line in answer.splitlines() if line.startswith("- ")]


async def _stream(provider: SourcesOnlyProvider, request: GenerationRequest) -> tuple[str, list[object]]:
    events = [event async for event in provider.stream(request)]
    return "".join(event.text for event in events if isinstance(event, TextDelta)), events


async def test_the_provider_streams_the_relevant_sentences_citing_only_existing_passages(
    embed: SentenceEmbedder,
) -> None:
    text, events = await _stream(
        SourcesOnlyProvider(embed=embed), GenerationRequest("When is blood pressure too high?", passages=PASSAGES)
    )

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


async def test_sentence_splitting_keeps_decimals_abbreviations_and_list_items_apart() -> None:
    text = (
        "Take 2.5 mg twice daily. Dr. Smith prefers an NSAID, e.g. Naproxen, for flares. "
        "Painkillers, i.e. NSAIDs, help.\n- Bullet one\n2) Bullet two\n• Bullet three"
    )

    assert split_sentences(text) == [
        "Take 2.5 mg twice daily.",
        "Dr. Smith prefers an NSAID, e.g. Naproxen, for flares.",
        "Painkillers, i.e. NSAIDs, help.",
        "Bullet one",
        "Bullet two",
        "Bullet three",
    ]


async def test_a_heading_line_is_never_glued_to_the_sentence_after_it() -> None:
    assert split_sentences("Gout: an overview\nGout is a type of arthritis.\nTreatment\nRest the joint.") == [
        "Gout: an overview",
        "Gout is a type of arthritis.",
        "Treatment",
        "Rest the joint.",
    ]
    # A sentence wrapped onto the next line is still one sentence.
    assert split_sentences("Gout is a type of arthritis that\ncauses sudden pain.") == [
        "Gout is a type of arthritis that causes sudden pain."
    ]


async def test_headings_are_not_quoted_as_answers(embed: SentenceEmbedder) -> None:
    what = await extractive_answer("What is gout?", [OVERVIEW], embed=embed)
    causes = await extractive_answer("What causes gout?", [CAUSES_AND_TREATMENT], embed=embed)

    assert _bullets(what)[0].startswith("- Gout is a type of arthritis that causes sudden attacks")
    assert "overview" not in what
    assert "Symptoms" not in what
    assert "What causes gout?" not in causes
    assert "Treating a flare" not in causes
    assert "Gout happens when urate crystals build up" in causes


@pytest.mark.parametrize("with_embedder", [True, False], ids=["embedded", "terms-only"])
async def test_how_a_flare_is_treated_quotes_the_treatment_before_the_fever(
    embed: SentenceEmbedder, with_embedder: bool
) -> None:
    answer = await extractive_answer("How is a gout flare treated?", GOUT, embed=embed if with_embedder else None)

    bullets = _bullets(answer)
    naproxen = [index for index, bullet in enumerate(bullets) if NAPROXEN in bullet]
    fever = [index for index, bullet in enumerate(bullets) if FEVER in bullet]
    assert naproxen, answer
    assert bullets[naproxen[0]].endswith("[2]")
    assert all(index > naproxen[0] for index in fever), answer
    assert WEAK_MATCH_NOTICE not in answer


async def test_a_passage_starting_mid_sentence_does_not_quote_the_fragment(embed: SentenceEmbedder) -> None:
    for embedder in (embed, None):
        answer = await extractive_answer(
            "Which other conditions and medicines matter with gout?", [HYPERURICAEMIA], embed=embedder
        )

        assert "other conditions and medicines you have" not in answer.lower()
        assert _bullets(answer)


async def test_sentences_are_in_relevance_order_not_passage_order(embed: SentenceEmbedder) -> None:
    question = "Which medicine lowers urate?"  # the first passage mentions a medicine, and urate
    first = await extractive_answer(question, [CAUSES_AND_TREATMENT, HYPERURICAEMIA], embed=embed)
    swapped = await extractive_answer(question, [HYPERURICAEMIA, CAUSES_AND_TREATMENT], embed=embed)

    assert "Long-term treatment with allopurinol lowers urate" in _bullets(first)[0]
    assert _bullets(first)[0].endswith("[3]")
    assert _bullets(swapped)[0] == _bullets(first)[0]


async def test_adjacent_sentences_of_one_passage_share_a_bullet_in_text_order(embed: SentenceEmbedder) -> None:
    answer = await extractive_answer("What are tophi?", GOUT, embed=embed)

    assert _bullets(answer)[0] == (
        "- Tophi are hard, painless lumps of urate crystals that can form under the skin, for example on the "
        "ears, fingers or elbows, after years of high urate levels. Long-term treatment with allopurinol lowers "
        "urate, which prevents flares and slowly dissolves tophi. [3]"
    )


async def test_a_near_paraphrase_from_another_source_is_quoted_once(embed: SentenceEmbedder) -> None:
    handbook = ContextPassage(
        5,
        "Arthritis handbook",
        40,
        "Flares are usually treated with an anti-inflammatory painkiller such as naproxen, or with colchicine, "
        "started as soon as the pain begins.",
    )
    for embedder in (embed, None):
        answer = await extractive_answer("How is a gout flare treated?", [*GOUT, handbook], embed=embedder)

        assert answer.count("naproxen") == 1, answer


async def test_sentences_repeated_by_overlapping_passages_are_quoted_once(embed: SentenceEmbedder) -> None:
    overlapping = [
        ContextPassage(1, "Guideline", 1, "Intro text here. Salt raises blood pressure."),
        ContextPassage(2, "Guideline", 2, "Salt raises blood pressure. More text follows here."),
    ]

    text = await extractive_answer("Does salt raise blood pressure?", overlapping, embed=embed)

    assert text.count("Salt raises blood pressure.") == 1


QUESTIONS = (
    "How is a gout flare treated?",
    "What are the symptoms of gout?",
    "What causes gout?",
    "Which other conditions and medicines matter with gout?",
    "What does a flare look like?",
    "What are tophi?",
    "Can gout be prevented?",
)


@pytest.mark.parametrize("question", QUESTIONS)
async def test_every_bullet_is_a_whole_sentence_ending_with_a_valid_citation(
    embed: SentenceEmbedder, question: str
) -> None:
    answer = await extractive_answer(question, GOUT, embed=embed)

    bullets = _bullets(answer)
    assert 1 <= len(bullets) <= MAX_SENTENCES
    assert len(" ".join(bullets).split()) <= MAX_WORDS + 3 * len(bullets)
    numbers = {passage.number for passage in GOUT}
    for bullet in bullets:
        match = BULLET.match(bullet)
        assert match, bullet
        assert int(match["number"]) in numbers
        assert not match["text"][0].islower(), bullet


async def test_list_items_are_quoted_capitalised(embed: SentenceEmbedder) -> None:
    answer = await extractive_answer("Is the skin over the joint red and shiny?", [OVERVIEW], embed=embed)

    assert "- Red, shiny skin over the joint [1]" in _bullets(answer)


async def test_says_not_covered_when_there_are_no_passages(embed: SentenceEmbedder) -> None:
    text, events = await _stream(SourcesOnlyProvider(embed=embed), GenerationRequest("What is the dose of drug X?"))

    assert text == NOT_COVERED_ANSWER
    assert not re.search(r"\[\d+\]", text)
    assert isinstance(events[-1], GenerationDone)


@pytest.mark.parametrize("with_embedder", [True, False], ids=["embedded", "terms-only"])
async def test_unrelated_passages_are_quoted_as_the_closest_material_with_a_warning(
    embed: SentenceEmbedder, with_embedder: bool
) -> None:
    text = await extractive_answer("zebra migration patterns", PASSAGES, embed=embed if with_embedder else None)

    assert WEAK_MATCH_NOTICE in text
    assert _bullets(text) == [
        "- Hypertension is diagnosed when blood pressure stays above 140/90 mmHg on repeated readings. [2]",
        "- Eat more vegetables. [5]",
    ]


async def test_a_failing_embedder_falls_back_to_shared_terms() -> None:
    broken = Embedder()
    broken.close()  # its executors refuse work: every embed_async call raises

    answer = await extractive_answer("How is a gout flare treated?", GOUT, embed=broken.embed_async)

    assert NAPROXEN in _bullets(answer)[0]


async def test_complete_makes_a_title_from_the_last_line() -> None:
    prompt = "Write a short title for this conversation.\nQuestion: What is high blood pressure and how is it treated?"

    title = await SourcesOnlyProvider().complete(prompt)

    assert title == "What is high blood pressure and how is"


async def test_ping_is_always_ready() -> None:
    assert await SourcesOnlyProvider().ping() is True
