"""A retriever stand-in for the chat tests: fixed passages, and the scopes it was asked with."""

from __future__ import annotations

from medchat.retrieval import Passage, SearchScope


class FakeRetriever:
    """Stands in for ``medchat.retrieval.Retriever``: the same ``search`` signature and result type."""

    def __init__(self) -> None:
        self.scopes: list[SearchScope] = []

    async def search(self, query: str, *, scope: SearchScope, top_k: int | None = None) -> list[Passage]:
        self.scopes.append(scope)
        text = "Hypertension is a blood pressure persistently at or above 140/90 mmHg. It raises stroke risk."
        return [
            Passage("doc-1", "Hypertension guideline", 3, "Definition", text, text[:60], 0.82, "doc-1:0"),
            Passage(
                "doc-2", "Stroke leaflet", 1, "", "Stroke risk rises with blood pressure.", "Stroke", 0.61, "doc-2:4"
            ),
        ]
