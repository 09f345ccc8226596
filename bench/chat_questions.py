"""The chat benchmarks' questions: MedQuAD's, for the topics in the knowledge base, as people ask them.

Conversations of a few turns on one topic, where a follow-up says "it" for the topic's name ("What are
the symptoms of it?"), so the history and the retrieval query differ from turn to turn as in real use.
"""

from __future__ import annotations

import itertools
import random
import re
from collections import defaultdict


def conversations(rows: list[dict], per_conversation: int, seed: int) -> list[list[str]]:
    """The ingested topics' questions in a seeded order, cut into conversations of ``per_conversation``.

    Topic by topic ("what is it" first, the rest shuffled); a question on the same topic as the one
    before it in its conversation names the topic "it". A topic with fewer questions than a conversation
    holds runs on into the next topic, asked in full, as a person changing the subject would.
    """
    rng = random.Random(seed)
    by_focus: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_focus[row["focus"]].append(row)
    topics = list(by_focus)
    rng.shuffle(topics)
    sequence: list[tuple[str, str]] = []
    for topic in topics:
        seen: set[str] = set()
        asked = [row for row in by_focus[topic] if not (row["question"] in seen or seen.add(row["question"]))]
        rng.shuffle(asked)
        asked.sort(key=lambda row: row.get("qtype") != "information")
        sequence += [(topic, re.sub(r"\s+\?$", "?", row["question"].strip())) for row in asked]
    result: list[list[str]] = []
    for start in range(0, len(sequence) - per_conversation + 1, per_conversation):
        turns = sequence[start : start + per_conversation]
        questions = [turns[0][1]]
        for (previous, _), (topic, question) in itertools.pairwise(turns):
            same = topic == previous
            questions.append(re.sub(re.escape(topic), "it", question, flags=re.IGNORECASE) if same else question)
        result.append(questions)
    return result
