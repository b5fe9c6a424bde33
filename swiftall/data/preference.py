"""Rows for alignment -> what TRL's trainers take, with file:line errors as in `sft`.

Kinds of data (TRL's conversational formats, so TRL renders them through the tokenizer's chat template):
- pairs (dpo/cpo/simpo/orpo/rm): {"prompt": [messages], "chosen": [assistant], "rejected": [assistant]}
  from `{"prompt", "chosen", "rejected", "images"?}` (texts or message lists) or from any sft format whose last
  turn is the chosen answer plus `rejected_response`.
- kto: {"prompt": [messages], "completion": [assistant], "label": bool} from `prompt`/`completion`/`label` or any
  sft format plus `label`.
- prompts (grpo/ppo): {"prompt": [messages], ...every other column} (e.g. `solution` for the accuracy reward).
- messages (gkd): {"messages": [...]}.
Each row is also encoded with swiftall's Template, which checks that the chat template renders it and measures
its length against --max_length before any model loads.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

from ..templates import Template, TemplateError, TooLongError
from ..utils.errors import DataError
from ..utils.log import get_logger
from .build import MAX_LISTED, DataReport, read_rows
from .convert import rename_columns, to_messages
from .read import Row
from .validate import validate_sample

logger = get_logger(__name__)
KINDS = ("pairs", "kto", "prompts", "messages")
MEDIA = ("images", "audios", "videos")


@dataclass
class AlignData:
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    report: DataReport


# ---- one row -> one sample ---------------------------------------------------------------------
# The data layer's to_messages reads every format (prompt/chosen/rejected, messages + rejected_response, HH
# transcripts, label, ...) into one canonical sample; here that sample is cut into what each trainer takes.
def _canonical(row: Row, task: str) -> dict:
    sample = to_messages(row, task)
    if "messages" not in sample:
        raise DataError(f"{row.where}: a plain 'text' row has no prompt and answer; give 'messages' or "
                        "'prompt'/'chosen'/'rejected'")
    validate_sample(row, sample, task)
    return sample


def _media(sample: dict) -> dict[str, list]:
    return {k: sample[k] for k in MEDIA if sample.get(k)}


def pair_sample(row: Row) -> dict:
    sample = _canonical(row, "rlhf")
    messages = sample["messages"]
    prompt, chosen = messages[:-1], [messages[-1]]
    rejected_messages = sample.get("rejected_messages")
    if rejected_messages:
        if rejected_messages[:-1] != prompt:
            raise DataError(f"{row.where}: the chosen and rejected conversations differ before their final answers; "
                            "give one shared prompt and two answers")
        rejected = [rejected_messages[-1]]
    else:
        rejected = [{"role": "assistant", "content": sample["rejected_response"]}]
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, **_media(sample)}


def kto_sample(row: Row) -> dict:
    sample = _canonical(row, "kto")
    messages = sample["messages"]
    return {"prompt": messages[:-1], "completion": [messages[-1]], "label": sample["label"], **_media(sample)}


def prompt_sample(row: Row) -> dict:
    """A prompt (a final assistant turn, if any, is dropped) plus every other column for the reward functions."""
    sample = _canonical(_prompt_row(row), "grpo")
    messages = sample["messages"]
    prompt = messages[:-1] if messages[-1]["role"] == "assistant" else messages
    if not prompt or prompt[-1]["role"] != "user":
        raise DataError(f"{row.where}: the prompt must end with a user turn to answer")
    extras = {k: v for k, v in sample.items() if k not in ("messages", "prompt")}
    return {"prompt": prompt, **extras}


def _prompt_row(row: Row) -> Row:
    """GRPO's bare `prompt` column (text or messages; also `question`/`problem`) as a `messages` row."""
    data = row.data
    if any(k in data for k in ("messages", "conversations", "instruction", "query")):
        return row
    key = next((k for k in ("prompt", "question", "problem") if k in data), None)
    if key is None:
        return row
    value = data[key]
    messages = [{"role": "user", "content": value}] if isinstance(value, str) else value
    rest = {k: v for k, v in data.items() if k != key}
    return Row({"messages": messages, **rest}, row.file, row.line)


def messages_sample(row: Row) -> dict:
    sample = _canonical(row, "sft")
    return {"messages": sample["messages"], **_media(sample)}


CONVERTERS: dict[str, Callable[[Row], dict]] = {"pairs": pair_sample, "kto": kto_sample, "prompts": prompt_sample,
                                                 "messages": messages_sample}


# ---- lengths through swiftall's Template ---------------------------------------------------------
def _with_system(template: Template, messages: list[dict]) -> list[dict]:
    if template.system is not None and messages and messages[0]["role"] != "system":
        return [{"role": "system", "content": template.system}, *messages]
    return messages


def measure(template: Template, sample: dict, kind: str) -> int:
    """Tokens of the longest sequence the sample trains on; TooLongError past --max_length (delete/error)."""
    media = {k: sample[k] for k in MEDIA if sample.get(k)} or None
    if kind == "prompts":
        return len(template.encode_prompt(sample["prompt"], media=media))
    if kind == "messages":
        return len(template.encode(sample["messages"], media=media))
    answers = [sample["chosen"], sample["rejected"]] if kind == "pairs" else [sample["completion"]]
    return max(len(template.encode(sample["prompt"] + a, media=media)) for a in answers)


def convert_rows(rows: list[Row], template: Template, args: Any, kind: str, report: DataReport) -> list[dict]:
    strategy = getattr(args, "truncation_strategy", "delete")
    convert = CONVERTERS[kind]
    out = []
    for row in rows:
        report.read += 1
        try:
            rename_columns(row, getattr(args, "columns", {}) or {})
            sample = convert(row)
            sample = _apply_system(template, sample, kind)
            length = measure(template, sample, kind)
        except TooLongError as exc:
            if strategy == "error":
                raise DataError(f"{row.where}: {exc}; raise --max_length or use --truncation_strategy delete") from None
            report.drop("longer than --max_length", f"{row.where}: {exc}")
            continue
        except (DataError, TemplateError) as exc:
            message = str(exc) if str(exc).startswith(row.file) else f"{row.where}: {exc}"
            if getattr(args, "strict", True):
                raise DataError(message + "\n(pass --strict false to skip bad rows and report them)") from None
            report.drop(message.split(": ", 1)[-1].split(";")[0][:80], message)
            continue
        report.kept += 1
        report.lengths.append(length)
        out.append(sample)
    return out


def _apply_system(template: Template, sample: dict, kind: str) -> dict:
    key = "messages" if kind == "messages" else "prompt"
    return {**sample, key: _with_system(template, sample[key])}


def build_align_data(args: Any, template: Template, kind: str) -> AlignData:
    """--dataset/--val_dataset/--split_dataset_ratio -> TRL-ready rows; every problem names file:line."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    report = DataReport()
    train = convert_rows(read_rows(args.dataset, args), template, args, kind, report)
    val = convert_rows(read_rows(args.val_dataset, args), template, args, kind, report) if args.val_dataset else []
    if not train:
        raise DataError(f"every training row was dropped ({report.read} read):\n{report.summary()}\n"
                        + "\n".join(report.problems[:MAX_LISTED]))
    train, val = hold_out(train, val, args)
    if report.problems:
        logger.warning("dropped rows:\n  " + "\n  ".join(report.problems[:MAX_LISTED]))
    logger.info(report.summary())
    return AlignData(train, val, report)


def hold_out(train: list, val: list, args: Any) -> tuple[list, list]:
    """Without validation rows, --split_dataset_ratio holds out a seeded (--data_seed) share of the training rows."""
    if val or args.split_dataset_ratio <= 0:
        return train, val
    order = list(range(len(train)))
    random.Random(args.data_seed).shuffle(order)
    held = set(order[: max(1, int(len(train) * args.split_dataset_ratio))])
    return [r for i, r in enumerate(train) if i not in held], [train[i] for i in sorted(held)]

