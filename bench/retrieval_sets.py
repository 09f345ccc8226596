"""Query sets for the retrieval figures, built from MedQuAD (deterministic for a seed).

* rare terms: made-up drug, gene and code names, each inserted in one extra MedQuAD answer;
* defined terms: "What is X?" where X is defined inside a long per-topic document;
* follow-ups: a topic's "What is X?" then a question about it that says "it" instead of X;
* consumer narratives: MedQuAD questions inside a few sentences of personal context;
* sources-only sample: questions with their reference answers.

Nothing here is copied into the repository: everything is derived from ``../shared/data`` at run time.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from retrieval_data import CHUNK_TOKENS, OVERLAP_TOKENS, Corpus, _chunks, medquad_rows

from medchat.retrieval.chunking import Chunk, chunk_document
from medchat.retrieval.document import Heading, ParsedPage

Query = tuple[str, set[str]]


@cache
def rows_by_focus() -> dict[str, list[dict]]:
    by_focus: dict[str, list[dict]] = defaultdict(list)
    for row in medquad_rows():
        if row["answer"].strip() and row["question"].strip():
            by_focus[row["focus"]].append(row)
    return dict(by_focus)


def answer_documents(rows: Iterable[dict]) -> dict[str, str]:
    """answer text -> document id, as ``retrieval_data.medquad`` assigns them (first row with that answer)."""
    ids: dict[str, str] = {}
    for row in rows:
        ids.setdefault(row["answer"], row["id"])
    return ids


@cache
def _vocabulary() -> frozenset[str]:
    words: set[str] = set()
    for row in medquad_rows():
        words.update(re.findall(r"[a-z0-9]+", f"{row['question']} {row['answer']}".lower()))
    return frozenset(words)


# --- 1. rare terms -------------------------------------------------------------------------------

_ONSETS = "b d f g k l m n p r s t v z br dr fl gr kl pl pr st tr vr".split()  # noqa: SIM905
_VOWELS = "a e i o u a o".split()  # noqa: SIM905
_CODAS = ["", "", "", "r", "l", "n", "s", "x"]
_DRUG_SUFFIXES = "xin mab vir zole stat pril tide lumab parin cept nib dronate mycin olol sartan".split()  # noqa: SIM905
_CODE_LETTERS = "BCDFGHJKLMNPQRSTVWXZ"
_ORDINARY_WORDS = (  # noqa: SIM905
    "dose advice safety children pregnancy information risks cost guide overview facts questions results "
    "meaning testing interactions warnings alcohol food daily help support leaflet reviews experience "
    "timing storage options"
).split()
_DRUG_SENTENCES = [
    "{Term} is a medicine sometimes used for {focus}.",
    "Some doctors prescribe {term} for people with {focus}.",
    "{Term} is a newer treatment that has been tried in {focus}.",
]
_GENE_SENTENCES = [
    "Changes in the {term} gene have been found in a few people with {focus}.",
    "Researchers are studying whether the {term} gene plays a part in {focus}.",
]
_CODE_SENTENCES = [
    "Some clinics record {focus} under the code {term}.",
    "In some registries, {focus} is listed as {term}.",
]
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def _syllable(rng: random.Random) -> str:
    return rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)


def _made_up_term(rng: random.Random) -> tuple[str, str]:
    """(kind, term): a drug-like word ("zorvaxin"), a gene-like symbol ("KORB2") or a code ("KRX-417")."""
    roll = rng.random()
    if roll < 0.6:
        return "drug", _syllable(rng) + _syllable(rng) + rng.choice(_DRUG_SUFFIXES)
    letters = "".join(rng.choice(_CODE_LETTERS) for _ in range(3)) + rng.choice(["", rng.choice("AEIOU")])
    if roll < 0.8:
        return "gene", letters + str(rng.randint(1, 9))
    return "code", f"{letters[:3]}-{rng.randint(100, 999)}"


def made_up_terms(count: int, *, seed: int) -> list[tuple[str, str]]:
    """Distinct (kind, term) pairs whose letter parts never occur in MedQuAD."""
    rng = random.Random(seed)
    vocabulary = _vocabulary()
    terms: dict[str, tuple[str, str]] = {}
    while len(terms) < count:
        kind, term = _made_up_term(rng)
        parts = [part for part in re.findall(r"[a-z0-9]+", term.lower()) if not part.isdigit()]
        key = parts[0][:6]  # no two terms share a stem-like prefix either
        if any(part in vocabulary for part in parts) or key in {k[:6] for k in terms}:
            continue
        terms[key] = (kind, term)
    return list(terms.values())


def rare_terms(base: Corpus, base_foci: set[str], *, count: int = 200, seed: int = 23) -> tuple[Corpus, list[Query]]:
    """The base corpus plus ``count`` extra documents: short answers of other topics, each with one
    sentence naming a made-up term. Query: the term and two ordinary words; relevant: that document."""
    rng = random.Random(seed)
    hosts = []
    for focus in sorted(rows_by_focus()):
        if focus in base_foci:
            continue
        answers = [row["answer"] for row in rows_by_focus()[focus] if 300 <= len(row["answer"]) <= 1200]
        if answers:
            hosts.append((focus, sorted(set(answers))[0]))
    hosts = rng.sample(hosts, count)
    documents = dict(base.documents)
    queries: list[Query] = []
    for index, ((kind, term), (focus, answer)) in enumerate(zip(made_up_terms(count, seed=seed), hosts, strict=True)):
        template = rng.choice({"drug": _DRUG_SENTENCES, "gene": _GENE_SENTENCES, "code": _CODE_SENTENCES}[kind])
        sentence = template.format(term=term, Term=term[0].upper() + term[1:], focus=focus)
        sentences = _SENTENCE_BREAK.split(answer.strip())
        position = rng.randint(1, min(3, len(sentences)))
        text = " ".join([*sentences[:position], sentence, *sentences[position:]])
        document_id = f"rare-{index:03d}"
        documents[document_id] = (focus, _chunks(text))
        words = rng.sample(_ORDINARY_WORDS, 2)
        queries.append((f"{term} {words[0]} {words[1]}", {document_id}))
    return Corpus("MedQuAD + rare terms", documents, queries), queries


# --- 2. defined terms ----------------------------------------------------------------------------

_DEFINITION = re.compile(
    r"^(?P<term>[A-Za-z][\w'-]*(?: [A-Za-z0-9][\w'-]*){0,3})(?: \([^()]{1,40}\))? (?P<verb>is|are) (?:a|an) "
    r"(?P<next>[\w-]+)"
)
_DEFINITION_SENTENCES = re.compile(r"(?<=[.!?])\s+(?=[A-Z])|\n+")
_ARTICLES = {"a", "an", "the"}
_NOT_A_TERM = frozenset(
    """this it there they these that those he she we you i each most some many one another both neither either
    all any such its their his her which what who where when while if because although though since now usually
    often sometimes also however then here so but and or only even today currently generally typically in on at
    for with without from after before once during treatment treatments diagnosis prognosis outlook cause causes
    research inheritance symptoms signs surgery people patients children adults women men someone something itself
    characteristic different long-term your my our earliest changes""".split()  # noqa: SIM905
)
_GENERIC = frozenset(
    """following primary first second last other same next condition disorder disease syndrome test procedure
    therapy injection injections promoter""".split()  # noqa: SIM905
)
_NOT_A_DEFINITION = frozenset(
    """good better best common important very serious major key great big small useful possible frequent leading
    main significant known rare normal new long short large little few number lot sign symptom part example way
    result problem risk factor""".split()  # noqa: SIM905
)


@dataclass(frozen=True)
class Definition:
    key: str
    """lowercased term with any leading article dropped: what dedupes queries"""
    question: str


def definitions(text: str, *, focus: str, foci: frozenset[str]) -> list[Definition]:
    """Conservative: sentences "<X> is a/an ..." or "<X> (...) are a/an ..." where X is 1-4 words, not the
    topic, not any MedQuAD topic name, no pronoun or function word, no mid-term capital (headings glued on)."""
    found = []
    for sentence in _DEFINITION_SENTENCES.split(text):
        match = _DEFINITION.match(sentence.strip())
        if not match or match["next"].lower() in _NOT_A_DEFINITION:
            continue
        words = match["term"].split()
        if any(word.lower() in _NOT_A_TERM for word in words):
            continue
        if any(
            word.lower() in _ARTICLES or (word[0].isupper() and not (len(word) > 1 and word.isupper()))
            for word in words[1:]
        ):
            continue
        article = words[0].lower() if words[0].lower() in _ARTICLES else ""
        core = words[1:] if article else words
        if not core or len(" ".join(core)) < 3 or (len(core) == 1 and core[0].lower() in _GENERIC):
            continue
        key = " ".join(core).lower()
        if key in foci or key in focus.lower() or focus.lower() in key or _abbreviates(key, focus):
            continue
        if not core[0].isupper() or core[0][1:2].islower():
            core = [core[0][0].lower() + core[0][1:], *core[1:]]
        shown = " ".join([article, *core]) if article else " ".join(core)
        found.append(Definition(key, f"What {match['verb']} {shown}?"))
    return found


def _abbreviates(term: str, focus: str) -> bool:
    """Whether the term abbreviates the topic ("KSS", "Kearns-Sayre syndrome"): its letters in order in the name."""
    letters, topic = re.sub(r"[^a-z]", "", term), re.sub(r"[^a-z]", "", focus.lower())
    if " " in term or not letters or not topic.startswith(letters[0]):
        return False
    remaining = iter(topic)
    return all(letter in remaining for letter in letters)


def _long_document(rows: Sequence[dict]) -> list[Chunk]:
    """All distinct answers of a topic, each under its question as a heading, separated by blank lines."""
    text, headings = "", []
    for row in {row["answer"]: row for row in rows}.values():
        if text:
            text += "\n\n"
        headings.append(Heading(len(text), 2, row["question"].strip()))
        text += row["question"].strip() + "\n" + row["answer"].strip()
    return chunk_document(
        [ParsedPage(1, text, tuple(headings))], chunk_tokens=CHUNK_TOKENS, overlap_tokens=OVERLAP_TOKENS
    )


def defined_terms(
    base: Corpus,
    base_rows: Sequence[dict],
    *,
    max_queries: int = 300,
    per_document: int = 4,
    seed: int = 31,
    max_chunks: int = 16,
) -> tuple[Corpus, list[Query]]:
    """Long documents (one per topic outside the base corpus, all its answers as sections) indexed with
    the base corpus's short per-answer documents. Relevant: every document, long or short, that defines X."""
    rng = random.Random(seed)
    foci = frozenset(focus.lower() for focus in rows_by_focus())
    base_foci = {row["focus"] for row in base_rows}
    candidates = [
        focus
        for focus, rows in sorted(rows_by_focus().items())
        if focus not in base_foci and len({row["answer"] for row in rows}) >= 2
    ]
    rng.shuffle(candidates)
    documents = dict(base.documents)
    defined_in: dict[str, set[str]] = defaultdict(set)
    questions: dict[str, str] = {}
    chosen: list[str] = []
    for focus in candidates:
        if len(chosen) >= max_queries:
            break
        rows = rows_by_focus()[focus]
        found = {d.key: d for d in definitions("\n".join(r["answer"] for r in rows), focus=focus, foci=foci)}
        fresh = [d for key, d in found.items() if key not in questions]
        if not fresh:
            continue
        chunks = _long_document(rows)
        if len(chunks) > max_chunks:
            continue
        document_id = f"long-{len(documents)}"
        documents[document_id] = (focus, chunks)
        for definition in found.values():
            defined_in[definition.key].add(document_id)
        for definition in rng.sample(fresh, min(per_document, len(fresh)))[: max_queries - len(chosen)]:
            questions[definition.key] = definition.question
            chosen.append(definition.key)
    focus_of = {row["id"]: row["focus"] for row in base_rows}
    for answer, document_id in answer_documents(base_rows).items():
        for definition in definitions(answer, focus=focus_of[document_id], foci=foci):
            if definition.key in questions:
                defined_in[definition.key].add(document_id)
    queries = [(questions[key], defined_in[key]) for key in chosen]
    return Corpus("Long documents + short MedQuAD", documents, queries), queries


# --- 3. follow-ups -------------------------------------------------------------------------------

_FOLLOW_UPS: dict[str, list[str]] = {
    "symptoms": ["What are its symptoms?", "and what are the symptoms?", "what symptoms does it cause?"],
    "treatment": ["How is it treated?", "and how is it treated?", "what are the treatments for it?"],
    "exams and tests": ["How is it diagnosed?", "and how do doctors test for it?"],
    "causes": ["What causes it?", "and what causes this condition?"],
    "inheritance": ["Is it inherited?", "is it passed down in families?"],
    "frequency": ["How common is it?", "how many people have it?"],
    "genetic changes": ["What genetic changes cause it?", "which genes are involved?"],
    "outlook": ["What is the outlook?", "what's the prognosis for this condition?"],
    "susceptibility": ["Who is at risk?", "who is at risk for it?"],
    "prevention": ["Can it be prevented?", "how can it be prevented?"],
    "research": ["What research is being done on it?", "are there clinical trials for it?"],
    "complications": ["What complications can it cause?"],
    "stages": ["What are its stages?"],
}


@dataclass(frozen=True)
class FollowUp:
    first: str
    """the topic's "What is (are) X ?" question, asked before"""
    original: str
    """the follow-up as MedQuAD asks it, with the topic named"""
    bare: str
    """the follow-up as a person would type it after ``first``"""
    relevant: set[str]


def follow_ups(base_rows: Sequence[dict], *, per_focus: int = 2, limit: int = 300, seed: int = 13) -> list[FollowUp]:
    rng = random.Random(seed)
    ids = answer_documents(base_rows)
    by_focus: dict[str, list[dict]] = defaultdict(list)
    for row in base_rows:
        by_focus[row["focus"]].append(row)
    pairs: list[FollowUp] = []
    for focus in sorted(by_focus):
        rows = by_focus[focus]
        first = next((r["question"] for r in rows if r["question"].startswith("What is (are) ")), None)
        later = [
            r
            for r in rows
            if r["qtype"] in _FOLLOW_UPS and focus.lower() in r["question"].lower() and r["question"] != first
        ]
        if first is None or not later:
            continue
        picked: dict[str, dict] = {}
        for row in rng.sample(later, len(later)):
            picked.setdefault(row["qtype"], row)
        for row in list(picked.values())[:per_focus]:
            bare = rng.choice(_FOLLOW_UPS[row["qtype"]])
            pairs.append(FollowUp(first, row["question"], bare, {ids[row["answer"]]}))
    return rng.sample(pairs, min(limit, len(pairs)))


# --- 4. consumer narratives ----------------------------------------------------------------------

_WHO = [
    ("I'm {age}", "I"),
    ("I am a {age}-year-old woman", "I"),
    ("I'm a man of {age}", "I"),
    ("My mother is {age}", "she"),
    ("My husband is {age}", "he"),
    ("My dad is {age}", "he"),
]
_CONDITIONS = [
    "type 2 diabetes",
    "high blood pressure",
    "asthma",
    "arthritis in both knees",
    "migraines",
    "an underactive thyroid",
    "depression",
    "high cholesterol",
    "COPD",
    "atrial fibrillation",
    "psoriasis",
    "sleep apnea",
]
_DRUGS = [
    "metformin",
    "amlodipine",
    "ibuprofen",
    "levothyroxine",
    "omeprazole",
    "sertraline",
    "warfarin",
    "atorvastatin",
    "lisinopril",
    "an inhaler",
    "apixaban",
    "vitamin D",
]
_WORRIES = [
    "I read online that it can be serious and now I can't sleep.",
    "A friend of ours had something similar and it scared us.",
    "We live quite far from the nearest hospital.",
    "The appointment with the specialist is not for another two months.",
    "I really don't want to add more pills to what I already take.",
    "We are supposed to travel abroad next month.",
    "Nobody explained anything properly at the clinic.",
    "Money is tight, so I want to ask the right questions.",
]


def _has(subject: str) -> str:
    return "have" if subject == "I" else "has"


def narratives(rows: Sequence[dict], *, relevant: dict[str, str], count: int = 600, seed: int = 17) -> list[Query]:
    """3-6 sentences of personal context (age, other conditions, medicines, worries) with the MedQuAD
    question somewhere among them."""
    rng = random.Random(seed)
    queries: list[Query] = []
    for row in rng.sample(list(rows), min(count, len(rows))):
        opener, subject = rng.choice(_WHO)
        conditions = rng.sample(_CONDITIONS, 2)
        drugs = rng.sample(_DRUGS, 2)
        context = [
            f"{opener.format(age=rng.randint(24, 88))} and {subject} {_has(subject)} had {conditions[0]} "
            f"for {rng.randint(2, 20)} years.",
            f"{subject.capitalize()} also {_has(subject)} {conditions[1]} and {'take' if subject == 'I' else 'takes'} "
            f"{drugs[0]} and {drugs[1]} every day.",
            f"At the last appointment the doctor mentioned {row['focus']}.",
            rng.choice(_WORRIES),
            "Sorry for the long message.",
        ]
        kept = [context[0], *rng.sample(context[1:], rng.randint(1, 4))]
        question = row["question"] if rng.random() < 0.5 else row["question"][0].lower() + row["question"][1:]
        kept.insert(rng.randint(1, len(kept)), question)
        queries.append((" ".join(kept), {relevant[row["answer"]]}))
    return queries
