"""The data report: every row read is either kept or dropped with a reason and a place (file:line)."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

MAX_LISTED = 10
MAX_STORED = 1000   # problem messages kept verbatim; every drop is still counted


@dataclass
class DataReport:
    """What happened to every row: kept, or dropped with a reason and where."""

    read: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    trained: list[int] = field(default_factory=list)
    truncated: int = 0              # rows cut to --max_length (left/right)
    over_max_length: int = 0        # rows longer than --max_length, whatever the strategy did with them
    max_length: Optional[int] = None
    encoded: bool = False           # token statistics exist (a template encoded the rows)

    def drop(self, reason: str, message: str) -> None:
        self.dropped[reason] += 1
        if len(self.problems) < MAX_STORED:
            self.problems.append(message)

    @property
    def n_dropped(self) -> int:
        return sum(self.dropped.values())

    def summary(self) -> str:
        lines = [f"rows read {self.read}, kept {self.kept}, dropped {self.n_dropped}"]
        for reason, count in self.dropped.most_common():
            lines.append(f"  dropped {count}: {reason}")
        if self.encoded:
            if self.max_length:
                lines.append(f"rows longer than --max_length {self.max_length}: {self.over_max_length}"
                             + (f" (cut to fit: {self.truncated})" if self.truncated else ""))
            lines += self._token_lines()
        return "\n".join(lines)

    def _token_lines(self) -> list[str]:
        if not self.lengths:
            return []
        ls, tr = sorted(self.lengths), sorted(self.trained)
        zero = self.dropped.get(ZERO_TRAINED, 0)
        return [f"tokens per row: min {ls[0]}, median {ls[len(ls) // 2]}, mean {sum(ls) / len(ls):.1f}, "
                f"max {ls[-1]}; in all {sum(ls)}",
                f"trained tokens per row: min {tr[0]}, median {tr[len(tr) // 2]}, max {tr[-1]}; in all {sum(tr)} "
                f"({100 * sum(tr) / max(1, sum(ls)):.1f}% of tokens); rows with zero trained tokens: {zero}",
                "token-length histogram:", *histogram(ls)]

    def problem_lines(self, limit: int = MAX_LISTED) -> str:
        more = self.n_dropped - min(limit, len(self.problems))
        listed = self.problems[:limit]
        return "\n  ".join(listed) + (f"\n  ... and {more} more (all in the report)" if more > 0 else "")

    def to_dict(self) -> dict[str, Any]:
        return {"read": self.read, "kept": self.kept, "dropped": dict(self.dropped), "problems": self.problems,
                "lengths": self.lengths, "trained": self.trained, "truncated": self.truncated,
                "over_max_length": self.over_max_length, "max_length": self.max_length, "encoded": self.encoded}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DataReport":
        data = dict(data)
        data["dropped"] = Counter(data.get("dropped", {}))
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False) + "\n")


ZERO_TRAINED = "no trained (assistant) tokens left"
TOO_LONG = "longer than --max_length (truncation_strategy delete)"


def histogram(values: list[int], bins: int = 8, width: int = 40) -> list[str]:
    """A text histogram of token lengths in equal-width bins."""
    lo, hi = min(values), max(values)
    step = max(1, -(-(hi - lo + 1) // bins))
    counts = Counter((v - lo) // step for v in values)
    top = max(counts.values())
    lines = []
    for b in range(-(-(hi - lo + 1) // step)):
        n = counts.get(b, 0)
        start, end = lo + b * step, min(hi, lo + (b + 1) * step - 1)
        lines.append(f"  {start:>7}-{end:<7} {n:>8} {'#' * max(1 if n else 0, round(width * n / top))}")
    return lines
