"""Interactive multi-turn chat on a terminal: /clear forgets the conversation, /exit leaves."""
from __future__ import annotations

from typing import Callable, Optional

from .engine import Engine, InferRequest, RequestConfig

HELP = "Type a message. /clear starts a new conversation, /exit quits."


def run_chat(engine: Engine, config: RequestConfig, stream: bool = True, system: Optional[str] = None,
             read: Callable[[str], str] = input, write: Callable[[str], None] = print) -> list[dict]:
    """Returns the last conversation (useful to tests and notebooks)."""
    write(HELP)
    history: list[dict] = []
    while True:
        try:
            text = read("<<< ")
        except (EOFError, KeyboardInterrupt):
            write("")
            return history
        command = text.strip()
        if command in ("/exit", "/quit", "exit", "quit"):
            return history
        if command == "/clear":
            history = []
            write("(conversation cleared)")
            continue
        if not command:
            continue
        history.append({"role": "user", "content": text})
        request = InferRequest(messages=list(history))
        if stream:
            pieces = []
            write_inline(write, ">>> ")
            for piece in engine.stream(request, config):
                pieces.append(piece)
                write_inline(write, piece)
            answer = "".join(pieces)
            write("")
        else:
            answer = engine.infer([request], config)[0].text
            write(f">>> {answer}")
        history.append({"role": "assistant", "content": answer})


def write_inline(write: Callable[[str], None], piece: str) -> None:
    if write is print:
        print(piece, end="", flush=True)
    else:
        write(piece)
