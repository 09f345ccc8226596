"""Scope limits: requests for one person's dose, diagnosis or medication change vs general information."""

from __future__ import annotations

import pytest

from medchat.chat.safety import RulesError, ScopeDecision, assess_scope, scope_topics

ALL_TOPICS = ("individual_dosing", "personal_diagnosis", "medication_change")

CASES: list[tuple[str, str | None]] = [
    # individual dosing: refused
    ("how many mg of calpol should I give my 4 year old", "individual_dosing"),
    ("What dose of insulin should I take?", "individual_dosing"),
    ("How much paracetamol can I give my toddler?", "individual_dosing"),
    ("Is 1000mg of paracetamol too much for me?", "individual_dosing"),
    ("what dose of amoxicillin for a 15 kg child", "individual_dosing"),
    ("I forgot my dose of metformin, should I take double?", "individual_dosing"),
    ("How often should I use my inhaler?", "individual_dosing"),
    ("how much paracetmol can i give my daughter", "individual_dosing"),
    ("My husband weighs 90 kg, what dosage of ibuprofen?", "individual_dosing"),
    # dosing information in general: answered (the organisation's sources say it, with citations)
    ("What is the usual adult dose range of paracetamol according to the leaflet?", None),
    ("What's the maximum daily dose of ibuprofen?", None),
    ("dose of paracetamol for a 4 year old", None),
    ("How are insulin doses adjusted in general?", None),
    ("I take 20 mg of citalopram, can I drink alcohol?", None),
    ("How many hours should I sleep?", None),
    ("I'm not asking how much to give my son, just what it treats", None),
    # personal diagnosis
    ("Do I have diabetes?", "personal_diagnosis"),
    ("what is wrong with me, I feel tired all the time", "personal_diagnosis"),
    ("What are the symptoms of diabetes?", None),
    # medication change
    ("Should I stop taking my statins?", "medication_change"),
    ("Can I stop my antidepressants suddenly?", "medication_change"),
    ("What happens if you stop taking antidepressants suddenly?", None),
    ("I stopped my meds last month", None),
]


@pytest.mark.parametrize(("text", "topic"), CASES)
def test_scope(text: str, topic: str | None) -> None:
    decision = assess_scope(text, out_of_scope_topics=ALL_TOPICS)
    assert decision.refuse is (topic is not None), (text, decision)
    assert decision.topic == topic
    assert (decision.message is not None) is (topic is not None)


def test_table_size() -> None:
    assert len(CASES) >= 20


def test_only_the_configured_topics_are_refused() -> None:
    text = "What dose of insulin should I take?"
    assert assess_scope(text, out_of_scope_topics=[]) == ScopeDecision(refuse=False)
    assert not assess_scope(text, out_of_scope_topics=["personal_diagnosis"]).refuse
    decision = assess_scope(text, out_of_scope_topics=["individual_dosing"])
    assert decision.refuse
    assert decision.message is not None
    assert "pharmacist" in decision.message


def test_the_first_configured_topic_wins() -> None:
    text = "Should I double my dose of insulin?"
    assert assess_scope(text, out_of_scope_topics=ALL_TOPICS).topic == "individual_dosing"
    assert assess_scope(text, out_of_scope_topics=ALL_TOPICS[::-1]).topic == "medication_change"


def test_an_unknown_topic_is_a_configuration_error() -> None:
    with pytest.raises(RulesError, match="unknown categories"):
        assess_scope("anything", out_of_scope_topics=["individual_dosage"])


def test_topics_are_listed() -> None:
    assert scope_topics() == list(ALL_TOPICS)
