"""Prompts: how an item is asked in generation mode (chat messages through the model's chat template) and in
log-likelihood mode (a plain-text context and one continuation per option, lm-evaluation-harness's
convention: 'Question: ...\\nAnswer:' + ' option'). Few-shot examples come first, drawn per item (seeded) from
the benchmark's few-shot split or, for a local file, from its other rows."""
from __future__ import annotations

import random
from typing import Any, Optional

from .extract import LETTERS
from .items import EvalItem

MCQ_INSTRUCTION = "Answer with the option's letter from the given choices directly."


def mcq_text(item: EvalItem) -> str:
    if item.meta.get("formatted"):
        return item.question
    listed = "\n".join(f"{LETTERS[j]}. {c}" for j, c in enumerate(item.choices or []))
    return f"{item.question}\n{listed}\n{MCQ_INSTRUCTION}"


def question_text(item: EvalItem, eval_type: str, suffix: str = "") -> str:
    if eval_type == "mcq":
        return mcq_text(item)
    return item.question + suffix


def answer_text(item: EvalItem, eval_type: str) -> str:
    """What a few-shot example shows as its answer."""
    if eval_type == "mcq" and item.answer_index is not None:
        return LETTERS[item.answer_index]
    if eval_type == "math" and item.meta.get("solution"):
        return str(item.meta["solution"])
    return item.references[0] if item.references else ""


def fewshot_examples(item: EvalItem, pool: list[EvalItem], k: int, seed: int) -> list[EvalItem]:
    if k <= 0 or not pool:
        return []
    others = [p for p in pool if p.id != item.id and not any(p.media.values())]
    rng = random.Random(f"{seed}:{item.id}")
    return rng.sample(others, min(k, len(others)))


def generation_messages(item: EvalItem, eval_type: str, shots: list[EvalItem], suffix: str = "",
                        system: Optional[str] = None) -> list[dict[str, Any]]:
    """The conversation the model answers: system, few-shot turns, earlier turns of the item, its question."""
    history = [dict(m) for m in item.messages[:-1]]
    head = [history.pop(0)] if history and history[0]["role"] == "system" else (
        [{"role": "system", "content": system}] if system else [])
    examples: list[dict[str, Any]] = []
    for shot in shots:
        examples += [{"role": "user", "content": question_text(shot, eval_type, suffix)},
                     {"role": "assistant", "content": answer_text(shot, eval_type)}]
    last = dict(item.messages[-1])
    last["content"] = question_text(item, eval_type, suffix)
    return head + examples + history + [last]


def loglik_context(item: EvalItem, style: str, shots: list[EvalItem]) -> str:
    """Plain-text context for scoring options by log-likelihood."""
    def block(example: EvalItem) -> str:
        return example.question if style == "completion" else f"Question: {example.question}\nAnswer:"

    prefix = "".join(f"{block(s)} {(s.choices or [''])[s.answer_index or 0]}\n\n" for s in shots)
    return prefix + block(item)


def loglik_continuations(item: EvalItem) -> list[str]:
    return [f" {choice}" for choice in item.choices or []]
