"""Interactive multi-turn chat on a terminal: /clear forgets the conversation, /exit leaves.

A message with <image>, <audio> or <video> tags asks for one path or URL per tag (multimodal models). Media given
up front (`swiftall infer --images a.png`) belongs to the first message of each conversation: its tags take those
items first, and items left without a tag are placed at the start of that message.

Ctrl-C while an answer is generated stops that answer (the turn is forgotten) and returns to the prompt; Ctrl-C at the
prompt leaves the chat by raising KeyboardInterrupt (the command exits with status 130); Ctrl-D leaves normally."""
from __future__ import annotations

from typing import Callable, Optional

from ..utils.errors import SwiftallError
from .engine import Engine, InferRequest, RequestConfig

HELP = ("Type a message. /clear starts a new conversation, /exit quits (or Ctrl-D; Ctrl-C stops an answer). "
        "Put <image>, <audio> or <video> in a message to attach media.")
MEDIA_TAGS = {"<image>": "images", "<audio>": "audios", "<video>": "videos"}


def run_chat(engine: Engine, config: RequestConfig, stream: bool = True, system: Optional[str] = None,
             read: Callable[[str], str] = input, write: Callable[[str], None] = print,
             media: Optional[dict[str, list[str]]] = None) -> list[dict]:
    """Returns the last conversation (useful to tests and notebooks). `media`: {"images": [...], ...} for the first
    message of each conversation."""
    write(HELP)
    preset = {field: list(items) for field, items in (media or {}).items() if items}
    if preset:
        write("(attached to your first message: " + ", ".join(i for items in preset.values() for i in items) + ")")
    history: list[dict] = []
    pending = dict(preset)
    media = {field: [] for field in MEDIA_TAGS.values()}
    while True:
        try:
            text = read("<<< ")
            command = text.strip()
            if command in ("/exit", "/quit", "exit", "quit"):
                return history
            if command == "/clear":
                history, media, pending = [], {field: [] for field in MEDIA_TAGS.values()}, dict(preset)
                write("(conversation cleared)")
                continue
            if not command:
                continue
            text, added = _ask_for_media(text, read, pending)
        except EOFError:
            write("")
            return history
        except KeyboardInterrupt:
            write("")
            raise
        request = InferRequest(messages=[*history, {"role": "user", "content": text}],
                               **{k: media[k] + added[k] for k in media})
        try:
            answer = _answer(engine, request, config, stream, write)
        except SwiftallError as exc:  # e.g. media for a text-only model: say so, forget the turn, go on
            write(f"error: {exc}")
            continue
        except KeyboardInterrupt:  # the engine has cancelled the answer; the conversation goes on without this turn
            write("\n(answer stopped; Ctrl-C again at the prompt quits)")
            continue
        history += [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]
        pending = {}
        for field, items in added.items():
            media[field] += items


def _answer(engine: Engine, request: InferRequest, config: RequestConfig, stream: bool,
            write: Callable[[str], None]) -> str:
    if not stream:
        answer = engine.infer([request], config)[0].text
        write(f">>> {answer}")
        return answer
    pieces = []
    write_inline(write, ">>> ")
    answer = engine.stream(request, config)
    try:
        for piece in answer:
            pieces.append(piece)
            write_inline(write, piece)
    finally:  # closed on Ctrl-C too: the engine cancels the answer
        getattr(answer, "close", lambda: None)()
    write("")
    return "".join(pieces)


def _ask_for_media(text: str, read: Callable[[str], str],
                   pending: Optional[dict[str, list[str]]] = None) -> tuple[str, dict[str, list[str]]]:
    """One path or URL per tag, in the order the tags appear: `pending` items first, then asked for. Pending items
    left without a tag get one at the start of the text. -> (text, media of this message)"""
    queue = {field: list(items) for field, items in (pending or {}).items()}
    added: dict[str, list[str]] = {field: [] for field in MEDIA_TAGS.values()}
    for _, tag in sorted((pos, tag) for tag in MEDIA_TAGS for pos in _occurrences(text, tag)):
        field, kind = MEDIA_TAGS[tag], tag.strip("<>")
        if queue.get(field):
            added[field].append(queue[field].pop(0))
            continue
        article = "an" if kind[0] in "aeiou" else "a"
        added[field].append(read(f"Input {article} {kind} path or URL <<< ").strip())
    prefix = ""
    for tag, field in MEDIA_TAGS.items():
        left = queue.get(field, [])
        prefix += tag * len(left)
        added[field] = left + added[field]
    return prefix + text, added


def _occurrences(text: str, tag: str) -> list[int]:
    found, start = [], text.find(tag)
    while start != -1:
        found.append(start)
        start = text.find(tag, start + 1)
    return found


def write_inline(write: Callable[[str], None], piece: str) -> None:
    if write is print:
        print(piece, end="", flush=True)
    else:
        write(piece)
