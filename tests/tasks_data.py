"""Generated data of the seq_cls / embedding / reranker tests (nothing downloaded): a hidden-rule classification
set (a sentiment word decides the label; neutral sentences are the other class) and a retrieval set (questions
about a person, answered in other words)."""
from __future__ import annotations

import random

SENTIMENT = ["wonderful", "excellent", "delightful", "superb", "fantastic", "lovely", "brilliant", "terrific",
             "terrible", "awful", "horrible", "dreadful", "miserable", "disgusting", "lousy", "pathetic"]
NEUTRAL = ["long", "short", "on Tuesday", "in the city", "at noon", "blue", "scheduled", "indoors", "new",
           "finished", "quiet", "crowded", "open", "early", "late", "paid"]
NOUNS = ["movie", "dinner", "trip", "book", "concert", "hotel", "game", "class", "party", "show", "meeting",
         "flight", "lecture", "museum", "album", "garden"]
NAMES = ["Alice", "Bruno", "Chen", "Dmitri", "Elena", "Farah", "Gustav", "Hiro", "Ingrid", "Jamal", "Kofi",
         "Lucia", "Mateo", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Samir", "Tomas", "Uma", "Viktor",
         "Wanda", "Xavier", "Yara", "Zoltan", "Amara", "Boris", "Carmen", "Diego", "Emil", "Fatima", "Goran",
         "Hana", "Ivan", "Julia", "Kenji", "Leila", "Marco", "Nina"]
PLACES = ["Paris", "Lima", "Oslo", "Cairo", "Tokyo", "Quito", "Delhi", "Rome", "Seoul", "Dakar", "Perth",
          "Riga", "Sofia", "Hanoi", "Accra", "Bogota", "Dublin", "Havana", "Kyiv", "Lagos"]
JOBS = ["a baker", "a pilot", "a nurse", "a painter", "a farmer", "a judge", "a chemist", "a tailor",
        "a plumber", "a poet"]


def classification_rows(n: int, seed: int) -> list[dict]:
    """label 1: the sentence holds a sentiment word; label 0: only neutral words."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.randint(0, 1)
        word = rng.choice(SENTIMENT if label else NEUTRAL)
        rows.append({"text": f"The {rng.choice(NOUNS)} was {word}.", "label": label})
    return rows


def retrieval_rows(names: list[str], seed: int, negatives: int = 2) -> list[dict]:
    """One question per person; the positive answers it about that person, the negatives about others."""
    rng = random.Random(seed)
    facts = {name: (rng.choice(PLACES), rng.choice(JOBS)) for name in names}

    def answer(name: str) -> str:
        place, job = facts[name]
        return f"{name} works as {job} and has a home in {place}."

    rows = []
    for name in names:
        others = rng.sample([n for n in names if n != name], negatives)
        rows.append({"query": f"Tell me about {name}.", "positive": [answer(name)],
                     "negative": [answer(o) for o in others]})
    return rows


JOB_DEEDS = {"a baker": "bakes bread", "a pilot": "flies planes", "a nurse": "looks after the sick",
             "a painter": "paints pictures", "a farmer": "grows crops", "a judge": "decides court cases",
             "a chemist": "mixes compounds in a lab", "a tailor": "sews suits", "a plumber": "fixes leaking pipes",
             "a poet": "writes verses"}


def paraphrase_rows(names: list[str], seed: int, places: list[str], negatives: int = 2) -> list[dict]:
    """Questions that describe a person's work in other words ("Who bakes bread in Lima?") and answers that name
    the person and the job ("Alice works as a baker and has a home in Lima."): a retrieval set where the query and
    its answer share the place only, so matching needs the paraphrase learned from other people's rows. Each
    (job, place) pair is used once, so the question has one right answer; with few places, several people share
    one and the place alone does not find the answer."""
    rng = random.Random(seed)
    pairs = rng.sample([(job, place) for job in JOB_DEEDS for place in places], len(names))
    facts = dict(zip(names, pairs))

    def answer(name: str) -> str:
        job, place = facts[name]
        return f"{name} works as {job} and has a home in {place}."

    rows = []
    for name in names:
        job, place = facts[name]
        others = rng.sample([n for n in names if n != name], negatives)
        rows.append({"query": f"Who {JOB_DEEDS[job]} in {place}?", "positive": [answer(name)],
                     "negative": [answer(o) for o in others]})
    return rows
