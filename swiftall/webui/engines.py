"""The chat's models: engines loaded on first use through swiftall's own infer pipeline (same resolution, templates
and media rules as `swiftall infer`), kept for the next message, one per (model, adapters)."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator, Optional

from ..utils.errors import ConfigError

IMAGE = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
AUDIO = {".wav", ".mp3", ".flac", ".ogg", ".m4a", ".opus", ".webm"}
VIDEO = {".mp4", ".avi", ".mov", ".mkv", ".m4v"}
MAX_ENGINES = 3  # models kept loaded at once; the least recently used one is closed beyond that


def media_kind(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE:
        return "images"
    if suffix in AUDIO:
        return "audios"
    if suffix in VIDEO:
        return "videos"
    raise ConfigError(f"{Path(path).name}: not an image ({', '.join(sorted(IMAGE))}), audio "
                      f"({', '.join(sorted(AUDIO))}) or video ({', '.join(sorted(VIDEO))}) file")


def user_turn(text: str, files: list[str]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A user message and its media. Files whose tag (<image>, <audio>, <video>) is not in the text get it in
    front, so each file stays with the message it was attached to."""
    media: dict[str, list[str]] = {"images": [], "audios": [], "videos": []}
    for path in files:
        media[media_kind(path)].append(path)
    tags = {"images": "<image>", "audios": "<audio>", "videos": "<video>"}
    prefix = ""
    for kind, items in media.items():
        missing = len(items) - text.count(tags[kind])
        prefix += tags[kind] * max(missing, 0)
    return {"role": "user", "content": prefix + text}, media


class EnginePool:
    """Engines by (model, adapters); `base` holds the command line's options (dtype, template, generation...) and
    `factory` builds an engine from `swiftall infer` options, as the infer command would."""

    def __init__(self, base: dict[str, Any], factory: Any):
        self.factory = factory  # options of `swiftall infer` (a dict) -> an Engine; the pipeline provides it
        self.base = {k: v for k, v in base.items() if v not in (None, [], "")}
        self._engines: dict[tuple, Any] = {}
        self._lock = threading.Lock()

    def key(self, model: Optional[str], adapters: list[str]) -> tuple:
        return (model or None, tuple(adapters))

    def default_model(self) -> tuple[Optional[str], list[str]]:
        return self.base.get("model") or self.base.get("model_type"), list(self.base.get("adapters", []))

    def loaded(self) -> list[str]:
        return [f"{m or '(from adapter)'}{' + ' + ', '.join(a) if a else ''}" for m, a in self._engines]

    def get(self, model: Optional[str], adapters: list[str]) -> Any:
        """The engine for this model (loading it on first use). Raises SwiftallError with the command's message
        for a model that cannot be found or loaded."""
        engine = self.start(model, adapters)
        try:
            if hasattr(engine, "ready"):  # a model in a process of its own: wait for it, outside the lock
                engine.ready()
        except Exception:
            with self._lock:
                if self._engines.get(self.key(model, adapters)) is engine:
                    del self._engines[self.key(model, adapters)]
            engine.close()
            raise
        return engine

    def start(self, model: Optional[str], adapters: list[str]) -> Any:
        """The engine for this model, its loading started (the command line's model at start-up) if needed."""
        key = self.key(model, adapters)
        with self._lock:
            if key in self._engines:
                engine = self._engines.pop(key)
                self._engines[key] = engine  # most recently used last
                return engine
            engine = self._load(model, adapters)
            self._engines[key] = engine
            while len(self._engines) > MAX_ENGINES:
                self._engines.pop(next(iter(self._engines))).close()
            return engine

    def _load(self, model: Optional[str], adapters: list[str]) -> Any:
        return self.factory(self.options(model, adapters))

    def options(self, model: Optional[str], adapters: list[str]) -> dict[str, Any]:
        """The `swiftall infer` options of this model's engine: the command line's, with this model and adapters."""
        options = {k: v for k, v in self.base.items() if k not in ("model", "model_type", "adapters")}
        if model in (None, "", self.base.get("model"), self.base.get("model_type")):
            options.update({k: self.base[k] for k in ("model", "model_type") if k in self.base})
        else:  # another model chosen in the page: the command line's --model_type named the first one's family
            options["model"] = model
        options["adapters"] = list(adapters)
        if not (options.get("model") or options.get("model_type") or adapters):
            raise ConfigError("no model: give one in the Model field (a folder, a registered name such as "
                              "smollm2-135m-instruct, or a hub id) or start the page with --model")
        return options

    def stream(self, model: Optional[str], adapters: list[str], messages: list[dict[str, Any]],
               media: dict[str, list[str]], config: Any) -> Iterator[str]:
        from ..infer import InferRequest

        engine = self.get(model, adapters)
        request = InferRequest(messages=messages, **{k: v for k, v in media.items() if v})
        yield from engine.stream(request, config)

    def close(self, wait_s: float = 2.0) -> None:
        """Close the loaded engines. A model still loading in this process (it holds the lock) is not waited for
        beyond wait_s: Ctrl-C while the page loads its model ends the web UI at once, the loading thread with it.
        A model loading in its own process is ended."""
        if not self._lock.acquire(timeout=wait_s):
            return
        try:
            engines = list(self._engines.values())
            self._engines.clear()
        finally:
            self._lock.release()
        for engine in engines:
            engine.close()
