from __future__ import annotations

import itertools

from medchat.retrieval.chunking import chunk_document
from medchat.retrieval.document import Heading, ParsedPage
from medchat.retrieval.parsing.markup import markdown_page
from medchat.retrieval.tokenizer import count_tokens


def sentences(prefix: str, count: int) -> str:
    return " ".join(f"{prefix} sentence number {i} talks about thirst and frequent urination." for i in range(count))


def test_chunks_keep_their_page_and_heading_path() -> None:
    page_one = markdown_page(
        f"# Diabetes\nDiabetes is common.\n\n## Symptoms\n{sentences('Symptom', 3)}\n\n## Treatment\nInsulin helps.", 1
    )
    page_two = ParsedPage(2, "Metformin is often the first medicine.")
    chunks = chunk_document([page_one, page_two], chunk_tokens=200, overlap_tokens=20)
    assert [(c.page, c.section) for c in chunks] == [
        (1, "Diabetes"),
        (1, "Diabetes > Symptoms"),
        (1, "Diabetes > Treatment"),
        (2, "Diabetes > Treatment"),
    ]
    assert chunks[0].text == "Diabetes is common."
    assert all("#" not in chunk.text for chunk in chunks)
    assert [c.index for c in chunks] == [0, 1, 2, 3]


def test_a_chunk_never_spans_two_pages() -> None:
    pages = [ParsedPage(1, sentences("First", 2)), ParsedPage(2, sentences("Second", 2))]
    chunks = chunk_document(pages, chunk_tokens=500, overlap_tokens=50)
    assert len(chunks) == 2
    assert "Second" not in chunks[0].text and "First" not in chunks[1].text


def test_long_sections_are_packed_to_the_budget_with_overlap() -> None:
    text = sentences("Packed", 40)
    chunks = chunk_document([ParsedPage(1, text)], chunk_tokens=60, overlap_tokens=15)
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.token_count <= 60
        assert count_tokens([chunk.text])[0] == chunk.token_count
    for before, after in itertools.pairwise(chunks):
        last_sentence = before.text.rsplit(". ", 1)[-1]
        assert after.text.startswith(last_sentence.rstrip("."))
    covered = " ".join(chunk.text for chunk in chunks)
    assert all(f"number {i} " in covered for i in range(40))


def test_a_sentence_longer_than_a_chunk_is_cut_into_word_runs() -> None:
    words = " ".join(f"word{i}" for i in range(300))
    chunks = chunk_document([ParsedPage(1, words)], chunk_tokens=50, overlap_tokens=10)
    assert all(0 < chunk.token_count <= 50 for chunk in chunks)
    assert chunks[0].text.startswith("word0 ") and chunks[-1].text.endswith("word299")


def test_no_empty_chunks_and_same_input_same_output() -> None:
    pages = [
        ParsedPage(1, "   \n\n  "),
        ParsedPage(2, "# Only a heading\n", (Heading(0, 1, "Only a heading"),)),
        ParsedPage(3, "Text after.\n\n\n\nMore text."),
    ]
    first = chunk_document(pages, chunk_tokens=100, overlap_tokens=10)
    assert [(c.page, c.section, c.text) for c in first] == [(3, "Only a heading", "Text after.\n\nMore text.")]
    assert chunk_document(pages, chunk_tokens=100, overlap_tokens=10) == first
