"""Chat tab: multi-turn streaming chat with the model (and adapters) from the command line or chosen in the page,
with a system prompt, sampling settings, image/audio/video attachments, and up to two more models answering the
same message side by side. Also the `/chat` API endpoint (message in, streamed answer out) for gradio_client."""
from __future__ import annotations

import shlex
import time
from typing import Any, Iterator, Optional

from ...utils.errors import ConfigError, SwiftallError
from ..engines import EnginePool, user_turn
from ..forms import error_text

SLOTS = 3  # the main model and two to compare
UPDATE_EVERY_S = 0.1  # streamed text reaches the page at most 10 times a second: each update costs an event


def coalesced(pieces: Iterator[str], every_s: float = UPDATE_EVERY_S) -> Iterator[str]:
    """The pieces joined so that at most one is yielded per `every_s` (the last one as soon as the stream ends)."""
    pending, last = "", time.perf_counter()
    for piece in pieces:
        pending += piece
        if pending and time.perf_counter() - last >= every_s:
            yield pending
            pending, last = "", time.perf_counter()
    if pending:
        yield pending


def _split(text: str, field: str) -> list[str]:
    try:
        return shlex.split(text or "")
    except ValueError as exc:  # an unclosed quote
        raise ConfigError(f"{field}: {exc} in {text!r}; quote paths with spaces as on a command line") from None


def _adapters(text: str) -> list[str]:
    return _split(text, "--adapters")


def _slots(model: str, adapters: str, compare: str) -> list[tuple[Optional[str], list[str]]]:
    """(model, adapters) of each answer: the Model/--adapters fields, then one per line of the Compare field."""
    slots = [(model.strip() or None, _adapters(adapters))]
    lines = [line for line in (compare or "").splitlines() if line.strip()]
    if len(lines) > SLOTS - 1:
        raise ConfigError(f"Compare: {len(lines)} lines, at most {SLOTS - 1} models answer beside the main one")
    for number, line in enumerate(lines, 1):
        parts = _split(line, f"Compare line {number}")
        slots.append((parts[0], parts[1:]))
    return slots


def _slot_name(index: int, model: Optional[str]) -> str:
    return f"--model {model or '(from the adapter)'}" if index == 0 else f"Compare line {index} ({model})"


def _request_config(max_new_tokens: Any, temperature: Any, top_p: Any) -> Any:
    from ...infer import RequestConfig

    if max_new_tokens is not None and (float(max_new_tokens) < 1 or float(max_new_tokens) != int(max_new_tokens)):
        raise ConfigError(f"--max_new_tokens: expected a whole number of at least 1, got {max_new_tokens}")
    return RequestConfig(max_new_tokens=int(max_new_tokens or 512),
                         temperature=None if temperature is None else float(temperature),
                         top_p=None if top_p in (None, 0) else float(top_p))


def _display(turns: list[dict[str, Any]], files: list[list[str]]) -> list[dict[str, Any]]:
    """The chat as the Chatbot shows it: each user turn's attachments, then its text."""
    shown, user_index = [], 0
    for turn in turns:
        if turn["role"] == "user":
            for path in files[user_index] if user_index < len(files) else []:
                shown.append({"role": "user", "content": {"path": path}})
            user_index += 1
        if turn["role"] != "system":
            shown.append({"role": turn["role"], "content": turn["content"] or "…"})
    return shown


def attach(path: Optional[str], message: Optional[dict]) -> dict:
    """The message box's value with `path` (a webcam snapshot or recording) added to its files."""
    message = dict(message or {})
    files = [f if isinstance(f, str) else f.get("path") for f in message.get("files") or []]
    if path and path not in files:
        files.append(path)
    return {"text": message.get("text") or "", "files": files}


class ChatTab:
    def __init__(self, gr: Any, pool: EnginePool, t: Any, model_choices: list[str], defaults: dict[str, Any]):
        self.gr, self.pool, self.t = gr, pool, t
        self.model_choices, self.defaults = model_choices, defaults

    def build(self) -> None:
        gr, t = self.gr, self.t
        model, adapters = self.pool.default_model()
        with gr.Row():
            self.model = gr.Dropdown(choices=self.model_choices, value=model, allow_custom_value=True, scale=3,
                                     label="--model", elem_id="chat-model")
            self.adapters = gr.Textbox(value=" ".join(shlex.quote(a) for a in adapters), label="--adapters", scale=3,
                                       elem_id="chat-adapters")
            self.load = gr.Button(t("load_model"), scale=1, elem_id="chat-load")
        self.status = gr.Markdown(elem_id="chat-status")
        with gr.Accordion(t("sampling"), open=False):
            self.system = gr.Textbox(value=self.defaults.get("system") or "", label=t("system"), elem_id="chat-system")
            with gr.Row():
                self.temperature = gr.Slider(0, 2, value=self.defaults.get("temperature") or 0.0, step=0.05,
                                             label="--temperature", elem_id="chat-temperature")
                self.top_p = gr.Slider(0, 1, value=self.defaults.get("top_p") or 1.0, step=0.05, label="--top_p")
                self.max_new_tokens = gr.Number(value=self.defaults.get("max_new_tokens") or 512, precision=0,
                                                label="--max_new_tokens", elem_id="chat-max-new-tokens")
        with gr.Accordion(t("compare"), open=False):
            self.compare = gr.Textbox(lines=2, label=t("compare_hint"), elem_id="chat-compare")
        with gr.Row():
            self.bots = [gr.Chatbot(label=t("assistant") if i == 0 else f"{t('assistant')} {i + 1}", height=420,
                                    visible=i == 0, elem_id=f"chat-bot-{i}") for i in range(SLOTS)]
        self.box = gr.MultimodalTextbox(placeholder=t("message_hint"), label=t("message"), file_count="multiple",
                                        sources=["upload", "microphone"], elem_id="chat-input")
        self._camera()
        self.clear = gr.Button(t("clear"), elem_id="chat-clear")
        self.state = gr.State({"turns": [[] for _ in range(SLOTS)], "files": [], "media": {}})
        self._wire()

    def _camera(self) -> None:
        """A webcam snapshot (the message box itself offers upload and microphone), attached to the message being
        written. Webcam video is not offered: Chromium records WebM, which needs ffmpeg to become a video the
        models' processors read; record a video file and upload it instead."""
        gr, t = self.gr, self.t
        with gr.Accordion(t("camera"), open=False):
            self.snapshot = gr.Image(sources=["webcam"], type="filepath", label=t("snapshot"), elem_id="chat-webcam")
        self.snapshot.change(attach, [self.snapshot, self.box], self.box, api_visibility="private")

    def _wire(self) -> None:
        gr = self.gr
        inputs = [self.box, self.state, self.model, self.adapters, self.system, self.temperature, self.top_p,
                  self.max_new_tokens, self.compare]
        outputs = [*self.bots, self.state, self.box, self.status]
        self.box.submit(self.respond, inputs, outputs, api_visibility="private")
        self.clear.click(self.reset, None, [*self.bots, self.state, self.status], api_visibility="private")
        self.load.click(self.load_model, [self.model, self.adapters], self.status, api_visibility="private")
        gr.api(self.chat_api, api_name="chat")

    def reset(self) -> tuple:
        return (*[[] for _ in range(SLOTS)], {"turns": [[] for _ in range(SLOTS)], "files": [], "media": {}}, "")

    def load_model(self, model: str, adapters: str) -> str:
        try:
            self.pool.get(model or None, _adapters(adapters))
        except Exception as exc:  # shown in the page, never a traceback
            return f"**Error:** {error_text(exc)}"
        return f"loaded: {model or '(model of the adapter)'}"

    def respond(self, message: dict, state: dict, model: str, adapters: str, system: str, temperature: float,
                top_p: float, max_new_tokens: float, compare: str) -> Iterator[tuple]:
        gr = self.gr
        text, files = (message or {}).get("text", "") or "", list((message or {}).get("files") or [])
        files = [f if isinstance(f, str) else f.get("path") for f in files]
        shown = [_display(turns, state["files"]) for turns in state["turns"]]
        try:
            slots = _slots(model or "", adapters, compare)
            turn, media = user_turn(text, files)
            config = _request_config(max_new_tokens, temperature, top_p)
        except SwiftallError as exc:
            yield (*shown, state, gr.update(), f"**Error:** {exc}")
            return
        if not text.strip() and not files:
            yield (*shown, state, gr.update(), "")
            return
        state["files"].append(files)
        for kind, items in media.items():
            state["media"].setdefault(kind, []).extend(items)
        visible = [i < len(slots) for i in range(SLOTS)]
        for index, (slot_model, slot_adapters) in enumerate(slots):
            turns = state["turns"][index]
            turns.append(dict(turn))
            answer = {"role": "assistant", "content": ""}
            messages = ([{"role": "system", "content": system}] if system else []) + list(turns)
            turns.append(answer)
            try:
                for piece in coalesced(self.pool.stream(slot_model, slot_adapters, messages, state["media"], config)):
                    answer["content"] += piece
                    shown[index] = _display(turns, state["files"])
                    yield (*self._updates(shown, visible), state, None, "")
            except Exception as exc:  # a model that cannot load or answer: its message, in the page
                turns.pop()
                turns.pop()
                yield (*self._updates(shown, visible), state, None,
                       f"**Error ({_slot_name(index, slot_model)}):** {error_text(exc)}")
                return
            shown[index] = _display(turns, state["files"])
        yield (*self._updates(shown, visible), state, None, "")

    def _updates(self, shown: list, visible: list) -> list:
        return [self.gr.update(value=value, visible=v) for value, v in zip(shown, visible)]

    def chat_api(self, message: str, system: str = "", max_new_tokens: int = 128, temperature: float = 0.0
                 ) -> Iterator[str]:
        """One question to the page's model; yields the answer so far as it is generated."""
        model, adapters = self.pool.default_model()
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": message}]
        answer = ""
        try:
            config = _request_config(max_new_tokens, temperature, None)
            for piece in coalesced(self.pool.stream(model, adapters, messages, {}, config)):
                answer += piece
                yield answer
        except SwiftallError as exc:
            raise self.gr.Error(str(exc)) from None
