"""The knowledge corpus asks facts in the forms of `contracts.forms`; old preset hashes hold."""

from __future__ import annotations

from contracts.forms import spell
from contracts.types import FactText
from editor.knowledge.corpus import PassageSampler
from editor.knowledge.presets import get_preset

FACTS = [
    FactText("Ada Byron", "born", "London", ("{} was born in",), "Where was {} born?"),
    FactText("Bob Stone", "born", "Paris", ("{} was born in",), "Where was {} born?"),
    FactText("Cy Twombly", "born", "Rome", ("{} was born in",), "Where was {} born?"),
    FactText("Dee Dee", "born", "Oslo", ("{} was born in",), None),
]


def test_form_rows_state_the_right_answer():
    sampler = PassageSampler(FACTS, seed=1, form_share=1.0)
    rows = sampler.batch(400)
    answers = {f.subject: f.object for f in FACTS}
    seen = set()
    for row in rows:
        subject = next(s for s in answers if s in row)
        obj = answers[subject]
        if row.startswith("Question:") and " Options: " in row:
            seen.add("mc")
            letter = row.rsplit(" ", 1)[1]
            assert f"{letter}. {obj}" in row
        elif row.startswith("True or false:"):
            seen.add("tf")
            stated = row.split(" was born in ", 1)[1].split(".", 1)[0]
            assert row.endswith(" True") == (stated == obj)
        elif "Spell the answer" in row:
            seen.add("spelled")
            assert row.endswith(" " + spell(obj))
        else:
            seen.add("question")
            assert row.endswith(f"Answer: {obj}")
            if subject == "Dee Dee":
                assert row.startswith("Dee Dee was born in what?")
    assert seen == {"mc", "tf", "spelled", "question"}


def test_existing_presets_keep_their_hash_fields():
    assert "form_share" not in get_preset("small").to_dict()
    assert get_preset("small-forms").to_dict()["form_share"] > 0
