"""95% confidence intervals for every score: Wilson for right/wrong scores, the bootstrap for the rest
(percentile intervals, seeded, so a rerun gives the same numbers)."""
from __future__ import annotations

import math
import random
from typing import Any, Callable, Optional, Sequence

Z95 = 1.959963984540054
RESAMPLES = 1000


def is_binary(scores: Sequence[float]) -> bool:
    return all(s in (0, 1, 0.0, 1.0, True, False) for s in scores)


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion; honest at 0% and 100%, unlike mean +- 1.96 standard errors."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo, hi = (0.0 if successes == 0 else max(0.0, centre - half)), (1.0 if successes == n else min(1.0, centre + half))
    return (lo, hi)


def bootstrap(values: Sequence[Any], statistic: Callable[[list[Any]], float], seed: int = 0,
              resamples: int = RESAMPLES) -> tuple[float, float]:
    """Percentile interval of `statistic` over resamples of the items (with replacement)."""
    n = len(values)
    if n == 0:
        return (math.nan, math.nan)
    rng = random.Random(seed)
    stats = sorted(statistic([values[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples))
    lo, hi = stats[int(0.025 * (resamples - 1))], stats[int(math.ceil(0.975 * (resamples - 1)))]
    return (float(lo), float(hi))


def mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else math.nan


def mean_ci(scores: Sequence[float], seed: int = 0, binary: Optional[bool] = None) -> tuple[tuple[float, float], str]:
    """(interval, method) for the mean of per-item scores: Wilson for right/wrong scores, else the bootstrap."""
    scores = [float(s) for s in scores]
    if is_binary(scores) if binary is None else binary:
        return wilson(sum(scores), len(scores)), "wilson"
    return bootstrap(scores, mean, seed), "bootstrap"


def score_entry(scores: Sequence[float], value: Optional[float] = None, ci: Optional[tuple[float, float]] = None,
                method: Optional[str] = None, seed: int = 0, binary: Optional[bool] = None) -> dict[str, Any]:
    """One metric's report entry: value, 95% interval, its method and the item count."""
    if ci is None:
        ci, method = mean_ci(scores, seed, binary)
    value = mean(scores) if value is None else value
    return {"value": _round(value), "ci95": [_round(ci[0]), _round(ci[1])], "ci_method": method, "n": len(scores)}


def paired_difference(a: Sequence[float], b: Sequence[float], seed: int = 0) -> dict[str, Any]:
    """Mean of b - a over paired items with a bootstrap interval (for `eval diff`)."""
    diffs = [float(y) - float(x) for x, y in zip(a, b)]
    lo, hi = bootstrap(diffs, mean, seed)
    return {"value": _round(mean(diffs)), "ci95": [_round(lo), _round(hi)], "ci_method": "paired bootstrap",
            "n": len(diffs)}


def _round(x: float) -> Optional[float]:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 6)
