"""Answer extraction: reasoning text stripped, text normalised, the final number or the chosen letter found.

Everything here is pure Python, so scores are reproducible and explainable item by item: the predictions file
keeps the raw answer beside what was extracted from it."""
from __future__ import annotations

import re
import string
from typing import Optional, Sequence

THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
ARTICLES = re.compile(r"\b(a|an|the)\b", re.IGNORECASE)
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
BOXED = re.compile(r"\\boxed\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def strip_think(text: str) -> str:
    """Drop `<think>...</think>` blocks (an unclosed one runs to the end) and a stray closing tag's prefix."""
    text = THINK.sub("", text or "")
    if "</think>" in text.lower():  # templates that open the block in the prompt leave only the closing tag
        text = text[text.lower().rindex("</think>") + len("</think>"):]
    return text.strip()


def normalize(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = (text or "").lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _clean_number(token: str) -> Optional[str]:
    token = token.replace(",", "").rstrip(".")
    try:
        value = float(token)
    except ValueError:
        return None
    return str(int(value)) if value == int(value) else repr(value)


def extract_number(text: str) -> Optional[str]:
    """The final answer of a math solution: after '####', inside \\boxed{}, after 'answer is', or the last
    number in the text. Returned canonical ('1,000.0' -> '1000')."""
    text = text or ""
    for pattern in (r"####\s*(.+)", r"answer is[:\s]*\$?(.+)"):
        match = re.search(pattern, text, re.IGNORECASE)
        if match:
            numbers = NUMBER.findall(match.group(1))
            if numbers:
                return _clean_number(numbers[0])
    boxed = BOXED.findall(text)
    if boxed and NUMBER.findall(boxed[-1]):
        return _clean_number(NUMBER.findall(boxed[-1])[0])
    numbers = NUMBER.findall(text)
    return _clean_number(numbers[-1]) if numbers else None


def extract_choice(text: str, choices: Sequence[str]) -> Optional[int]:
    """The index of the option an answer picks: a letter ('B', '(B)', 'Answer: B', 'B. Paris') or the text of
    exactly one option."""
    letters = LETTERS[:len(choices)]
    text = (text or "").strip()
    patterns = [rf"answer(?: is)?\s*[:：]?\s*\(?([{letters}])\)?\b", rf"^\(?([{letters}])\)?(?:[.):\s]|$)",
                rf"\b([{letters}])[.)]\s", rf"^\s*([{letters}])\s*$"]
    for pattern in patterns:
        match = re.search(pattern, text, re.IGNORECASE if pattern.startswith("answer") else 0)
        if match:
            return letters.index(match.group(1).upper())
    said = normalize(text)
    hits = [i for i, c in enumerate(choices) if normalize(str(c)) and normalize(str(c)) in said]
    if len(hits) == 1:
        return hits[0]
    bare = re.findall(rf"\b([{letters}])\b", text)
    return letters.index(bare[0]) if len(set(bare)) == 1 else None


def extract_yes_no(text: str) -> Optional[str]:
    """'yes' or 'no' from the start of an answer (POPE's convention), else the first of them in the text."""
    words = normalize(text).split()
    for word in words:
        if word in ("yes", "no"):
            return word
    return None
