"""Protected health information out of logs (``redact_phi``) and, reversibly, out of LLM calls
(``PhiRedactor``).

What is found, by pattern (no model): e-mail addresses; phone numbers written as phone numbers
(``+44 20 7946 0958``, ``(555) 123-4567``, ``555-123-4567``, ``07700 900123``, or any 7-15 digits after
"phone", "mobile", "call me on"...); US social security numbers; UK NHS numbers written ``943 476 5919``
with a valid check digit (any 10 digits after "NHS number"); UK national insurance numbers; an
identifier after "passport", "national ID", "SSN", "driver's licence"...; medical record numbers after
"MRN", "medical record number", "hospital number", "patient ID"; a date after "DOB", "date of birth",
"born on" (other dates stay: an appointment date is not an identifier); street addresses (a number,
capitalised name words and a street suffix: ``221B Baker Street``, ``12 High St, London``) and UK
postcodes. Doses (``500 mg``), years, lab values and plain small numbers do not look like any of these.

Every identifier needs a digit or an ``@``, so text without either is returned untouched at once:
cheap enough to run on every log line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

EMAIL, PHONE, DATE_OF_BIRTH, NATIONAL_ID, MRN, ADDRESS = (
    "EMAIL",
    "PHONE",
    "DATE_OF_BIRTH",
    "NATIONAL_ID",
    "MRN",
    "ADDRESS",
)
KINDS = (EMAIL, PHONE, DATE_OF_BIRTH, NATIONAL_ID, MRN, ADDRESS)

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DATE = (
    r"(?:\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{4}[/.-]\d{1,2}[/.-]\d{1,2}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+\d{{4}}"
    rf"|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}})"
)
_LABEL_TAIL = r"\s*(?:is\s+|was\s+|of\s+)?[:#=-]?\s*(?:no\.?\s*)?"
_IDENTIFIER = r"(?-i:[A-Z]{1,3}[ -]?)?\d[\dA-Z]*(?:[ /-]\d[\dA-Z]*)*(?-i:[ -][A-Z]\b)?"
"""Optional capital letters, then digit groups (letters allowed after a digit), an optional check letter."""
_STREET_WORDS = (
    *("Street", "St", "Road", "Rd", "Avenue", "Ave", "Lane", "Ln", "Drive", "Dr", "Boulevard", "Blvd", "Court"),
    *("Ct", "Place", "Pl", "Square", "Sq", "Terrace", "Way", "Close", "Crescent", "Cres", "Gardens", "Gdns"),
    *("Grove", "Parkway", "Pkwy", "Highway", "Hwy", "Row", "Walk", "Mews", "Hill", "Rise", "Parade", "Circle"),
    *("Trail", "Alley", "Broadway", "Green"),
)
_STREET_SUFFIX = "(?:" + "|".join(_STREET_WORDS) + ")"
_STREET_GATE = frozenset(_STREET_WORDS)
_UK_POSTCODE = r"(?:[A-Z]{1,2}\d[A-Z\d]?|GIR) ?\d[A-Z]{2}"
_UK_POSTCODE_ALONE = r"(?:[A-Z]{1,2}\d[A-Z\d]?|GIR) \d[A-Z]{2}"
"""Outside an address the space is required: ``IL36RN`` and ``CD40LG`` are genes."""


@dataclass(frozen=True, slots=True)
class _Detector:
    kind: str
    pattern: re.Pattern[str]
    check: Callable[[str], bool] | None = None
    """Validates the matched value (the ``value`` group, else the whole match)."""
    near: str = "text"
    """Where to look: ``text`` (all of it), ``digits`` (around runs of 7+ digit characters) or
    ``capitals`` (around a capital followed by a digit). Each regex pass over 2,000 characters costs
    about 50 µs, so the narrow ones only run where the shape can occur."""
    hints: tuple[str, ...] = ()
    """Skip unless one of these occurs in ``_hint_text`` (a leading space marks the start of a word)."""


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _digit_count(low: int, high: int) -> Callable[[str], bool]:
    return lambda value: low <= len(_digits(value)) <= high


def nhs_number_is_valid(value: str) -> bool:
    """The NHS number modulus-11 check: weights 10..2 over the first nine digits give the tenth."""
    digits = _digits(value)
    if len(digits) != 10:
        return False
    check = 11 - sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True)) % 11
    return (0 if check == 11 else check) == int(digits[9]) and check != 10


_I = re.IGNORECASE
# Order matters: on overlap the earlier detector wins (then the longer match).
_DETECTORS: tuple[_Detector, ...] = (
    _Detector(
        EMAIL, re.compile(r"(?<![\w.+-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"), hints=("@",)
    ),
    _Detector(
        DATE_OF_BIRTH,
        re.compile(
            rf"\b(?:d\.?o\.?b\b\.?|date\s+of\s+birth|birth\s*date|birthday|born(?:\s+on)?){_LABEL_TAIL}(?P<value>{_DATE})",
            _I,
        ),
        hints=(" dob", " d.o.b", "birth", " born"),
    ),
    _Detector(
        MRN,
        re.compile(
            r"\b(?:mrn|medical\s+record\s+(?:number|no\.?|#)|hospital\s+(?:number|no\.?|id)|patient\s+(?:id|number|no\.?)"
            rf"|record\s+(?:number|no\.?)|chart\s+(?:number|no\.?)|case\s+number){_LABEL_TAIL}(?P<value>{_IDENTIFIER})",
            _I,
        ),
        _digit_count(4, 20),
        hints=(" mrn", " record", " hospital", " patient", " chart", " case number"),
    ),
    _Detector(
        NATIONAL_ID,
        re.compile(
            r"\b(?:national\s+(?:id|identity|insurance)(?:\s+(?:card\s+)?(?:number|no\.?))?|ni\s+(?:number|no\.?)|nino"
            r"|passport(?:\s+(?:number|no\.?))?|social\s+security(?:\s+(?:number|no\.?))?|ssn"
            r"|(?:id|identity)\s+(?:card\s+)?(?:number|no\.?)|driver'?s?\s+licen[cs]e(?:\s+(?:number|no\.?))?"
            r"|nhs(?:\s+(?:number|no\.?))?|medicare(?:\s+(?:number|no\.?))?|medicaid(?:\s+(?:number|no\.?))?"
            rf"|health\s+(?:card|insurance)\s+(?:number|no\.?)|insurance\s+(?:number|no\.?)|tax\s+id){_LABEL_TAIL}"
            rf"(?P<value>{_IDENTIFIER})",
            _I,
        ),
        _digit_count(5, 20),
        hints=(
            *(" national", " ni n", " nino", " passport", " security", " ssn", " id n", " id card", " identity"),
            *(" driver", " licen", " nhs", " medicare", " medicaid", " health card", " insurance", " tax id"),
        ),
    ),
    _Detector(
        NATIONAL_ID, re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])"), near="digits"
    ),
    _Detector(NATIONAL_ID, re.compile(r"(?<![\w-])\d{3} \d{3} \d{4}(?![\w-])"), nhs_number_is_valid, near="digits"),
    _Detector(
        NATIONAL_ID,
        re.compile(r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"),
        near="digits",
    ),
    _Detector(
        PHONE,
        re.compile(
            r"\b(?:phone|tel|telephone|mobile|mob|cell|cellphone|fax|whatsapp|landline|contact\s+number"
            r"|(?:call|text|ring|reach)\s+(?:me|us|him|her)\s+(?:on|at))\b\.?"
            rf"(?:\s+(?:number|no\.?))?{_LABEL_TAIL}(?P<value>\+?\(?\d[\d ().-]{{5,20}}\d)",
            _I,
        ),
        _digit_count(7, 15),
        hints=(
            *("phone", " tel", " mobile", " mob", " cell", " fax", " whatsapp", " landline", " contact number"),
            *(" call ", " text ", " ring ", " reach "),
        ),
    ),
    _Detector(
        PHONE,
        re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){2,6}(?![\w-])"),
        _digit_count(8, 15),
        near="digits",
    ),
    _Detector(PHONE, re.compile(r"(?<![\w)])(?:1[ .-]?)?\(\d{3}\)[ .-]?\d{3}[ .-]?\d{4}(?![\w-])"), near="digits"),
    _Detector(PHONE, re.compile(r"(?<![\w.-])(?:1[.-])?\d{3}[.-]\d{3}[.-]\d{4}(?![\w-])"), near="digits"),
    _Detector(PHONE, re.compile(r"(?<![\w.-])\d{3} \d{3} \d{4}(?![\w-])"), near="digits"),
    _Detector(
        PHONE,
        re.compile(r"(?<![\w+.-])0\d{2,4}[ -]?\d{3,4}[ -]?\d{3,4}(?![\w-])"),
        _digit_count(10, 11),
        near="digits",
    ),
    _Detector(
        ADDRESS,
        re.compile(
            r"\b\d{1,5}[A-Za-z]?,?\s+(?:[A-Z][\w'’.-]*\s+){0,3}[A-Z][\w'’-]*\s+"
            rf"{_STREET_SUFFIX}\b\.?(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b)?"
            rf"(?:,\s*[A-Z][\w-]+(?:\s+[A-Z][\w-]+)?)?(?:,?\s*(?:{_UK_POSTCODE}|\d{{5}}(?:-\d{{4}})?)\b)?"
        ),
        near="street",
    ),
    _Detector(ADDRESS, re.compile(rf"\b{_UK_POSTCODE_ALONE}\b"), near="capitals"),
)

_MAYBE_PHI = re.compile(r"[\d@]")
_PLACEHOLDER = re.compile(r"\[(" + "|".join(KINDS) + r")_(\d+)\]", re.IGNORECASE)
_PARTIAL = re.compile(r"\[([A-Za-z_]*)(\d*)")
_PLACEHOLDER_PREFIXES = tuple(f"{kind}_" for kind in KINDS)
_LONGEST_PLACEHOLDER = max(len(p) for p in _PLACEHOLDER_PREFIXES) + 8


_DIGIT_RUN = re.compile(r"\d+")
_CAPITAL_DIGIT = re.compile(r"[A-Z](?=\d)")
_NUMBER_JOINERS = frozenset(" ().-")
_MIN_DIGIT_CLUE = 6
"""A ``digits`` clue is 6+ characters of digits and `` ().-`` between them (an NI number has six digits)."""
_PADDING = {"digits": (4, 3), "capitals": (2, 9)}
"""Context kept around a clue, before and after: a letter prefix (``QQ 12 34 56 C``), the rest of a
postcode after its first digit (``SW1A 1AA``), and one character to see the boundary."""


_NOT_HINT_CHARACTERS = re.compile(r"[^\w@.]+")
_HINT_TABLE = bytes(c if chr(c).isalnum() or chr(c) in "@." else ord(" ") for c in range(128)) + bytes(range(128, 256))


def _hint_text(text: str) -> str:
    """Lower case, other symbols as spaces, single spaces, a space in front: where ``hints`` are looked for."""
    lowered = text.lower()
    if lowered.isascii():
        lowered = lowered.encode("ascii").translate(_HINT_TABLE).decode("ascii")
    else:
        lowered = _NOT_HINT_CHARACTERS.sub(" ", lowered)
    return " " + " ".join(lowered.split()) + " "


def _digit_clues(text: str) -> list[tuple[int, int]]:
    """Spans of digit runs joined by up to two of `` ().-`` (``+44 (20) 7946-0958``), 6+ characters long."""
    clues = []
    start = end = -1
    for run in _DIGIT_RUN.finditer(text):
        gap = text[end : run.start()]
        if start >= 0 and len(gap) <= 2 and _NUMBER_JOINERS.issuperset(gap):
            end = run.end()
            continue
        if end - start >= _MIN_DIGIT_CLUE:
            clues.append((start, end))
        start, end = run.span()
    if end - start >= _MIN_DIGIT_CLUE:
        clues.append((start, end))
    return clues


def _capital_clues(text: str) -> list[tuple[int, int]]:
    return [match.span() for match in _CAPITAL_DIGIT.finditer(text)] if not text.islower() else []


def find_phi(text: str) -> list[tuple[int, int, str]]:
    """Non-overlapping ``(start, end, kind)`` of every identifier in ``text``, in text order."""
    if not _MAYBE_PHI.search(text):
        return []
    lowered = _hint_text(text)
    regions: dict[str, list[tuple[int, int]]] = {"text": [(0, len(text))], "digits": [], "capitals": []}
    for kind, clues in (("digits", _digit_clues(text)), ("capitals", _capital_clues(text))):
        before, after = _PADDING[kind]
        regions[kind] = [(max(start - before, 0), min(end + after, len(text))) for start, end in clues]
    words = text.replace(",", " ").replace(".", " ").split()
    regions["street"] = regions["text"] if not _STREET_GATE.isdisjoint(words) else []
    candidates: set[tuple[int, int, int, str]] = set()
    for rank, detector in enumerate(_DETECTORS):
        if detector.hints and not any(hint in lowered for hint in detector.hints):
            continue
        group = "value" if "value" in detector.pattern.groupindex else 0
        for pos, endpos in regions[detector.near]:
            for match in detector.pattern.finditer(text, pos, endpos):
                if detector.check is None or detector.check(match.group(group)):
                    candidates.add((*match.span(group), rank, detector.kind))
    taken: list[tuple[int, int, str]] = []
    for start, end, _rank, kind in sorted(candidates, key=lambda c: (c[2], c[0] - c[1], c[0])):
        if all(end <= s or start >= e for s, e, _ in taken):
            taken.append((start, end, kind))
    taken.sort()
    return taken


def _replace(text: str, spans: list[tuple[int, int, str]], placeholder: Callable[[str, str], str]) -> str:
    parts = []
    position = 0
    for start, end, kind in spans:
        parts += [text[position:start], placeholder(kind, text[start:end])]
        position = end
    parts.append(text[position:])
    return "".join(parts)


def redact_phi(text: str) -> str:
    """``text`` with each identifier replaced by its kind: ``[EMAIL]``, ``[PHONE]``, ``[MRN]``..."""
    spans = find_phi(text)
    return _replace(text, spans, lambda kind, _value: f"[{kind}]") if spans else text


def structlog_scrubber(value: str) -> str:
    """``redact_phi`` for ``medchat.platform.logging.add_scrubber``: applied to every string of every event."""
    return redact_phi(value)


class PhiRedactor:
    """Reversible redaction for one conversation turn sent to an LLM.

    ``redact`` replaces identifiers with numbered placeholders (``[EMAIL_1]``, ``[PHONE_1]``), the same
    value getting the same placeholder across every text this redactor sees (history and question);
    ``restore`` puts the originals back into the model's answer, and ``restore_stream`` does it for an
    answer arriving in chunks. Keep one redactor per request: it holds the identifiers in memory.
    """

    def __init__(self) -> None:
        self._placeholders: dict[tuple[str, str], str] = {}
        self._originals: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def redact(self, text: str) -> str:
        spans = find_phi(text)
        return _replace(text, spans, self._placeholder) if spans else text

    def _placeholder(self, kind: str, value: str) -> str:
        key = (kind, _identity(kind, value))
        if key not in self._placeholders:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            placeholder = f"[{kind}_{self._counts[kind]}]"
            self._placeholders[key] = placeholder
            self._originals[placeholder] = value
        return self._placeholders[key]

    def restore(self, text: str) -> str:
        """``text`` with every known placeholder (in any letter case) replaced by its original."""
        if "[" not in text or not self._originals:
            return text
        return _PLACEHOLDER.sub(lambda m: self._originals.get(m.group(0).upper(), m.group(0)), text)

    def restore_stream(self) -> StreamRestorer:
        return StreamRestorer(self.restore)

    @property
    def originals(self) -> dict[str, str]:
        """Placeholder -> original value, for the request's own use (never log it)."""
        return dict(self._originals)


def _identity(kind: str, value: str) -> str:
    """What makes two spellings the same identifier: case for e-mail, the digits for phone numbers."""
    if kind == EMAIL:
        return value.lower()
    if kind in (PHONE, NATIONAL_ID, MRN) and _digits(value):
        return _digits(value) + "".join(c for c in value.upper() if c.isalpha())
    return " ".join(value.split()).upper()


class StreamRestorer:
    """Restores placeholders in a streamed answer: ``feed`` each chunk, then ``flush`` at the end.

    A chunk ending in what may be the start of a placeholder (``[EMA``, ``[PHONE_1``) keeps that tail
    back until the next chunk shows whether it is one; everything before it is returned at once.
    """

    def __init__(self, restore: Callable[[str], str]) -> None:
        self._restore = restore
        self._pending = ""

    def feed(self, chunk: str) -> str:
        text = self._pending + chunk
        cut = _partial_placeholder_start(text)
        self._pending = text[cut:]
        return self._restore(text[:cut])

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return self._restore(text)

    def restore_all(self, chunks: Iterator[str]) -> Iterator[str]:
        """Every chunk restored, the held-back tail last; empty pieces are skipped."""
        for chunk in chunks:
            if piece := self.feed(chunk):
                yield piece
        if tail := self.flush():
            yield tail


def _partial_placeholder_start(text: str) -> int:
    """Where a possibly unfinished placeholder begins at the end of ``text``, else ``len(text)``."""
    start = text.rfind("[")
    if start == -1 or "]" in text[start:] or len(text) - start > _LONGEST_PLACEHOLDER:
        return len(text)
    match = _PARTIAL.fullmatch(text, start)
    if match is None:
        return len(text)
    name, digits = match.group(1).upper(), match.group(2)
    if digits:
        return start if name in _PLACEHOLDER_PREFIXES else len(text)
    return start if any(prefix.startswith(name) for prefix in _PLACEHOLDER_PREFIXES) else len(text)
