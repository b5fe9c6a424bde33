"""Canonical samples -> token ids and labels through the template, as a `datasets.map` function (parallel with
--dataset_num_proc) or lazily per row (--lazy_tokenize). Every failure is returned with its place and reason so
the caller can stop (strict) or drop and count it."""
from __future__ import annotations

import base64
import io
import json
import re
from typing import Any

from ..templates import IGNORE, Template, TemplateError, TooLongError
from ..utils.errors import DataError
from ..utils.log import get_logger
from .report import TOO_LONG, ZERO_TRAINED

logger = get_logger(__name__)


# ---- canonical samples as JSON text (Arrow-friendly whatever the row holds) ------------------------------
def _jsonable(value: Any) -> Any:
    """Media decoded by `datasets` (PIL images, bytes, arrays) -> data URLs / lists, so nothing is lost."""
    if isinstance(value, (bytes, bytearray)):
        return "data:application/octet-stream;base64," + base64.b64encode(bytes(value)).decode()
    if hasattr(value, "save") and hasattr(value, "mode"):  # a PIL image
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    if isinstance(value, dict) and set(value) <= {"bytes", "path"}:
        return _jsonable(value["bytes"]) if value.get("bytes") else value.get("path")
    raise TypeError(f"cannot store a {type(value).__name__} in a dataset row")


def dumps(sample: dict[str, Any]) -> str:
    return json.dumps(sample, ensure_ascii=False, default=_jsonable)


# ---- encoding -------------------------------------------------------------------------------------------
def encode_sample(template: Template, sample: dict[str, Any], task: str = "sft") -> Any:
    """One canonical sample -> Encoded (raises DataError/TemplateError/TooLongError)."""
    if "messages" not in sample:
        if task != "pt":
            raise DataError("plain 'text' rows are for pre-training; this command trains on conversations "
                            "(give 'messages', or train on text with swiftall pt)")
        return _encode_text(template, sample["text"])
    media = {k: sample[k] for k in ("images", "audios", "videos") if sample.get(k)}
    grounding = {"objects": sample["objects"]} if sample.get("objects") else {}
    return template.encode(sample["messages"], tools=sample.get("tools"), media=media or None, **grounding)


def _encode_text(template: Template, text: str) -> Any:
    from ..templates import Encoded

    tok = template.tokenizer
    ids = list(tok(text, add_special_tokens=False)["input_ids"])
    if tok.eos_token_id is not None:
        ids.append(tok.eos_token_id)
    return template.truncate(Encoded(ids, list(ids)))


def encode_row(template: Template, sample: dict[str, Any], where: str, task: str, strategy: str,
               strict: bool) -> dict[str, Any]:
    """Encode one row; the result says what happened: ok, dropped (reason) or fatal (stop the run)."""
    out: dict[str, Any] = {"input_ids": [], "labels": [], "extra": {}, "error": None, "reason": None,
                           "fatal": False, "over": False, "truncated": False}
    try:
        encoded = encode_sample(template, sample, task)
    except TooLongError as exc:
        out.update(over=True, reason=TOO_LONG, fatal=strategy == "error",
                   error=f"{where}: {exc}; raise --max_length or pick --truncation_strategy left|right"
                   + ("" if strategy == "error" else " (this row was dropped: truncation_strategy delete)"))
        return out
    except (DataError, TemplateError) as exc:
        text = str(exc) if str(exc).startswith(where) else f"{where}: {exc}"
        out.update(error=text, reason=reason_of(str(exc)), fatal=strict)
        return out
    extra = dict(encoded.extra)
    if extra.pop("truncated_from", None) is not None:
        out.update(over=True, truncated=True)
    if encoded.trained_tokens == 0:
        out.update(reason=ZERO_TRAINED, error=f"{where}: no assistant tokens to train on"
                   + (" after truncation; raise --max_length or use --truncation_strategy left" if out["over"]
                      else "; check that the row ends with an assistant answer the chat template keeps"))
        return out
    out.update(input_ids=list(encoded.input_ids), labels=list(encoded.labels), extra=extra)
    return out


def reason_of(message: str) -> str:
    """A short reason for grouping drops: the message without its place, indices and advice."""
    text = re.sub(r"^.*?:\d+: ", "", message, count=1)
    text = re.split(r"; | \(", text, maxsplit=1)[0]
    return re.sub(r"\[\d+\]", "[]", text)[:90]


def encode_batch(batch: dict[str, list], template: Template, task: str, strategy: str, strict: bool
                 ) -> dict[str, list]:
    """`datasets.map(batched=True)` function: columns source, sample -> ids, labels and bookkeeping."""
    cols: dict[str, list] = {k: [] for k in ("input_ids", "labels", "source", "_error", "_reason", "_fatal",
                                             "_over", "_truncated", "_trained")}
    for where, text in zip(batch["source"], batch["sample"]):
        got = encode_row(template, json.loads(text), where, task, strategy, strict)
        cols["input_ids"].append(got["input_ids"])
        cols["labels"].append(got["labels"])
        cols["source"].append(where)
        cols["_error"].append(got["error"] or "")
        cols["_reason"].append(got["reason"] or "")
        cols["_fatal"].append(got["fatal"])
        cols["_over"].append(got["over"])
        cols["_truncated"].append(got["truncated"])
        cols["_trained"].append(sum(1 for x in got["labels"] if x != IGNORE))
    return cols


class LazyEncoded:
    """--lazy_tokenize: rows are encoded when the trainer asks for them (template extras such as pixel values
    included). A row that fails to encode is replaced by the next one, with a warning naming it."""

    def __init__(self, samples: Any, template: Template, task: str, strategy: str):
        self.samples, self.template, self.task, self.strategy = samples, template, task, strategy
        self.failed: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self)
        for step in range(n):
            i = (index + step) % n
            if i in self.failed:
                continue
            row = self.samples[i]
            got = encode_row(self.template, json.loads(row["sample"]), row["source"], self.task, self.strategy,
                             strict=False)
            if got["error"] is None:
                return {"input_ids": got["input_ids"], "labels": got["labels"], "source": row["source"],
                        **got["extra"]}
            self.failed[i] = got["error"]
            logger.warning(f"lazy_tokenize: skipping a row ({len(self.failed)} so far): {got['error']}")
        raise DataError("lazy_tokenize: no row of the dataset can be encoded; run swiftall prepare to see why")

    def __iter__(self):
        return (self[i] for i in range(len(self)))

