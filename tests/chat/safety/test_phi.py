"""PHI redaction: what is an identifier and what is not, reversible redaction, streaming, and logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from medchat.chat.safety import PhiRedactor, redact_phi, structlog_scrubber
from medchat.chat.safety.phi import nhs_number_is_valid
from medchat.platform import logging as platform_logging
from medchat.settings import Settings

POSITIVES: list[tuple[str, str]] = [
    ("Email me at jane.doe+clinic@example.co.uk please", "Email me at [EMAIL] please"),
    ("J.SMITH@NHS.NET wrote", "[EMAIL] wrote"),
    ("call +44 20 7946 0958 tomorrow", "call [PHONE] tomorrow"),
    ("my number is (555) 123-4567", "my number is [PHONE]"),
    ("555-123-4567", "[PHONE]"),
    ("mobile 07700 900123", "mobile [PHONE]"),
    ("ring 020 7946 0958 after 5", "ring [PHONE] after 5"),
    ("+1 (555) 123-4567 is the office", "[PHONE] is the office"),
    ("text me at 555.123.4567", "text me at [PHONE]"),
    ("call Social Security at 1-800-772-1213", "call Social Security at [PHONE]"),
    ("phone: 7946 0958 12", "phone: [PHONE]"),
    ("SSN 123-45-6789", "SSN [NATIONAL_ID]"),
    ("NHS number 943 476 5919", "NHS number [NATIONAL_ID]"),
    ("her number is 943 476 5919", "her number is [NATIONAL_ID]"),
    ("my nhs no: 9434765919", "my nhs no: [NATIONAL_ID]"),
    ("passport number AB1234567 expires soon", "passport number [NATIONAL_ID] expires soon"),
    ("national id: 12345678X", "national id: [NATIONAL_ID]"),
    ("NI number QQ 12 34 56 C", "NI number [NATIONAL_ID]"),
    ("mine is AB 12 34 56 C and", "mine is [NATIONAL_ID] and"),
    ("mine is AB123456C and", "mine is [NATIONAL_ID] and"),
    ("I'm in SW1A 1AA now", "I'm in [ADDRESS] now"),
    ("Café bill (SSN: 123-45-6789)", "Café bill (SSN: [NATIONAL_ID])"),
    ("Zoë’s passport: X1234567", "Zoë’s passport: [NATIONAL_ID]"),
    ("MRN 12345678", "MRN [MRN]"),
    ("medical record number: A1234567", "medical record number: [MRN]"),
    ("hospital number RX-445566 on the label", "hospital number [MRN] on the label"),
    ("patient ID is 4455667", "patient ID is [MRN]"),
    ("DOB 01/02/1960", "DOB [DATE_OF_BIRTH]"),
    ("I was born on 3 March 1958", "I was born on [DATE_OF_BIRTH]"),
    ("date of birth: 1960-02-01", "date of birth: [DATE_OF_BIRTH]"),
    ("D.O.B. March 3rd, 1958", "D.O.B. [DATE_OF_BIRTH]"),
    ("I live at 221B Baker Street", "I live at [ADDRESS]"),
    ("1600 Pennsylvania Avenue NW, Washington", "[ADDRESS]"),
    ("12 High St, London", "[ADDRESS]"),
    ("postcode SW1A 1AA", "postcode [ADDRESS]"),
]

NEGATIVES: list[str] = [
    "take 500 mg twice a day",
    "diagnosed in 2019",
    "HbA1c 48 mmol/mol",
    "BP 120/80, HR 72",
    "take 1-2 tablets every 4-6 hours",
    "appointment on 3 March 2024",
    "my last scan was on 01/02/2023",
    "call 112 in an emergency",
    "the NHS 111 service",
    "range 3.5-5.0 mmol/L",
    "temperature 38.5",
    "eGFR 60 ml/min/1.73m2",
    "2024-03-01T12:00:00.123456Z",
    "trace 4bf92f3577b34da6a3ce929d0e0e4736",
    "id 123e4567-e89b-12d3-a456-426614174000",
    "I walked 10000 steps",
    "vitamin B12 deficiency",
    "mutations in the IL36RN and CD40LG genes",
    "born in 1958",
    "weight 72.5 kg",
    "2 Tablets Daily",
    "dose 0.5-1 mg/kg",
    "the 2019-2020-2021 seasons",
    "1 in 10000 people",
    "platelets 150-400 x10^9/L",
    "she is 5 ft 6 in",
]


@pytest.mark.parametrize(("text", "expected"), POSITIVES)
def test_identifiers_are_redacted(text: str, expected: str) -> None:
    assert redact_phi(text) == expected


@pytest.mark.parametrize("text", NEGATIVES)
def test_clinical_numbers_are_not_identifiers(text: str) -> None:
    assert redact_phi(text) == text


def test_table_size() -> None:
    assert len(POSITIVES) + len(NEGATIVES) >= 30


def test_nhs_check_digit() -> None:
    assert nhs_number_is_valid("943 476 5919")
    assert not nhs_number_is_valid("943 476 5918")
    assert not nhs_number_is_valid("12345")


def test_redactor_numbers_placeholders_consistently_across_texts() -> None:
    redactor = PhiRedactor()
    history = redactor.redact("I'm jane@example.org, mobile 07700 900123.")
    question = redactor.redact("Can you write to JANE@example.org or call 07700-900123 or +44 20 7946 0958?")
    assert history == "I'm [EMAIL_1], mobile [PHONE_1]."
    assert question == "Can you write to [EMAIL_1] or call [PHONE_1] or [PHONE_2]?"


def test_round_trip_restores_the_originals() -> None:
    redactor = PhiRedactor()
    text = "Patient MRN 12345678, DOB 01/02/1960, lives at 221B Baker Street, email a.b@example.com."
    redacted = redactor.redact(text)
    for original in ("12345678", "01/02/1960", "221B Baker Street", "a.b@example.com"):
        assert original not in redacted
    assert redactor.restore(redacted) == text
    answer = "Write to [EMAIL_1] and [email_1]; [PHONE_9] is unknown and stays."
    assert redactor.restore(answer) == "Write to a.b@example.com and a.b@example.com; [PHONE_9] is unknown and stays."


def test_text_without_identifiers_is_returned_as_is() -> None:
    redactor = PhiRedactor()
    text = "What is the usual dose of paracetamol? [1]"
    assert redactor.redact(text) is text
    assert redactor.restore(text) == text


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11])
def test_streaming_restore_across_chunk_boundaries(size: int) -> None:
    redactor = PhiRedactor()
    redactor.redact("Contact jane@example.org or 07700 900123, MRN 12345678.")
    answer = "Write to [EMAIL_1] [1]; if urgent call [PHONE_1]. Your record [MRN_1] is noted. [ and [EMA stay."
    chunks = [answer[i : i + size] for i in range(0, len(answer), size)]
    restorer = redactor.restore_stream()
    pieces = [restorer.feed(chunk) for chunk in chunks]
    pieces.append(restorer.flush())
    expected = (
        "Write to jane@example.org [1]; if urgent call 07700 900123. Your record 12345678 is noted. [ and [EMA stay."
    )
    assert "".join(pieces) == expected
    for piece in pieces:
        assert "[EMAIL_1]" not in piece and "[PHONE_1]" not in piece


def test_streaming_holds_back_only_a_possible_placeholder() -> None:
    redactor = PhiRedactor()
    redactor.redact("jane@example.org")
    restorer = redactor.restore_stream()
    assert restorer.feed("Hello [EM") == "Hello "
    assert restorer.feed("AIL_1] and [2") == "jane@example.org and [2"
    assert restorer.feed("] done [") == "] done "
    assert restorer.flush() == "["


def test_restore_all_wraps_an_iterable_of_chunks() -> None:
    redactor = PhiRedactor()
    redactor.redact("call 555-123-4567")
    chunks = iter(["Call [PH", "ONE", "_1", "] now"])
    assert "".join(redactor.restore_stream().restore_all(chunks)) == "Call 555-123-4567 now"


def test_structlog_scrubber_is_redact_phi() -> None:
    assert structlog_scrubber("mail x@y.org") == redact_phi("mail x@y.org") == "mail [EMAIL]"


@pytest.fixture
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Put structlog, the root logger and the scrubber registry back as they were (process-wide state)."""
    saved_config = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    monkeypatch.setattr(platform_logging, "_scrubbers", [])
    yield
    structlog.configure(**saved_config)
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


@pytest.mark.usefixtures("restore_logging")
def test_logs_carry_no_email_or_phone(capsys: pytest.CaptureFixture[str]) -> None:
    # configured here, not in a fixture, so that the handler writes to the captured stderr
    platform_logging.configure_logging(Settings.load(log_format="json", environment="test"))
    platform_logging.add_scrubber(redact_phi)
    log = structlog.get_logger("medchat.test.phi")
    log.info("question from jane.doe@example.org", phone="call me on 07700 900123", count=3)
    logging.getLogger("medchat.test.stdlib").warning("stdlib line with +44 20 7946 0958")
    err = capsys.readouterr().err
    assert "jane.doe@example.org" not in err
    assert "07700 900123" not in err
    assert "7946 0958" not in err
    lines = [json.loads(line) for line in err.splitlines()]
    assert lines[0]["event"] == "question from [EMAIL]"
    assert lines[0]["phone"] == "call me on [PHONE]"
    assert lines[0]["count"] == 3
    assert lines[1]["event"] == "stdlib line with [PHONE]"
