"""Small, learnable alignment data for the rlhf tests (written to tmp folders; nothing downloads)."""
from __future__ import annotations

import random

FACTS = [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Egypt", "Cairo"),
         ("Kenya", "Nairobi"), ("Peru", "Lima"), ("Chile", "Santiago"), ("Cuba", "Havana"), ("Iran", "Tehran"),
         ("Iraq", "Baghdad"), ("Greece", "Athens"), ("Norway", "Oslo"), ("Sweden", "Stockholm"),
         ("Poland", "Warsaw"), ("Austria", "Vienna"), ("Portugal", "Lisbon"), ("Ireland", "Dublin"),
         ("Hungary", "Budapest"), ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Belgium", "Brussels"),
         ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"), ("Germany", "Berlin"), ("Russia", "Moscow"),
         ("China", "Beijing"), ("India", "New Delhi"), ("Mexico", "Mexico City"), ("Canada", "Ottawa")]
RUDE = ["Go away, I will not tell you.", "Stop asking me things.", "Figure it out yourself.",
        "That is a boring question.", "I refuse to answer that."]


def preference_rows(seed: int = 0) -> list[dict]:
    """Chosen: a helpful answer; rejected: a rude refusal. The preference generalises to unseen countries."""
    rng = random.Random(seed)
    rows = []
    for country, capital in FACTS:
        rows.append({"prompt": f"What is the capital of {country}?",
                     "chosen": f"The capital of {country} is {capital}.", "rejected": rng.choice(RUDE)})
    return rows


def addition_rows(count: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        rows.append({"prompt": f"What is {a} + {b}? Answer with just the number.", "solution": str(a + b)})
    return rows


def concise_rows() -> list[dict]:
    """Chosen: the bare answer; rejected: the full sentence the base model prefers (so held-out pairs start with
    the rejected answer ahead and a reference-free reward accuracy near 0)."""
    return [{"prompt": f"What is the capital of {country}?", "chosen": f"{capital}.",
             "rejected": f"The capital of {country} is {capital}."} for country, capital in FACTS]
