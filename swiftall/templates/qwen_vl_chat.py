"""Qwen-VL-Chat (the original 2023 Qwen-VL, remote code): images are written into the prompt as
`Picture N: <img>PATH_OR_URL</img>\\n`. The repo's own tokenizer turns each `<img>...</img>` span into its fixed run
of image tokens and the repo's model code reads the picture from that span, so swiftall's part is the text.

The text follows the repo's `make_context` (ChatML, turns joined by newlines, "You are a helpful assistant." when the
row has no system prompt) and is tokenized piece by piece, as `make_context` does, so the loss mask needs no offset
mapping (the repo's tokenizer is a slow, tiktoken-based one). Grounding `objects` use the family's notation
(`<ref>...</ref><box>(x1,y1),(x2,y2)</box>`, 0-1000).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from ..models.registry import BoxFormat
from .encode import IGNORE, Encoded, Template, TemplateError, TooLongError
from .grounding import fill_objects, parse_objects
from .media import MediaError, describe, load_image
from .multimodal import truncate_around
from .tags import place_tags

DEFAULT_SYSTEM = "You are a helpful assistant."
MAX_PATH_BYTES = 256      # the repo tokenizer's IMG_TOKEN_SPAN: a longer path or URL cannot be encoded


class QwenVLChatTemplate(Template):
    """Segments of text (trained or not) -> ids and labels with the model's own tokenizer."""

    def __init__(self, tokenizer: Any, system: Optional[str] = None, max_length: Optional[int] = None,
                 truncation_strategy: str = "delete", grounding: Optional[BoxFormat] = None, **_media_options: Any):
        self.tokenizer = tokenizer  # no fast-tokenizer requirement: labels come from the segments
        self.system = system
        self.max_length = max_length
        self.truncation_strategy = truncation_strategy
        self.grounding = grounding or BoxFormat()

    # ---- text ------------------------------------------------------------------------------------
    def segments(self, messages: list[dict], media: Optional[dict[str, list]] = None, objects: Any = None,
                 add_generation_prompt: bool = False, tools: Any = None) -> list[tuple[str, bool]]:
        """The conversation as (text, trained) pieces: the assistant answers (with their <|im_end|>) are trained."""
        if tools:
            raise TemplateError("Qwen-VL-Chat's prompt format has no tools; remove the row's 'tools'")
        messages = self.prepare(messages, media, objects)
        if not messages or messages[0]["role"] != "system":
            messages = [{"role": "system", "content": self.system or DEFAULT_SYSTEM}, *messages]
        out: list[tuple[str, bool]] = []
        for i, message in enumerate(messages):
            role, content = message["role"], message["content"]
            if role == "system" and i == 0:
                out.append((f"<|im_start|>system\n{content}<|im_end|>", False))
            elif role == "user":
                out.append((f"\n<|im_start|>user\n{content}<|im_end|>", False))
            elif role == "assistant":
                out += [("\n<|im_start|>assistant\n", False), (f"{content}<|im_end|>", True)]
            else:
                raise TemplateError(f"Qwen-VL-Chat's prompt format has no '{role}' turns; use system, user and "
                                    "assistant turns")
        if add_generation_prompt:
            out.append(("\n<|im_start|>assistant\n", False))
        return out

    def render(self, messages: list[dict], add_generation_prompt: bool = False, tools: Any = None,
               media: Optional[dict[str, list]] = None, objects: Any = None) -> str:
        return "".join(text for text, _ in self.segments(messages, media, objects, add_generation_prompt, tools))

    def prepare(self, messages: list[dict], media: Optional[dict[str, list]], objects: Any = None) -> list[dict]:
        """Tags -> `Picture N: <img>path</img>\\n` (numbered over the conversation); grounding objects written."""
        media = {k: v for k, v in (media or {}).items() if v}
        others = sorted(set(media) - {"images"})
        if others:
            raise TemplateError(f"field '{others[0]}': Qwen-VL-Chat reads images only; remove the row's {others[0]}")
        images = [_image_source(i, item) for i, item in enumerate(media.get("images", []))]
        messages = place_tags(messages, {"images": len(images)})
        parsed = parse_objects(objects, [m["content"] for m in messages])
        if parsed is not None:
            sizes = [load_image(path).size for path in images]
            messages = fill_objects(messages, parsed, self.grounding, sizes, sizes)
        numbered = iter(range(1, len(images) + 1))
        out = []
        for message in messages:
            pieces = message["content"].split("<image>")
            content = pieces[0]
            for piece in pieces[1:]:
                n = next(numbered)
                content += f"Picture {n}: <img>{images[n - 1]}</img>\n" + piece
            out.append({**message, "content": content})
        return out

    # ---- ids -------------------------------------------------------------------------------------
    def _ids(self, segments: list[tuple[str, bool]]) -> Encoded:
        ids: list[int] = []
        labels: list[int] = []
        for text, trained in segments:
            piece = list(self.tokenizer.encode(text, add_special_tokens=False))
            ids += piece
            labels += piece if trained else [IGNORE] * len(piece)
        return Encoded(ids, labels)

    def _image_runs(self, ids: list[int]) -> list[tuple[int, int]]:
        """(start, end) of each <img>...</img> span, which a cut must not split."""
        start_id = getattr(self.tokenizer, "img_start_id", None) or _token_id(self.tokenizer, "<img>")
        end_id = getattr(self.tokenizer, "img_end_id", None) or _token_id(self.tokenizer, "</img>")
        if start_id is None or end_id is None:
            return []
        runs, start = [], None
        for k, token in enumerate(ids):
            if token == start_id:
                start = k
            elif token == end_id and start is not None:
                runs.append((start, k + 1))
                start = None
        return runs

    def encode(self, messages: list[dict], tools: Any = None, media: Optional[dict[str, list]] = None,
               objects: Any = None) -> Encoded:
        encoded = self._ids(self.segments(messages, media, objects, tools=tools))
        return truncate_around(encoded, self._image_runs(encoded.input_ids), self.max_length,
                               self.truncation_strategy)

    def encode_for_generation(self, messages: list[dict], tools: Any = None, media: Optional[dict[str, list]] = None,
                              objects: Any = None) -> Encoded:
        encoded = self._ids(self.segments(messages, media, objects, add_generation_prompt=True, tools=tools))
        if self.max_length and len(encoded) > self.max_length and self.truncation_strategy != "left":
            raise TooLongError(len(encoded), self.max_length)
        cut = truncate_around(encoded, self._image_runs(encoded.input_ids), self.max_length, "left")
        return Encoded(cut.input_ids, [])

    def encode_prompt(self, messages: list[dict], tools: Any = None, media: Optional[dict[str, list]] = None,
                      objects: Any = None) -> list[int]:
        return self.encode_for_generation(messages, tools=tools, media=media, objects=objects).input_ids


def _image_source(i: int, item: Any) -> str:
    """What goes between <img> and </img>: an http(s) URL, or an existing file's absolute path."""
    where = f"field 'images[{i}]' ({describe(item)})"
    if not isinstance(item, (str, Path)) or str(item).startswith("data:") or len(str(item)) > 4096:
        raise TemplateError(f"{where}: Qwen-VL-Chat's own code reads each image from the path or URL written in the "
                            "prompt; give a file path or an http(s) URL (not base64 data or an in-memory image)")
    text = str(item)
    if not text.startswith(("http://", "https://")):
        path = Path(text).expanduser()
        if not path.is_file():
            raise MediaError(f"{where}: file not found: {path}")
        text = str(path.resolve())
    if len(text.encode()) > MAX_PATH_BYTES:
        raise TemplateError(f"{where}: the path is {len(text.encode())} bytes; Qwen-VL-Chat's tokenizer holds at most "
                            f"{MAX_PATH_BYTES} between <img> and </img>; move the file to a shorter path")
    return text


def _token_id(tokenizer: Any, token: str) -> Optional[int]:
    ids = tokenizer.encode(token, add_special_tokens=False)
    return ids[0] if len(ids) == 1 else None
