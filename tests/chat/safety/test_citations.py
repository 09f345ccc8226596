"""Citation checking: only [n] that point at a given passage survive; nothing else changes."""

from __future__ import annotations

import pytest

from medchat.chat.safety import CitationCheck, check_citations, cites_passages, parse_citations
from medchat.chat.safety.citations import CitationItem


def test_a_citation_beyond_the_passages_is_removed_and_a_valid_one_kept() -> None:
    result = check_citations("Paracetamol is first line [2]. Rarely it harms the liver [7].", 3)
    assert result == CitationCheck("Paracetamol is first line [2]. Rarely it harms the liver.", [2], [7])
    assert "[7]" not in result.text


@pytest.mark.parametrize(
    ("answer", "count", "text", "cited", "removed"),
    [
        ("A [1][7]. B", 3, "A [1]. B", [1], [7]),
        ("A [1, 7] B", 3, "A [1] B", [1], [7]),
        ("A [7, 1] B", 3, "A [1] B", [1], [7]),
        ("A [1; 3] B", 3, "A [1; 3] B", [1, 3], []),
        ("A [1-3] B", 3, "A [1-3] B", [1, 2, 3], []),
        ("A [1–3] B", 5, "A [1–3] B", [1, 2, 3], []),
        ("A [2-7] B", 3, "A [2-3] B", [2, 3], [7]),
        ("A [3-1] B", 3, "A [3-1] B", [1, 2, 3], []),
        ("A [4-9] B", 3, "A B", [], [4, 9]),
        ("A [1-3, 9] B", 3, "A [1-3] B", [1, 2, 3], [9]),
        ("A [0] B", 3, "A B", [], [0]),
        ("A [7] [8].", 3, "A.", [], [7, 8]),
        ("A [7][8].", 3, "A.", [], [7, 8]),
        ("A [7][1].", 3, "A [1].", [1], [7]),
        ("A [2]", 0, "A", [], [2]),
        ("[9] Line one.\n[8] Line two [1].", 2, "Line one.\nLine two [1].", [1], [9, 8]),
        ("word[7] next", 3, "word next", [], [7]),
        ("See [3], then [2] and [3] again [2].", 3, "See [3], then [2] and [3] again [2].", [3, 2], []),
        ("A [1-999999999] B", 2, "A [1-2] B", [1, 2], [999999999]),
    ],
)
def test_citation_groups(answer: str, count: int, text: str, cited: list[int], removed: list[int]) -> None:
    assert check_citations(answer, count) == CitationCheck(text, cited, removed)


@pytest.mark.parametrize(
    "answer",
    [
        "Doses are [500 mg] twice daily.",
        "See [the leaflet](https://example.org/leaflet) and [2](https://example.org).",
        "An interval [1.5, 3.0] and an array [a, b].",
        "No citations here at all.",
        "",
    ],
)
def test_text_without_citations_is_unchanged(answer: str) -> None:
    assert check_citations(answer, 1) == CitationCheck(answer, [], [])


def test_nothing_outside_removed_citations_is_altered() -> None:
    answer = "  Line  with  odd   spacing [1]\n\n- bullet [2], *emphasis* [3]!\n\tTabbed [9] (note)\n"
    result = check_citations(answer, 3)
    assert result.text == "  Line  with  odd   spacing [1]\n\n- bullet [2], *emphasis* [3]!\n\tTabbed (note)\n"
    assert result.cited == [1, 2, 3]
    assert result.removed == [9]


@pytest.mark.parametrize(
    ("answer", "count", "grounded"),
    [
        ("Raised [1].", 2, True),
        ("Raised [1, 2].", 2, True),
        ("Raised [1-2].", 2, True),
        ("Raised [2–5].", 2, True),
        ("Raised [3].", 2, False),
        ("Raised [0].", 2, False),
        ("Raised [1].", 0, False),
        ("See [1](https://example.org).", 2, False),
        ("No citation.", 2, False),
    ],
)
def test_grounded_means_citing_a_passage_as_the_check_reads_citations(answer: str, count: int, grounded: bool) -> None:
    assert cites_passages(answer, count) is grounded
    assert cites_passages(answer, count) is bool(check_citations(answer, count).cited)


def test_the_parser_reads_groups_and_ranges_where_they_are_written() -> None:
    answer = "A [3-1] and [2; 5]."
    assert [(answer[g.start : g.end], g.items) for g in parse_citations(answer)] == [
        ("[3-1]", [CitationItem(1, 3, "-")]),
        ("[2; 5]", [CitationItem(2, 2, ""), CitationItem(5, 5, "")]),
    ]
