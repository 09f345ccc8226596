"""Speed of the safety checks on 2,000-character messages, and triage's trigger rate on general questions.

Run: .venv/bin/python bench/safety_triage.py [--runs N]
Times are per message, on one core, in microseconds: CPU time (``process_time``, less disturbed by
other work on the machine) and wall time; "cold" is the first pass after the token caches are
emptied, "warm" the best of N passes over the same messages. A calibration loop is printed first so
numbers from a busy machine can be read as such. With ``../shared/data/medquad`` present it also
times dense medical text (MedQuAD answers) and reports how many of MedQuAD's 16k general questions
trigger an emergency notice (the ideal is none).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from medchat.chat.safety import assess_emergency, check_citations, load_rules, redact_phi
from medchat.chat.safety.triage import _triage

MEDQUAD = Path(__file__).resolve().parents[2] / "shared/data/medquad/medquad.jsonl.gz"
SIZE = 2000

CHAT_SENTENCES = [
    "Hi, I have a question about my mother who is 78 and lives on her own.",
    "She has type 2 diabetes and takes metformin twice a day with food.",
    "Her blood pressure has been around 150/90 for the last few months.",
    "The GP changed her tablets in March and she has been more tired since then.",
    "She doesn't have chest pain or shortness of breath, but her ankles are a bit swollen.",
    "I read that swollen ankles can be a side effect of amlodipine, is that right?",
    "She also takes aspirin 75 mg and a statin at night.",
    "Her last HbA1c was 58 mmol/mol which the nurse said was a bit high.",
    "We are trying to cut down on sugar and she walks for 20 minutes most days.",
    "My brother thinks she should stop the statin because of muscle aches.",
    "What does the leaflet say about muscle pain with simvastatin?",
    "She had a fall last year but did not hit her head and recovered well.",
    "Sometimes she gets confused about which tablets to take in the morning.",
    "Would a pill organiser help, or is there something better?",
    "Thanks for any advice, I just want to make sure we are doing the right things.",
]


def chat_messages(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    messages = []
    for _ in range(count):
        text = ""
        while len(text) < SIZE:
            text += rng.choice(CHAT_SENTENCES) + " "
        messages.append(text[:SIZE])
    return messages


def medquad_answers(count: int, seed: int) -> list[str]:
    with gzip.open(MEDQUAD, "rt") as lines:
        answers = [row["answer"][:SIZE] for row in map(json.loads, lines) if len(row["answer"]) >= SIZE]
    return random.Random(seed).sample(answers, count)


def calibration() -> float:
    return min(_cpu(lambda: sum(range(100_000))) for _ in range(7)) * 1e3


def _cpu(work: Callable[[], object]) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def per_message(check: Callable[[str], object], messages: list[str], runs: int) -> dict[str, float]:
    """Cold pass (caches emptied), then the best of ``runs`` warm passes: µs per message."""
    rules = _triage().rules
    rules._lexicon.clear()
    rules._entries.clear()
    cold = _cpu(lambda: [check(m) for m in messages]) / len(messages) * 1e6
    warm_cpu = min(_cpu(lambda: [check(m) for m in messages]) for _ in range(runs)) / len(messages) * 1e6
    walls = []
    for message in messages:
        started = time.perf_counter()
        check(message)
        walls.append((time.perf_counter() - started) * 1e6)
    walls.sort()
    return {
        "cold_cpu": cold,
        "warm_cpu": warm_cpu,
        "wall_p50": statistics.median(walls),
        "wall_p99": walls[int(len(walls) * 0.99) - 1],
    }


def report(name: str, numbers: dict[str, float]) -> None:
    print(
        f"  {name:<34} cold {numbers['cold_cpu']:6.0f}  warm {numbers['warm_cpu']:6.0f}  "
        f"wall p50 {numbers['wall_p50']:6.0f}  p99 {numbers['wall_p99']:6.0f}   µs/message"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()

    print(f"calibration: sum(range(100000)) took {calibration():.2f} ms of CPU (higher = a busier machine)")
    started = time.perf_counter()
    load_rules()
    print(f"rule files compiled in {(time.perf_counter() - started) * 1e3:.0f} ms")

    sets = {"chat-like": chat_messages(args.messages, seed=1)}
    if MEDQUAD.exists():
        sets["dense medical (MedQuAD answers)"] = medquad_answers(args.messages, seed=1)
    for label, messages in sets.items():
        print(f"{label}: {len(messages)} messages of {SIZE} characters")
        report("assess_emergency", per_message(assess_emergency, messages, args.runs))
        report("redact_phi", per_message(redact_phi, messages, args.runs))
        report("check_citations (answer, 6 passages)", per_message(lambda m: check_citations(m, 6), messages, 3))

    if MEDQUAD.exists():
        with gzip.open(MEDQUAD, "rt") as lines:
            questions = [row["question"] for row in map(json.loads, lines)]
        triggered = [q for q in questions if assess_emergency(q).emergency]
        print(f"MedQuAD general questions that trigger a notice: {len(triggered)} of {len(questions)}")
        for question in triggered[:10]:
            print(f"  {question}")


if __name__ == "__main__":
    main()
