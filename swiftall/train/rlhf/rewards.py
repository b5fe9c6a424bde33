"""Reward functions for GRPO and PPO: built-ins, user functions from --plugin files, and reward models.

Every reward follows TRL's signature, `fn(prompts, completions, **columns) -> list[float | None]`: completions are
texts or [{"role": "assistant", "content": ...}] lists, and every extra dataset column (e.g. `solution`) arrives as a
keyword list aligned with the completions.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Optional

from ...utils.errors import ConfigError, DataError
from ...utils.plugins import load_plugins

RewardFn = Callable[..., list]
REWARDS: dict[str, RewardFn] = {}
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def register_reward(name: str, fn: Optional[RewardFn] = None) -> Any:
    """Register a reward function under a name usable in --reward_funcs (a decorator, or a call with fn)."""
    def add(func: RewardFn) -> RewardFn:
        if name in REWARDS and REWARDS[name] is not func:
            raise ConfigError(f"reward function '{name}' is already registered")
        REWARDS[name] = func
        return func

    return add(fn) if fn is not None else add


def text_of(completion: Any) -> str:
    if isinstance(completion, list):
        return "".join(m.get("content") or "" for m in completion if isinstance(m, dict))
    return str(completion)


# ---- built-ins ---------------------------------------------------------------------------------
def extract_answer(text: str) -> str:
    """The answer part of a completion: <answer>...</answer>, else \\boxed{...}, else the last number, else all."""
    tagged = re.findall(r"<answer>(.*?)</answer>", text, re.DOTALL)
    if tagged:
        return tagged[-1].strip()
    boxed = re.findall(r"\\boxed\{([^{}]*)\}", text)
    if boxed:
        return boxed[-1].strip()
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else text.strip()


def same_answer(answer: str, solution: Any) -> bool:
    target = extract_answer(str(solution))
    a, b = answer.replace(",", "").strip(), target.replace(",", "").strip()
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9)
    except ValueError:
        return a.lower() == b.lower()


def accuracy(prompts: list, completions: list, solution: Optional[list] = None, **_: Any) -> list[float]:
    """1.0 when the completion's answer equals the row's `solution` (numbers compared as numbers), else 0.0."""
    if solution is None:
        raise DataError("the 'accuracy' reward needs a 'solution' column in every --dataset row (the expected "
                        "answer)")
    return [1.0 if same_answer(extract_answer(text_of(c)), s) else 0.0 for c, s in zip(completions, solution)]


def make_format(pattern: str) -> RewardFn:
    compiled = re.compile(pattern, re.DOTALL)

    def format(prompts: list, completions: list, **_: Any) -> list[float]:  # noqa: A001 - the reward's name
        """1.0 when the whole completion matches --format_pattern."""
        return [1.0 if compiled.fullmatch(text_of(c).strip()) else 0.0 for c in completions]

    return format


def make_length(max_tokens: int) -> RewardFn:
    """DAPO's soft overlong penalty: 0 up to 3/4 of --max_completion_length, then falling linearly to -1."""
    cache = max(1, max_tokens // 4)

    def length(prompts: list, completions: list, completion_ids: Optional[list] = None, **_: Any) -> list[float]:
        sizes = [len(ids) for ids in completion_ids] if completion_ids is not None else \
            [len(text_of(c).split()) for c in completions]
        out = []
        for n in sizes:
            if n <= max_tokens - cache:
                out.append(0.0)
            elif n <= max_tokens:
                out.append((max_tokens - cache - n) / cache)
            else:
                out.append(-1.0)
        return out

    return length


def repetition(prompts: list, completions: list, ngram: int = 3, **_: Any) -> list[float]:
    """Minus the fraction of repeated word n-grams: 0 for no repetition, towards -1 for a loop."""
    out = []
    for c in completions:
        words = text_of(c).split()
        grams = [tuple(words[i:i + ngram]) for i in range(len(words) - ngram + 1)]
        out.append(0.0 if not grams else -(1.0 - len(set(grams)) / len(grams)))
    return out


def builtin(name: str, cfg: Any) -> Optional[RewardFn]:
    if name == "accuracy":
        return accuracy
    if name == "format":
        return make_format(cfg.format_pattern)
    if name == "length":
        return make_length(cfg.max_completion_length)
    if name == "repetition":
        return repetition
    return None


# ---- plugins -----------------------------------------------------------------------------------
def register_plugin_rewards(paths: list[str]) -> None:
    """Rewards from --plugin files (run once per process by the one plugin loader): those registered with
    register_reward, and a module-level `reward_funcs = {name: fn}`."""
    for item, module in zip(paths, load_plugins(paths)):
        for name, fn in (getattr(module, "reward_funcs", None) or {}).items():
            if not callable(fn):
                raise ConfigError(f"--plugin {item}: reward_funcs['{name}'] is not a function")
            register_reward(name, fn)  # the same function again is no duplicate


def resolve_rewards(cfg: Any) -> list[RewardFn]:
    """--reward_funcs names -> functions (built-ins first, then --plugin registrations), named for the logs."""
    register_plugin_rewards(cfg.plugin)
    funcs = []
    for name in cfg.reward_funcs:
        fn = builtin(name, cfg) or REWARDS.get(name)
        if fn is None:
            known = ["accuracy", "format", "length", "repetition", *REWARDS]
            raise ConfigError(f"--reward_funcs {name}: unknown reward; known: {', '.join(known)} (register your own "
                              "in a --plugin file)")
        funcs.append(_named(fn, name))
    return funcs


COLUMNS_NEEDED = {"accuracy": ("solution",)}
FROM_TRAINER = {"prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric"}


def columns_needed(name: str, fn: RewardFn) -> tuple[str, ...]:
    """Dataset columns a reward cannot do without: the built-ins' (COLUMNS_NEEDED), or a plugin function's
    parameters that have no default (other than what the trainer passes)."""
    if name in COLUMNS_NEEDED:
        return COLUMNS_NEEDED[name]
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return ()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(p.name for p in params if p.kind in kinds and p.default is p.empty and p.name not in FROM_TRAINER)


def check_reward_columns(cfg: Any, rows: list[dict]) -> None:
    """Before the model loads: every --reward_funcs reward is known and finds its columns in every row (the
    reward would otherwise fail at the first training step)."""
    resolve_rewards(cfg)  # unknown names stop here
    for name in cfg.reward_funcs:
        fn = builtin(name, cfg) or REWARDS[name]
        for column in columns_needed(name, fn):
            missing = [r for r in rows if r.get(column) is None]
            if missing:
                prompt = text_of(missing[0].get("prompt") or "")[:60]
                raise DataError(f"--reward_funcs {name} needs a '{column}' column in every --dataset row; "
                                f"{len(missing)} of {len(rows)} rows lack it (e.g. the row whose prompt is "
                                f"{prompt!r}); add the column or drop the reward")


def _named(fn: RewardFn, name: str) -> RewardFn:
    def reward(*args: Any, **kwargs: Any) -> list:
        return fn(*args, **kwargs)

    reward.__name__ = name
    return reward


class RewardModelScorer:
    """A sequence-classification reward model as a reward function: scores prompt + completion as rendered by
    the reward model's own chat template."""

    def __init__(self, model: Any, tokenizer: Any, name: str = "reward_model", max_length: int = 2048):
        self.model, self.tokenizer, self.max_length = model.eval(), tokenizer, max_length
        self.__name__ = name

    def __call__(self, prompts: list, completions: list, **_: Any) -> list[float]:
        import torch

        texts = []
        for prompt, completion in zip(prompts, completions):
            if isinstance(prompt, list):
                messages = prompt + [{"role": "assistant", "content": text_of(completion)}]
                texts.append(self.tokenizer.apply_chat_template(messages, tokenize=False))
            else:
                texts.append(str(prompt) + text_of(completion))
        side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "right"
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length,
                               add_special_tokens=False)
        self.tokenizer.padding_side = side
        device = next(self.model.parameters()).device
        with torch.no_grad():
            logits = self.model(**{k: v.to(device) for k, v in batch.items()}).logits
        return logits[:, 0].float().tolist()


def combine(funcs: list[RewardFn], weights: list[float], prompts: list, completions: list,
            columns: dict[str, list]) -> tuple[list[float], dict[str, float]]:
    """Weighted sum of several rewards (None counts as 0) and each one's mean, for PPO."""
    total = [0.0] * len(completions)
    means = {}
    for fn, w in zip(funcs, weights):
        values = fn(prompts, completions, **columns)
        values = [0.0 if v is None else float(v) for v in values]
        means[f"rewards/{fn.__name__}"] = sum(values) / max(len(values), 1)
        total = [t + w * v for t, v in zip(total, values)]
    return total, means
