"""swiftall template show: print encoded rows with the trained (loss-bearing) tokens marked, so a user sees what
the model learns before training. Colour on a terminal; [[brackets]] otherwise (or with --color false)."""
from __future__ import annotations

import json
import sys
from typing import Any, Iterator

from ..config import TemplateShowConfig
from ..data.build import iter_canonical
from ..data.encode import encode_row
from ..data.registry import load_extensions
from ..data.report import DataReport
from ..data.sources import resolve_sources
from ..templates import IGNORE
from ..utils import env
from ..utils.errors import ConfigError
from ..utils.log import get_logger
from ..utils.plugins import load_plugins
from .common import model_info

logger = get_logger(__name__)
GREEN, RESET = "\x1b[1;32m", "\x1b[0m"
USAGE = "usage: swiftall template show --model M --dataset D [--rows 3]"


def template_main(config: Any = None) -> list[dict[str, Any]]:
    """Returns the shown rows: source, input_ids, labels and the marked text."""
    if isinstance(config, (list, tuple)):
        if config[:1] != ["show"]:
            raise ConfigError(USAGE)
        config = list(config[1:])
    cfg = TemplateShowConfig.from_any(config)
    load_plugins(cfg.plugin)
    from ..models import load_tokenizer
    from ..templates import get_template

    info = model_info(cfg)
    tokenizer = load_tokenizer(info, cfg.trust_remote_code)
    template = get_template(tokenizer, info, system=cfg.system, max_length=cfg.max_length,
                            truncation_strategy=cfg.truncation_strategy)
    color = cfg.color if cfg.color is not None else (sys.stdout.isatty() and not env.no_color())
    shown = []
    for source, sample in _first_rows(cfg):
        got = encode_row(template, sample, source, cfg.task, cfg.truncation_strategy, strict=False)
        if got["error"]:
            print(f"--- {source}: not encoded: {got['error']}\n")
            continue
        text = mark(tokenizer, got["input_ids"], got["labels"], color)
        trained = sum(1 for x in got["labels"] if x != IGNORE)
        print(f"--- {source}: {len(got['input_ids'])} tokens, {trained} trained "
              f"({'green' if color else '[[marked]]'})\n{text}\n")
        shown.append({"source": source, "input_ids": got["input_ids"], "labels": got["labels"], "text": text})
    if not shown:
        print("no row could be shown (see the messages above)")
    return shown


def _first_rows(cfg: TemplateShowConfig) -> Iterator[tuple[str, dict]]:
    """The first --rows valid rows; bad rows are printed with their problem rather than stopping the command."""
    load_extensions(cfg)
    cfg.strict = False
    report = DataReport()
    n = 0
    for item in iter_canonical(resolve_sources(cfg.dataset, cfg), cfg, report, cfg.task):
        for problem in report.problems:
            print(f"--- skipped: {problem}\n")
        report.problems.clear()
        yield item["source"], json.loads(item["sample"])
        n += 1
        if n >= cfg.rows:
            return
    for problem in report.problems:
        print(f"--- skipped: {problem}\n")


def mark(tokenizer: Any, ids: list[int], labels: list[int], color: bool) -> str:
    """Decode runs of trained and untrained tokens separately and mark the trained runs."""
    out, start = [], 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or (labels[i] != IGNORE) != (labels[start] != IGNORE):
            piece = tokenizer.decode(ids[start:i], skip_special_tokens=False)
            if labels[start] != IGNORE:
                piece = f"{GREEN}{piece}{RESET}" if color else f"[[{piece}]]"
            out.append(piece)
            start = i
    return "".join(out)
