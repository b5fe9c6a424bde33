"""A model's shape as the planner needs it, read from a config.json dict (a local folder, a hub config, or the stored
table of registered models); no weights are read."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..utils.errors import ConfigError

TEXT_KEYS = ("text_config", "llm_config", "thinker_config")
VISION_KEYS = ("vision_config", "visual", "vision_tower_config", "audio_config")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    extra_params: float = 0.0      # vision/audio tower, projector (not LoRA-targeted by default)
    media_tokens: int = 0          # tokens one typical image/clip becomes
    modality: str = "text"
    source: str = ""

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    def linear_shapes(self) -> list[tuple[int, int]]:
        """(in, out) of the linear layers of one decoder layer: q, k, v, o, gate, up, down."""
        h, i = self.hidden, self.intermediate
        return [(h, self.q_dim), (h, self.kv_dim), (h, self.kv_dim), (self.q_dim, h), (h, i), (h, i), (i, h)]

    @property
    def layer_linear_params(self) -> int:
        return sum(a * b for a, b in self.linear_shapes())

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def head_params(self) -> int:
        return 0 if self.tied else self.vocab * self.hidden

    @property
    def lm_params(self) -> int:
        norms = (2 * self.layers + 1) * self.hidden
        return self.layers * self.layer_linear_params + self.embedding_params + self.head_params + norms

    @property
    def total_params(self) -> float:
        return self.lm_params + self.extra_params


def _first(config: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if config.get(key) is not None:
            return config[key]
    return None


def _tower_params(config: dict[str, Any]) -> float:
    """Parameters of a vision/audio tower from its own config (layers x attention + MLP), 0 when absent."""
    total = 0.0
    for key in VISION_KEYS:
        sub = config.get(key)
        if not isinstance(sub, dict):
            continue
        h = _first(sub, "hidden_size", "embed_dim", "d_model", "width") or 0
        layers = _first(sub, "num_hidden_layers", "depth", "layers", "encoder_layers") or 0
        inter = _first(sub, "intermediate_size", "encoder_ffn_dim") or 4 * h
        total += layers * (4 * h * h + 2 * h * inter)
    return total


def spec_from_config(name: str, config: dict[str, Any], source: str = "") -> ModelSpec:
    """Build the spec; a multimodal config's language model is its text_config (or llm_config)."""
    text = next((config[k] for k in TEXT_KEYS if isinstance(config.get(k), dict)), config)
    if "text_config" in text and isinstance(text["text_config"], dict):  # Omni: thinker_config.text_config
        text = text["text_config"]
    hidden = _first(text, "hidden_size", "n_embd", "d_model")
    layers = _first(text, "num_hidden_layers", "n_layer", "num_layers")
    heads = _first(text, "num_attention_heads", "n_head")
    vocab = _first(text, "vocab_size", "padded_vocab_size") or _first(config, "vocab_size")
    if not all((hidden, layers, heads, vocab)):
        missing = [k for k, v in (("hidden_size", hidden), ("num_hidden_layers", layers),
                                  ("num_attention_heads", heads), ("vocab_size", vocab)) if not v]
        raise ConfigError(f"{source or name}: the config has no {', '.join(missing)}; the planner reads decoder "
                          "language models (config.json with those keys, or text_config for multimodal ones)")
    inter = _first(text, "intermediate_size", "n_inner", "ffn_hidden_size") or 4 * hidden
    if config.get("model_type") == "qwen" and "visual" in config:  # Qwen-VL-Chat: two halves of 22016
        inter //= 2
    kv = _first(text, "num_key_value_heads", "multi_query_group_num") or heads
    tied = config.get("tie_word_embeddings", text.get("tie_word_embeddings", False))
    extra = config.get("_extra_params")
    return ModelSpec(
        name=name, layers=int(layers), hidden=int(hidden), intermediate=int(inter), heads=int(heads),
        kv_heads=int(kv), head_dim=int(_first(text, "head_dim") or hidden // heads), vocab=int(vocab),
        tied=bool(tied), extra_params=float(_tower_params(config) if extra is None else extra),
        media_tokens=int(config.get("_media_tokens") or (256 if any(k in config for k in VISION_KEYS) else 0)),
        modality=config.get("_modality") or ("image" if any(k in config for k in VISION_KEYS) else "text"),
        source=config.get("_source") or source)
