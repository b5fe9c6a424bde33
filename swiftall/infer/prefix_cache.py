"""Prompt-prefix reuse for the scheduler's prefill: prompts that start with the same tokens (the chat template's
system prompt, an evaluation's instruction and few-shot examples) compute that prefix once.

When a group of prompts is prefilled together and they share at least `MIN_PREFIX` leading tokens, the shared part
is run once (one row) and its keys/values are kept; that group, and later ones starting with the same tokens (the
refills of a running evaluation), prefill only what follows it, on top of a copy of the kept rows. A causal model's
keys/values for the first k tokens do not depend on what comes after, so any leading part of the kept prefix is
reusable. The kept prefix is per adapter (a LoRA changes the keys/values); one is kept at a time, and only while
the batch runs: the scheduler drops it when the batch empties, since the weights may change in between.

In an evaluation the prompts' shared part is most of each prompt (the system prompt and the instruction, with only
the item's own text after it), so prefill -- the larger part of a short-answer evaluation's compute -- shrinks to
the items' own tokens (benchmarks/bench_eval.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

MIN_PREFIX = 8   # shorter shared prefixes are not worth a forward of their own


@dataclass
class PrefixEntry:
    adapter: Optional[str]
    ids: list[int]
    layers: list[tuple[Any, Any]]   # per layer (keys, values), one row: [1, heads, len(ids), head_dim]


def common_length(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class PrefixCache:
    def __init__(self) -> None:
        self.entry: Optional[PrefixEntry] = None
        self.reused_tokens = 0    # prompt tokens not prefilled thanks to the kept prefix (tests, benchmarks)

    def shared(self, prompts: list[list[int]], adapter: Optional[str], forward: Callable[[list[int]], Any]
               ) -> Optional[tuple[int, list[tuple[Any, Any]]]]:
        """(k, per layer (keys, values) of the first k tokens) that every prompt starts with, or None. Each prompt
        keeps at least one token of its own (its last token's logits come from the prefill). `forward(ids)` runs a
        prefix alone and returns its cache; it is called when the group shares more than the kept prefix gives."""
        cap = min(len(p) for p in prompts) - 1
        entry = self.entry
        have = 0
        if entry is not None and entry.adapter == adapter:
            have = min(cap, min(common_length(p, entry.ids) for p in prompts))
        group = min(cap, min(common_length(p, prompts[0]) for p in prompts[1:])) if len(prompts) > 1 else 0
        computed = 0
        if group >= max(MIN_PREFIX, have + MIN_PREFIX):
            cache = forward(prompts[0][:group])
            computed = group
            self.entry = entry = PrefixEntry(adapter, list(prompts[0][:group]),
                                             [(layer.keys.clone(), layer.values.clone()) for layer in cache.layers])
            have = group
        if have < MIN_PREFIX or entry is None:
            return None
        self.reused_tokens += have * len(prompts) - computed
        return have, [(k[..., :have, :], v[..., :have, :]) for k, v in entry.layers]

    def clear(self) -> None:
        self.entry = None
