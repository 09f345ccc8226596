"""A patient leaflet written for the tests: plain text, so no headings reach the chunker.

It defines two terms the embedding model's vocabulary does not hold whole ("hyperuricaemia", "tophi"):
with dense similarity alone, questions about them found nothing.
"""

GOUT_LEAFLET_NAME = "gout-leaflet.txt"

GOUT_LEAFLET = """Gout: an overview
Gout is a type of arthritis that causes sudden, severe attacks of pain, swelling and redness in a joint.
It most often starts in the joint at the base of the big toe, but it can affect the ankles, knees,
elbows, wrists and fingers. An attack usually builds over a few hours and settles within one or two weeks.

What causes gout
Gout happens when urate, a waste product the body makes when it breaks down purines, builds up in the
blood. Having too much urate in the blood is called hyperuricaemia. Over time, hyperuricaemia lets
sharp urate crystals form in and around the joints, and the crystals set off inflammation.
Being overweight, drinking alcohol (especially beer), eating a lot of red meat or seafood, some
water tablets and kidney disease all raise the chance of hyperuricaemia.

Symptoms
During a flare the joint is hot, swollen and so tender that even a bed sheet touching it hurts.
Some people also have a mild fever and feel generally unwell. Between flares most people feel fine.
After years of untreated gout, urate crystals can collect under the skin as small, firm, painless
lumps called tophi. Tophi are most common on the ears, fingers, elbows and around the big toe, and
they can damage the joint next to them.

Treating a flare
A flare is treated as early as possible with an anti-inflammatory painkiller such as naproxen, or
with colchicine; a steroid tablet or injection is an option when these are not suitable.
Rest the joint, raise it and keep it cool with an ice pack wrapped in a towel for up to 20 minutes.
Your doctor will choose a medicine that fits your other conditions and medicines.

Preventing flares
Allopurinol or febuxostat, taken every day, lower urate in the blood and prevent new flares and
tophi. They are started at a low dose and the dose is raised until a blood test shows the urate
level is low enough. Drinking plenty of water, losing weight and cutting down on alcohol also help.
"""


def protocol_leaflet(paragraphs: int) -> bytes:
    """A plain-text protocol of ``paragraphs`` distinct paragraphs (about 1.25 passages each): long enough that
    its ingestion takes a few seconds, for tests that stop a process while it runs."""
    sections = [
        f"Section {number}. Patients on regimen {number} should have their blood pressure checked every "
        f"{number % 12 + 1} weeks; readings above {120 + number % 60}/{80 + number % 20} mmHg are reviewed "
        f"by the team, and dose {number} of the protocol is adjusted when kidney function changes. " * 6
        for number in range(paragraphs)
    ]
    return "\n\n".join(sections).encode()
