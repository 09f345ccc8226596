"""The emergency notice: call the configured number now, the first steps for what was found, and that
medchat cannot help. Reviewed text; no country-specific numbers other than the configured one."""

from __future__ import annotations

from collections.abc import Sequence

HEADLINE = "This may be an emergency. Call {number} now, or go to the nearest emergency department."
CLOSING = "medchat cannot help in an emergency: do not wait for an answer here."

FIRST_STEPS: dict[str, str] = {
    "unconscious": (
        "If the person is unresponsive and not breathing normally, start CPR if you can; "
        "the call handler will guide you. If they are breathing, lay them on their side."
    ),
    "breathing": "Sit upright, loosen tight clothing and use a prescribed reliever inhaler if there is one.",
    "choking": (
        "If they cannot cough, speak or breathe, give up to 5 back blows, then up to 5 abdominal thrusts "
        "(chest thrusts for a baby under 1), and repeat."
    ),
    "cardiac": "Stop and sit down while you wait; do not drive yourself to hospital.",
    "stroke": "Note the time the symptoms started; do not give food, drink or medicines.",
    "anaphylaxis": "If an adrenaline auto-injector is available, use it now; lie down with the legs raised.",
    "bleeding": "Press firmly on the wound with a clean cloth and keep pressing until help arrives.",
    "self_harm": (
        "If you are thinking about ending your life or harming yourself, you are not alone: call {number} "
        "if you are in danger, or contact a local crisis line or someone you trust now, and do not stay alone."
    ),
    "overdose_poisoning": "Do not make the person vomit; keep the packet or container to show the emergency services.",
    "seizure": "Move dangerous objects away, cushion the head, put nothing in the mouth, and time the seizure.",
    "meningitis": "Do not wait for a rash to appear or worsen before getting help.",
    "sepsis": "Say that you are worried about sepsis when you call.",
    "infant_fever": "A baby under 3 months with a fever needs to be seen by a doctor straight away.",
    "pregnancy": "Call your maternity unit or the emergency number now; do not wait to see if it settles.",
    "head_injury": "Keep the person still and do not leave them alone.",
    "sudden_headache": "A sudden, severe headache needs emergency assessment even if it eases.",
    "burns": "Cool the burn under cool running water for 20 minutes; do not use ice, creams or butter.",
    "diabetic_emergency": (
        "If they are awake and can swallow, give a sugary drink; never give food or drink to someone drowsy "
        "or unconscious."
    ),
}


def build_notice(categories: Sequence[str], *, emergency_number: str) -> str:
    """One short paragraph: the call to action, each category's first step in order, the closing line."""
    steps = [FIRST_STEPS[category].format(number=emergency_number) for category in categories]
    return " ".join([HEADLINE.format(number=emergency_number), *dict.fromkeys(steps), CLOSING])
