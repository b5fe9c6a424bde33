"""Multimodal encoding: the model's own processor expands media tags into placeholder tokens.

How a row is encoded:
1. media is decoded (templates/media.py) and `<image>`/`<audio>`/`<video>` tags are checked against it; a row
   without tags gets its media at the start of the first user turn, where the families expect it;
2. the conversation is rendered by the processor's chat template (content parts) or, when it has none, by
   the tokenizer's template with each tag replaced by the family's placeholder string;
3. loss labels come from the rendered text exactly as for text models (assistant turns only);
4. the processor expands every placeholder into its run of media tokens and returns the model inputs
   (pixel values, grid sizes, audio features, ...); the text tokens are aligned with the expanded ones so
   labels carry over, and the expanded runs are remembered;
5. a row over --max_length is cut on its text only: a cut that would split or drop a media run is refused
   (the row is dropped with that reason), so training never meets "image features and image tokens do not
   match".
"""
from __future__ import annotations

import difflib
from typing import Any, Optional

from ..models.registry import BoxFormat
from ..models.tasks import cat_padded
from .encode import IGNORE, Encoded, Template, TemplateError, TooLongError
from .grounding import fill_objects, parse_objects
from .media import MediaError, MediaOptions, load_media
from .tags import PART_TYPES, TAG_RE, place_tags

# Placeholder strings per family for rendering without a processor chat template.
PLACEHOLDERS = {
    "qwen2_vl": {"<image>": "<|vision_start|><|image_pad|><|vision_end|>",
                 "<video>": "<|vision_start|><|video_pad|><|vision_end|>"},
    "qwen2_audio": {"<audio>": "<|audio_bos|><|AUDIO|><|audio_eos|>"},
    "qwen2_5_omni": {"<image>": "<|vision_bos|><|IMAGE|><|vision_eos|>", "<audio>": "<|audio_bos|><|AUDIO|><|audio_eos|>",
                     "<video>": "<|vision_bos|><|VIDEO|><|vision_eos|>"},
}
PLACEHOLDERS["qwen2_5_vl"] = PLACEHOLDERS["qwen3_vl"] = PLACEHOLDERS["qwen2_vl"]
PROCESSOR_KEYS = {"images": "images", "videos": "videos", "audios": "audio"}


class MediaTruncationError(TooLongError):
    """Cutting the row to --max_length would split or drop a media placeholder run."""

    def __init__(self, length: int, max_length: int, side: str):
        super().__init__(length, max_length)
        self.args = (f"{length} tokens is longer than --max_length {max_length}, and cutting on the {side} would cut "
                     "through media placeholder tokens; raise --max_length or lower --max_pixels/--max_frames",)


class MultimodalTemplate(Template):
    """A Template whose rows may carry images, audio and video, encoded by the model's processor."""

    def __init__(self, tokenizer: Any, processor: Any, family: Optional[str] = None, system: Optional[str] = None,
                 max_length: Optional[int] = None, truncation_strategy: str = "delete",
                 max_pixels: Optional[int] = None, min_pixels: Optional[int] = None, fps: Optional[float] = None,
                 max_frames: Optional[int] = None, grounding: Optional[BoxFormat] = None):
        super().__init__(tokenizer, system=system, max_length=max_length, truncation_strategy=truncation_strategy)
        self.processor = processor
        self.family = family
        self.grounding = grounding or BoxFormat()
        extractor = getattr(processor, "feature_extractor", None)
        self.media_options = MediaOptions(max_pixels=max_pixels, min_pixels=min_pixels, fps=fps,
                                          max_frames=max_frames,
                                          sampling_rate=getattr(extractor, "sampling_rate", None) or 16000)
        self.parts_mode = self._renders_parts()
        self.token_keys: set[str] = set()   # per-token model inputs (padded like input_ids)
        self.media_token_ids = _media_token_ids(processor, tokenizer)

    # ---- rendering ------------------------------------------------------------------------------
    def render(self, messages: list[dict], add_generation_prompt: bool = False, tools: Any = None) -> str:
        messages, tools = self.with_tools(messages, tools)
        messages = self._with_system(messages)
        kwargs = {"tools": tools} if tools else {}
        if self.parts_mode:
            conversation = [_to_parts(m) for m in messages]
            return self.processor.apply_chat_template(conversation, tokenize=False,
                                                      add_generation_prompt=add_generation_prompt, **kwargs)
        mapping = {tag: self._placeholder(tag) for tag in PART_TYPES}
        replaced = [{**m, "content": TAG_RE.sub(lambda t: mapping[t.group(0)], m["content"])} for m in messages]
        return self.tokenizer.apply_chat_template(replaced, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt, **kwargs)

    def _renders_parts(self) -> bool:
        """Does the processor's chat template take content parts and emit an image placeholder for them?

        Some processors carry a text-only template (the language model's own); those render strings, with
        the tags replaced by the placeholders (see `render`)."""
        if not getattr(self.processor, "chat_template", None):
            return False
        probe = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x"}]}]
        try:
            text = self.processor.apply_chat_template(probe, tokenize=False)
        except Exception:  # jinja errors of templates that expect string content
            return False
        placeholder = self._placeholder("<image>")
        return isinstance(text, str) and (placeholder in text or "<image>" in text)

    def _placeholder(self, tag: str) -> str:
        table = PLACEHOLDERS.get(self.family or "", {})
        if tag in table:
            return table[tag]
        kind = PART_TYPES[tag]
        if kind == "image" and getattr(self.processor, "boi_token", None):  # Gemma 3
            return self.processor.boi_token
        return getattr(self.processor, f"{kind}_token", None) or tag

    # ---- media ----------------------------------------------------------------------------------
    def prepare(self, messages: list[dict], media: Optional[dict[str, list]],
                objects: Any = None) -> tuple[list[dict], dict[str, list]]:
        """Decode the media, check tags against it, place untagged media in the first user turn, and write the
        grounding `objects` into the text in this family's box notation."""
        media = {k: v for k, v in (media or {}).items() if v}
        loaded = load_media(media, self.media_options)
        messages = place_tags(messages, {k: len(v) for k, v in loaded.items()})
        parsed = parse_objects(objects, [m["content"] for m in messages])
        if parsed is not None:
            images = loaded.get("images", [])
            sizes = [image.info.get("source_size", image.size) for image in images]
            seen = [self._seen_size(image) for image in images] if self.grounding.coords == "pixels" else sizes
            messages = fill_objects(messages, parsed, self.grounding, sizes, seen)
        return messages, loaded

    def _seen_size(self, image: Any) -> tuple[int, int]:
        """(width, height) of an image as the model sees it: Qwen2-VL-style processors resize to a multiple of
        patch*merge within their pixel bounds (transformers' own `smart_resize`)."""
        proc = getattr(self.processor, "image_processor", None)
        patch, merge = getattr(proc, "patch_size", None), getattr(proc, "merge_size", None)
        if not (patch and merge):
            return image.size
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

        size = getattr(proc, "size", None) or {}
        low = getattr(proc, "min_pixels", None) or size.get("shortest_edge") or 56 * 56
        high = getattr(proc, "max_pixels", None) or size.get("longest_edge") or 28 * 28 * 1280
        height, width = smart_resize(image.height, image.width, factor=patch * merge, min_pixels=low,
                                     max_pixels=high)
        return width, height

    def _process(self, text: str, loaded: dict[str, list], add_special_tokens: bool = False) -> dict[str, Any]:
        kwargs: dict[str, Any] = {PROCESSOR_KEYS[k]: v for k, v in loaded.items() if v}
        if loaded.get("audios"):
            kwargs["sampling_rate"] = self.media_options.sampling_rate
        try:
            return dict(self.processor(text=[text], return_tensors="pt", add_special_tokens=add_special_tokens,
                                       **kwargs))
        except MediaError:
            raise
        except (ValueError, TypeError, IndexError, RuntimeError) as exc:
            raise TemplateError(f"the processor could not encode this row's media: {exc}") from None

    # ---- training -------------------------------------------------------------------------------
    def encode(self, messages: list[dict], tools: Any = None, media: Optional[dict[str, list]] = None,
               objects: Any = None) -> Encoded:
        messages, loaded = self.prepare(messages, media, objects)
        text = self.render(messages, tools=tools)
        raw_ids, raw_labels = self._text_labels(text, self.assistant_spans(messages, text, tools=tools))
        out = self._process(text, loaded)
        ids = out.pop("input_ids")[0].tolist()
        out.pop("attention_mask", None)
        labels, runs = self._align(raw_ids, raw_labels, ids)
        extra = self._extras(out, len(ids))
        return self._truncate(Encoded(ids, labels, extra), runs)

    def _text_labels(self, text: str, spans: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
        labels = [IGNORE] * len(ids)
        for k, (start, _end) in enumerate(offsets):
            if any(a <= start < b for a, b in spans):
                labels[k] = ids[k]
        return ids, labels

    def _align(self, raw: list[int], raw_labels: list[int], full: list[int]) -> tuple[list[int], list[tuple]]:
        """Carry labels from the text tokens onto the expanded ones; return the media runs (start, end)."""
        labels = [IGNORE] * len(full)
        inside = [False] * len(full)
        matcher = difflib.SequenceMatcher(None, raw, full, autojunk=False)
        for op, a0, a1, b0, b1 in matcher.get_opcodes():
            if op == "equal":
                labels[b0:b1] = raw_labels[a0:a1]
            else:
                if any(label != IGNORE for label in raw_labels[a0:a1]):
                    raise TemplateError("media placeholders expanded inside an assistant turn; put media in user "
                                        "turns")
                inside[b0:b1] = [True] * (b1 - b0)
        for k, token in enumerate(full):
            if token in self.media_token_ids:
                inside[k] = True
                labels[k] = IGNORE
        runs, start = [], None
        for k, flag in enumerate(inside + [False]):
            if flag and start is None:
                start = k
            elif not flag and start is not None:
                runs.append((start, k))
                start = None
        return labels, runs

    def _extras(self, out: dict[str, Any], length: int) -> dict[str, Any]:
        extra = {}
        for key, value in out.items():
            if value is None:
                continue
            if hasattr(value, "shape") and value.ndim == 2 and value.shape == (1, length) and "type_ids" in key:
                self.token_keys.add(key)
            extra[key] = value
        return extra

    def _truncate(self, encoded: Encoded, runs: list[tuple[int, int]]) -> Encoded:
        return truncate_around(encoded, runs, self.max_length, self.truncation_strategy, self.token_keys)

    # ---- generation -----------------------------------------------------------------------------
    def encode_for_generation(self, messages: list[dict], tools: Any = None,
                              media: Optional[dict[str, list]] = None, objects: Any = None) -> Encoded:
        messages, loaded = self.prepare(messages, media, objects)
        text = self.render(messages, add_generation_prompt=True, tools=tools)
        out = self._process(text, loaded)
        ids = out.pop("input_ids")[0].tolist()
        out.pop("attention_mask", None)
        raw = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        _, runs = self._align(raw, [IGNORE] * len(raw), ids)
        encoded = Encoded(ids, [IGNORE] * len(ids), self._extras(out, len(ids)))
        if self.max_length and len(ids) > self.max_length and self.truncation_strategy != "left":
            raise TooLongError(len(ids), self.max_length)
        encoded = self._truncate(encoded, runs)
        return Encoded(encoded.input_ids, [], {k: v for k, v in encoded.extra.items() if k != "truncated_from"})

    def encode_prompt(self, messages: list[dict], tools: Any = None,
                      media: Optional[dict[str, list]] = None, objects: Any = None) -> list[int]:
        return self.encode_for_generation(messages, tools=tools, media=media, objects=objects).input_ids

    def collator(self) -> "MultimodalCollator":
        return MultimodalCollator(self.tokenizer.pad_token_id, self.token_keys)


def truncate_around(encoded: Encoded, runs: list[tuple[int, int]], limit: Optional[int], strategy: str,
                    token_keys: set[str] = frozenset()) -> Encoded:
    """Cut a row over `limit` on the side `strategy` names, refusing a cut through a media run (start, end)."""
    n = len(encoded)
    if not limit or n <= limit:
        return encoded
    if strategy not in ("left", "right"):
        raise TooLongError(n, limit)
    if strategy == "right" and runs and runs[-1][1] > limit:
        raise MediaTruncationError(n, limit, "right")
    if strategy == "left" and runs and runs[0][0] < n - limit:
        raise MediaTruncationError(n, limit, "left")
    keep = slice(n - limit, n) if strategy == "left" else slice(0, limit)
    extra = {k: (v[:, keep] if k in token_keys else v) for k, v in encoded.extra.items()}
    extra["truncated_from"] = n
    return Encoded(encoded.input_ids[keep], encoded.labels[keep], extra)


def _to_parts(message: dict) -> dict:
    parts = []
    for piece in TAG_RE.split(message["content"]):
        if piece in PART_TYPES:
            parts.append({"type": PART_TYPES[piece]})
        elif piece:
            parts.append({"type": "text", "text": piece})
    return {**message, "content": parts}


def _media_token_ids(processor: Any, tokenizer: Any) -> set[int]:
    ids = set()
    for name in ("image_token_id", "video_token_id", "audio_token_id", "image_token_index", "audio_token_index"):
        value = getattr(processor, name, None)
        if isinstance(value, int):
            ids.add(value)
    for name in ("image_token", "video_token", "audio_token"):
        token = getattr(processor, name, None)
        if isinstance(token, str):
            tid = tokenizer.convert_tokens_to_ids(token)
            if isinstance(tid, int) and tid != tokenizer.unk_token_id:
                ids.add(tid)
    return ids


class MultimodalCollator:
    """Pad ids/labels (right), pad per-token inputs, and join media tensors along the first dimension.

    Media tensors whose trailing sizes differ between rows (tiles per image, images per row) are zero-padded;
    the models skip all-zero padding (Idefics3) or use the sizes they are given (LLaVA-NeXT)."""

    def __init__(self, pad_token_id: int, token_keys: set[str]):
        self.pad_token_id = pad_token_id
        self.token_keys = token_keys

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        longest = max(len(r["input_ids"]) for r in rows)
        batch = {"input_ids": torch.full((len(rows), longest), self.pad_token_id, dtype=torch.long),
                 "labels": torch.full((len(rows), longest), IGNORE, dtype=torch.long),
                 "attention_mask": torch.zeros((len(rows), longest), dtype=torch.long)}
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            batch["input_ids"][i, :n] = torch.as_tensor(row["input_ids"])
            batch["labels"][i, :n] = torch.as_tensor(row["labels"])
            batch["attention_mask"][i, :n] = 1
        keys = {k for r in rows for k in r} - {"input_ids", "labels", "attention_mask", "source", "segments"}
        for key in sorted(keys):
            values = [r[key] for r in rows if key in r]
            if key in self.token_keys:
                padded = torch.zeros((len(rows), longest), dtype=values[0].dtype)
                for i, row in enumerate(rows):
                    if key in row:
                        padded[i, :row[key].shape[-1]] = row[key][0]
                batch[key] = padded
            elif all(torch.is_tensor(v) for v in values):
                batch[key] = cat_padded(values)
            elif all(isinstance(v, list) for v in values):
                batch[key] = [x for v in values for x in v]
        return batch
