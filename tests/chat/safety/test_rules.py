"""The rule language itself: syntax, negation, clauses, exclusions, typo tolerance, errors."""

from __future__ import annotations

import pytest

from medchat.chat.safety import load_rules, rules
from medchat.chat.safety.rules import RulesError, RuleSet, normalise, tokenize

LANGUAGE = rules.RULES_DIR.joinpath("language.tsv").read_text()


def categories(source: str, text: str) -> list[str]:
    ruleset = RuleSet.from_text(LANGUAGE, source)
    return [hit.category for hit in ruleset.match(ruleset.analyse(text))]


def test_normalisation() -> None:
    assert normalise("He CAN'T breathe, temp 38.5°C") == "he cant breathe, temp 38°c"
    assert tokenize("He cannot breathe. She can not; 1000mg, ok: self-harm!") == [
        ["he", "cant", "breathe"],
        ["she", "cant"],
        ["1000", "mg", ",", "ok", ":", "self", "harm"],
    ]
    assert tokenize("Ça va? Il ne peut pas respirer.") == [["ça", "va"], ["il", "ne", "peut", "pas", "respirer"]]


@pytest.mark.parametrize(
    ("source", "text", "expected"),
    [
        ("cat\tchest pain", "my chest pain", ["cat"]),
        ("cat\tchest pain", "pain in chest", []),
        ("cat\tpain in * chest", "pain in my chest", ["cat"]),
        ("cat\tpain in * chest", "pain in chest", []),
        ("cat\tsweat*", "he is sweating", ["cat"]),
        ("cat\tface + droop*", "drooping on one side of her face", ["cat"]),
        ("cat\tface + droop*", "her face. drooping", []),
        ("cat\tweeks old & fever", "she is 6 weeks old. she has a fever", ["cat"]),
        ("cat\tchest pain|crushing", "crushing", ["cat"]),
        ("cat\tchest pain", "chest, pain", []),
        ("a\tx\nb\ty\na\tz", "z y", ["a", "b"]),
    ],
)
def test_pattern_syntax(source: str, text: str, expected: list[str]) -> None:
    assert categories(source, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no chest pain", []),
        ("denies chest pain, nausea or sweating", []),
        ("no fever, he has chest pain", ["cat"]),
        ("no fever but chest pain", ["cat"]),
        ("no fever and he has chest pain", ["cat"]),
        ("not sure but chest pain", ["cat"]),
        ("im not sure, chest pain", ["cat"]),
        ("never in all my years of looking after the family have we seen such chest pain", ["cat"]),
        ("he is not breathing", ["gone"]),
    ],
)
def test_negation_scope(text: str, expected: list[str]) -> None:
    assert categories("cat\tchest pain\ngone\tnot breathing", text) == expected


def test_exclusions() -> None:
    source = "stroke\tstroke\nstroke\t!stroke of luck\nstroke\t!face + numb + dentist"
    assert categories(source, "a stroke") == ["stroke"]
    assert categories(source, "a stroke of luck") == []
    assert categories(source, "a stroke of luck, and he had a stroke") == ["stroke"]
    face = "stroke\tface + numb\nstroke\t!face + numb + dentist"
    assert categories(face, "face numb after the dentist") == []
    assert categories(face, "face numb") == ["stroke"]


def test_typo_tolerance_is_opt_in_and_guarded() -> None:
    source = "\n".join(
        ["@typo_tolerant\tchest|seizure|suicid*", "@not_typo\tchess", "cat\tchest pain|seizure|suicid*", "dog\tfever"]
    )
    assert categories(source, "cheast pain") == ["cat"]
    assert categories(source, "siezure") == ["cat"]
    assert categories(source, "sucidal") == ["cat"]
    assert categories(source, "chess pain") == []  # listed as a real word
    assert categories(source, "thest pain") == []  # the first letter must agree
    assert categories(source, "fevr") == []  # not typo-tolerant


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("cat chest pain", "expected 'category<TAB>pattern'"),
        ("Cat\tchest", "lower_snake_case"),
        ("cat\t* pain", "cannot begin or end"),
        ("cat\tchest||pain", "empty alternative"),
        ("cat\tchest-pain", "not one word"),
        ("@anchor\ti + my", "'|' alternatives only"),
        ("@terminator\tbut then", "single words"),
        ("@typo_tolerant\tchest", "must be a word used in a rule"),
        ("@typo_tolerant\tpain\ncat\tpain", r"5\+ letters"),
        ("cat\t!a & b", "cannot use '&'"),
        ("dog\t!stroke of luck", "without rules"),
    ],
)
def test_errors_name_the_problem(source: str, message: str) -> None:
    with pytest.raises(RulesError, match=message):
        RuleSet.from_text(source)


def test_shipped_rule_files_compile() -> None:
    load_rules()
