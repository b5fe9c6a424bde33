"""Embedding items with images, audio or video, encoded by a multimodal model's processor through the route chat
rows take (templates/multimodal.py), so training, evaluation, inference and serving encode an item alike.

- `as_item`: what `embed` accepts -> an item (models/tasks.py): a text; a list of {role, content} messages whose
  content is a text with `<image>`/`<audio>`/`<video>` tags or OpenAI content parts (`image_url`, `input_audio`,
  `video_url`, or transformers' `{"type": "image", "image": ...}`); a dict {"text"|"messages", "images", "audios",
  "videos"}; or an object with those attributes (an InferRequest). Items without media stay texts/message lists.
- `MediaEncoder`: a media item -> {"input_ids": [...], "pixel_values": ..., "image_grid_thw": ..., ...}. Its media
  are decoded (--max_pixels/--min_pixels/--fps/--max_frames), tags checked against them (untagged media go first),
  and it is rendered as a text item is (one message: its content, each tag replaced by the family's placeholder; a
  conversation: the processor's chat template); the processor then expands the placeholders and returns the media
  tensors. Over --max_length the text after the media is cut; a cut through the media's tokens is refused.
"""
from __future__ import annotations

from typing import Any, Optional

from ..models.tasks import MEDIA_KINDS, is_media, media_kinds
from ..utils.errors import ConfigError, DataError
from .encode import TemplateError
from .tags import TAG_RE

PART_KINDS = {"image_url": "images", "input_image": "images", "image": "images", "input_audio": "audios",
              "audio_url": "audios", "audio": "audios", "video_url": "videos", "video": "videos"}
TAG_OF = {"images": "<image>", "audios": "<audio>", "videos": "<video>"}
READERS = {"images": ("image_processor", "image processor"), "videos": ("video_processor", "video processor"),
           "audios": ("feature_extractor", "audio feature extractor")}


# ---- what callers give -> items ---------------------------------------------------------------------
def as_item(value: Any, where: str = "an item") -> Any:
    """A text, a message list, or a media item {"messages", "images"?, "audios"?, "videos"?, "source"}."""
    if isinstance(value, str):
        return value
    if not isinstance(value, (list, dict)) and hasattr(value, "messages"):  # an InferRequest
        value = {"messages": value.messages, **{k: getattr(value, k, None) for k in MEDIA_KINDS}}
    media: dict[str, list] = {}
    if isinstance(value, dict):
        text = value.get("messages", value.get("text", value.get("query")))
        for kind in MEDIA_KINDS:
            items = value.get(kind)
            if items:
                media[kind] = list(items) if isinstance(items, (list, tuple)) else [items]
        if isinstance(text, str):
            messages = [{"role": "user", "content": text}]
        elif isinstance(text, list):
            messages = _messages(text, media, where)
        else:
            raise ConfigError(f"{where}: give 'text' or 'messages' (and 'images', 'audios', 'videos'), got "
                              f"{sorted(value)}")
    elif isinstance(value, list):
        messages = _messages(value, media, where)
    else:
        raise ConfigError(f"{where}: an item to embed is a text, a list of messages or a dict with 'text'/'messages' "
                          f"and 'images'; got {type(value).__name__}")
    if not media:
        return value.get("text", value.get("query")) if isinstance(value, dict) and "messages" not in value \
            else messages
    if len(messages) == 1:
        messages = [{**messages[0], "role": "user"}]  # one message is its content; its media go in it
    return {"messages": messages, **media, "source": where}


def _messages(messages: list, media: dict[str, list], where: str) -> list[dict]:
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "content" not in m:
            raise ConfigError(f"{where}: message {i} must be an object with 'role' and 'content'")
        content = m["content"]
        if isinstance(content, list):
            content = _parts(content, media, f"{where}: message {i}")
        out.append({"role": m.get("role", "user"), "content": "" if content is None else str(content)})
    return out


def _parts(parts: list, media: dict[str, list], where: str) -> str:
    """OpenAI/transformers content parts -> text with a tag where each media part stood; the media collected."""
    texts = []
    for j, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("text", "input_text"):
            texts.append(str(part.get("text") or ""))
            continue
        if kind not in PART_KINDS:
            raise ConfigError(f"{where}, part {j}: unknown content part type {kind!r}; use text, image_url, "
                              "input_audio or video_url")
        slot = PART_KINDS[kind]
        payload = part.get(kind, part.get(slot[:-1]))
        if isinstance(payload, dict):
            if kind == "input_audio" and "data" in payload:
                payload = f"data:audio/{payload.get('format', 'wav')};base64,{payload['data']}"
            else:
                payload = payload.get("url") or payload.get("path") or payload.get("data")
        payload = payload if payload is not None else part.get("url", part.get("path"))
        if payload is None:
            raise ConfigError(f"{where}, part {j}: a {kind} part without its {slot[:-1]} (give its URL or path)")
        media.setdefault(slot, []).append(payload)
        texts.append(TAG_OF[slot])
    return "".join(texts)


# ---- media items -> model inputs ----------------------------------------------------------------------
class MediaEncoder:
    """Encodes media items with the model's processor; `check` refuses media the model cannot read (a text-only
    model has no processor at all) before any weights load."""

    def __init__(self, tokenizer: Any, family: Optional[str] = None, name: Optional[str] = None,
                 max_length: Optional[int] = None, **media_options: Any):
        self.processor = getattr(tokenizer, "processor", None)
        self.name = name or "this model"
        self.max_length = max_length
        self.template = None
        if self.processor is not None:
            from .multimodal import MultimodalTemplate

            self.template = MultimodalTemplate(tokenizer, self.processor, family=family,
                                               **{k: v for k, v in media_options.items() if v is not None})

    def check(self, item: Any, where: str) -> None:
        """ConfigError naming `where` when the item carries media the model has no processor for."""
        for kind in media_kinds(item):
            attr, what = READERS[kind]
            if self.processor is not None and getattr(self.processor, attr, None) is not None:
                continue
            reads = [k for k in MEDIA_KINDS if getattr(self.processor, READERS[k][0], None) is not None]
            which = "it is a text-only model" if self.processor is None else \
                f"its processor reads {', '.join(reads) or 'no media'}"
            raise ConfigError(f"{where}: gives {kind}, but {self.name} has no {what} ({which}); embed {kind} with "
                              f"a multimodal model that reads them (e.g. Qwen2-VL) or leave the {kind} out")

    def rows(self, items: list) -> list:
        """Items as `pad` takes them: token ids as they are, media items encoded."""
        return [self.encode(item) if is_media(item) else item for item in items]

    def encode(self, item: dict) -> dict[str, Any]:
        where = item.get("source") or "an item"
        self.check(item, where)
        assert self.template is not None
        media = {k: item[k] for k in MEDIA_KINDS if item.get(k)}
        try:
            messages, loaded = self.template.prepare(item["messages"], media)
            text = self._render(messages)
            out = self.template._process(text, loaded, add_special_tokens=True)
        except (DataError, TemplateError) as exc:  # MediaError is a DataError
            raise DataError(f"{where}: {exc}") from None
        ids = out.pop("input_ids")[0].tolist()
        out.pop("attention_mask", None)
        extra = {k: v for k, v in out.items() if hasattr(v, "shape")}
        return self._truncate(ids, extra, where)

    def _render(self, messages: list[dict]) -> str:
        if len(messages) == 1:
            return TAG_RE.sub(lambda t: self.template._placeholder(t.group(0)), messages[0]["content"])
        return self.template.render(messages)

    def _truncate(self, ids: list[int], extra: dict[str, Any], where: str) -> dict[str, Any]:
        limit = self.max_length
        if not limit or len(ids) <= limit:
            return {"input_ids": ids, **extra}
        media_at = [k for k, t in enumerate(ids) if t in self.template.media_token_ids]
        if media_at and media_at[-1] >= limit:
            raise DataError(f"{where}: {len(ids)} tokens with its media, longer than --max_length {limit}, and cutting "
                            "it would cut through the media's tokens; raise --max_length or lower --max_pixels "
                            "(--max_frames for video)")
        extra = {k: (v[..., :limit] if "type_ids" in k else v) for k, v in extra.items()}
        return {"input_ids": ids[:limit], **extra}


def media_encoder(tokenizer: Any, info: Any = None, max_length: Optional[int] = None,
                  media_options: Optional[dict[str, Any]] = None) -> MediaEncoder:
    """The encoder of a model (`info`: its ModelInfo, for the family's placeholders and the name in errors)."""
    family = getattr(info, "family", None)
    return MediaEncoder(tokenizer, family=family.name if family is not None else None,
                        name=getattr(info, "name", None), max_length=max_length, **(media_options or {}))
