"""The emergency triage table: phrasings that must trigger (with their category) and must not."""

from __future__ import annotations

import time

import pytest

from medchat.chat.safety import EmergencyAssessment, assess_emergency, emergency_categories
from medchat.chat.safety.notices import FIRST_STEPS

MUST_TRIGGER: list[tuple[str, str]] = [
    # cardiac
    ("My dad has chest pain and is sweating", "cardiac"),
    ("my dad has chest pain. He is sweating a lot and looks grey", "cardiac"),
    ("I have crushing chest pain spreading to my left arm", "cardiac"),
    ("CHEST PAIN AND SHORT OF BREATH!!!", "cardiac"),
    ("i have cheast pain and im sweating", "cardiac"),
    ("Pain in my chest, feel sick and clammy", "cardiac"),
    ("I think I'm having a heart attack", "cardiac"),
    ("No fever, but chest pain and sweating since an hour", "cardiac"),
    # stroke
    ("His face is drooping on one side and his speech is slurred", "stroke"),
    ("my mum's face has dropped on the left", "stroke"),
    ("Grandad suddenly can't lift his right arm, it's weak", "stroke"),
    ("she suddenly became confused and can't speak", "stroke"),
    ("I think my wife is having a stroke", "stroke"),
    ("he is slurring his words and his arm is numb", "stroke"),
    # bleeding
    ("I cut my leg and the bleeding won't stop", "bleeding"),
    ("he's bleeding heavily from a cut on his arm", "bleeding"),
    ("My father is vomiting blood", "bleeding"),
    # anaphylaxis
    ("my throat is swelling after a bee sting", "anaphylaxis"),
    ("He ate peanuts and now he can't breathe", "anaphylaxis"),
    ("I think my son is having an anaphylactic reaction", "anaphylaxis"),
    ("her lips are swollen and tongue swelling after eating shrimp", "anaphylaxis"),
    # self-harm (strict)
    ("I want to kill myself", "self_harm"),
    ("i feel suicidle", "self_harm"),
    ("I don't want to live anymore", "self_harm"),
    ("Is it normal to want to die?", "self_harm"),
    ("I'm not suicidal but sometimes I want to end my life", "self_harm"),
    ("I've been cutting myself again", "self_harm"),
    ("What is the most painless way to die", "self_harm"),
    # overdose and poisoning
    ("I took 20 paracetamol tablets an hour ago", "overdose_poisoning"),
    ("My toddler swallowed some of my pills", "overdose_poisoning"),
    ("my son drank bleach", "overdose_poisoning"),
    ("I think my friend has overdosed", "overdose_poisoning"),
    ("she swallowed a button battery", "overdose_poisoning"),
    # breathing (strict)
    ("I can't breathe", "breathing"),
    ("My baby is struggling to breathe and her lips are blue", "breathing"),
    ("difficulty breatheing", "breathing"),
    ("Why can't I breathe properly?", "breathing"),
    # unconscious
    ("my husband collapsed and is unresponsive", "unconscious"),
    ("He's not breathing!", "unconscious"),
    ("I can't wake my grandmother up, she won't wake", "unconscious"),
    ("she passed out and isn't responding", "unconscious"),
    # seizure
    ("My son is having a siezure", "seizure"),
    ("she's having a seizure right now what do I do", "seizure"),
    ("my daughter is fitting and won't stop shaking", "seizure"),
    # pregnancy
    ("I'm 30 weeks pregnant and bleeding heavily", "pregnancy"),
    ("I am pregnant and have severe stomach pain", "pregnancy"),
    ("I'm 34 weeks pregnant. The baby hasn't moved since yesterday.", "pregnancy"),
    # infant fever
    ("My 6 week old baby has a temperature of 38.5", "infant_fever"),
    ("newborn with a fever, what should I do", "infant_fever"),
    ("my baby is 2 months old. She feels hot and has a temperature of 38", "infant_fever"),
    # meningitis
    ("my son has a rash that doesn't fade under a glass", "meningitis"),
    ("She has a stiff neck and a high temperature and hates the light", "meningitis"),
    # burns, choking, head injury, sudden headache, sepsis, diabetic emergency
    ("My toddler pulled a kettle over and has a bad scald on his chest", "burns"),
    ("I spilled acid and have a deep burn on my hand", "burns"),
    ("my baby is choking on a grape", "choking"),
    ("he's chocking and can't speak", "choking"),
    ("My son hit his head and has been vomiting and is drowsy", "head_injury"),
    ("I have the worst headache of my life, it came on suddenly", "sudden_headache"),
    ("I think my dad has sepsis", "sepsis"),
    ("my mum has an infection and now she is very confused", "sepsis"),
    ("my husband is diabetic and he is unresponsive", "diabetic_emergency"),
    # when in doubt (anchor makes it live)
    ("What do I do if my baby is choking?", "choking"),
    # written before the rules were tuned on them
    ("help my husband is clutching his chest and sweating buckets", "cardiac"),
    ("URGENT my mother fell and now she can't move her left side and her mouth is drooping", "stroke"),
    ("my 2 year old drank some dishwasher liquid", "overdose_poisoning"),
    ("I've taken 30 of my sertraline tablets", "overdose_poisoning"),
    ("there's blood everywhere and it won't stop", "bleeding"),
    ("I keep thinking about ending it all", "self_harm"),
    ("I don't see the point in living anymore", "self_harm"),
    ("my brother is threatening to kill himself", "self_harm"),
    ("i have a really bad headache that came on suddenly like a thunderclap", "sudden_headache"),
    ("our 5 week old has a temp of 38.2", "infant_fever"),
    ("my grandpa is gasping for air", "breathing"),
    ("my son got stung by a wasp and his face is swelling and he's wheezing", "anaphylaxis"),
    ("my partner is unconcious", "unconscious"),
    ("I'm 12 weeks pregnant and there's a lot of blood and cramping", "pregnancy"),
    ("my husband's blood sugar is low and he is unconscious", "diabetic_emergency"),
    ("grandma is very confused and has a high temperature with a urine infection", "sepsis"),
    ("my son is burning up and has a rash that doesn't fade and a stiff neck", "meningitis"),
    ("no, he is not breathing", "unconscious"),
    ("she isn't conscious", "unconscious"),
    ("my baby has gone floppy and blue", "unconscious"),
    ("Our daughter (7 weeks) has a fever of 38", "infant_fever"),
    ("THROAT CLOSING UP AFTER PEANUTS", "anaphylaxis"),
    ("my friend drank a bottle of vodka and won't wake up", "unconscious"),
]

MUST_NOT_TRIGGER: list[str] = [
    # negation
    "no chest pain",
    "Patient denies chest pain or sweating",
    "I get headaches without shortness of breath",
    "I'm not suicidal, just tired of my back pain",
    "I have never had a seizure",
    "I have chest pain but no sweating or breathlessness, it's worse when I press on my ribs",
    "My dad doesn't have chest pain or shortness of breath anymore",
    "He is not bleeding heavily, it stopped quickly",
    "I don't want to die, I want to know how to treat my asthma",
    "my baby has no fever, she is 6 weeks old",
    # general questions
    "What are the symptoms of a stroke?",
    "how is epilepsy treated",
    "Is face drooping a sign of stroke?",
    "What does a seizure look like?",
    "What are the warning signs of suicide?",
    "What should you do if someone is choking?",
    "Can anxiety cause chest pain and shortness of breath?",
    "What causes difficulty breathing in people with asthma?",
    "What is a normal temperature for a 6 week old baby?",
    "How much paracetamol is an overdose?",
    "Is heavy bleeding in pregnancy dangerous?",
    "What does a meningitis rash look like?",
    "How do you treat a severe burn?",
    "what are the signs of sepsis",
    "first aid for choking children",
    # unrelated mentions
    "Can you explain my chest X-ray results?",
    "My heart rate on the treadmill reaches 160",
    "It was a stroke of luck that the clinic had an appointment",
    "When are my blood test results due?",
    "My blood pressure is 130/85, is that ok?",
    "I have heavy bleeding during my period every month",
    "The cancer is not responding to chemotherapy",
    "I feel burnt out at work",
    "I have a burning sensation when I pee",
    "I got food poisoning from a takeaway last night",
    "my son had a seizure when he was a child, years ago",
    "My mother had a heart attack in 2015 and takes aspirin",
    "I cut myself shaving this morning, it stopped bleeding",
    "I can't breathe through my nose because of a cold",
    "My fever has lasted for 2 weeks, what could it be?",
    "my dad is in prison and needs his insulin",
    "I'd like to know more about stroke rehabilitation after my mum's stroke last year",
    "How do I use my epilepsy medication?",
    "my back seized up after lifting boxes",
    "the fitting room at the orthotics clinic",
    # written before the rules were tuned on them
    "What are the signs of a heart attack in women?",
    "How long does it take to recover from a stroke?",
    "I had chest pain last week, but it's gone now. Should I still see my GP?",
    "My throat is sore and swollen glands",
    "My son had febrile seizures as a toddler, will they come back?",
    "I've been short of breath when climbing stairs for months",
    "Is suicide more common in men?",
    "my grandson has a temperature of 38 and he is 4 years old",
    "I have a stiff neck from sleeping badly",
    "My mum has dementia and gets confused in the evening",
    "my wife hit her head on a cupboard, she's fine, no vomiting or drowsiness",
    "Patient presents with no fever, no neck stiffness and no rash.",
    "I'm pregnant and have mild cramps, is that normal?",
    "My baby is 9 months old and has a temperature of 38",
    "I have no thoughts of harming myself",
    "he is breathing normally now and talking",
    "My heart attack risk score is 12%, what does that mean?",
    "The baby was born at 38 weeks",
    "The bleeding from my tooth extraction has stopped",
    "",
    "   ",
]


@pytest.mark.parametrize(("text", "category"), MUST_TRIGGER)
def test_red_flags_trigger(text: str, category: str) -> None:
    assessment = assess_emergency(text)
    assert assessment.emergency, text
    assert category in assessment.categories, (text, assessment.categories)
    assert assessment.notice


@pytest.mark.parametrize("text", MUST_NOT_TRIGGER)
def test_no_red_flag(text: str) -> None:
    assessment = assess_emergency(text)
    assert assessment == EmergencyAssessment(emergency=False), (text, assessment.categories)


def test_table_size() -> None:
    assert len(MUST_TRIGGER) >= 40
    assert len(MUST_NOT_TRIGGER) >= 40


def test_notice_names_the_configured_number_and_the_limits() -> None:
    assessment = assess_emergency("he's not breathing", emergency_number="999")
    assert assessment.notice is not None
    assert "Call 999 now" in assessment.notice
    assert "112" not in assessment.notice
    assert "medchat cannot help in an emergency" in assessment.notice
    assert "CPR" in assessment.notice


def test_self_harm_notice_offers_a_crisis_line_without_other_numbers() -> None:
    notice = assess_emergency("I want to end my life", emergency_number="911").notice
    assert notice is not None
    assert "crisis line" in notice
    digits = {token for token in notice.replace(",", " ").split() if any(c.isdigit() for c in token)}
    assert digits <= {"911", "911,"}


def test_several_categories_are_reported_in_rule_order() -> None:
    assessment = assess_emergency("My husband collapsed after taking too many pills and isn't breathing")
    assert assessment.categories[0] == "unconscious"
    assert "overdose_poisoning" in assessment.categories
    assert assessment.notice is not None
    assert assessment.notice.count("medchat cannot help") == 1


def test_every_category_has_first_steps() -> None:
    assert set(emergency_categories()) == set(FIRST_STEPS)


def test_a_red_flag_inside_a_long_message_is_found() -> None:
    filler = "I have been reading about diet and exercise for my cholesterol. " * 30
    assert assess_emergency(filler + "Right now my dad has crushing chest pain and sweating.").emergency
    assert not assess_emergency(filler).emergency


def test_a_check_is_fast() -> None:
    text = ("My mother has type 2 diabetes and high blood pressure and takes metformin. " * 27)[:2000]
    assess_emergency(text)
    started = time.perf_counter()
    for _ in range(50):
        assess_emergency(text)
    assert (time.perf_counter() - started) / 50 < 0.01  # generous bound for slow CI; bench/ measures
