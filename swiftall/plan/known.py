"""The shapes of the registered models, so `swiftall plan` and `swiftall init` work offline without their weights.

Each row holds the language model's numbers as its published config.json gives them (num_hidden_layers,
hidden_size, intermediate_size, num_attention_heads, num_key_value_heads, head_dim, vocab_size,
tie_word_embeddings) and, for multimodal models, the parameters outside the language model (vision/audio tower,
projector; Omni's talker too) and the media tokens one typical item becomes. These were typed from the model
cards' configs; `tests/test_plan.py` checks the embedded model's row against its real config.json and every row's
parameter count against the size in its name. A local folder or a hub config always wins over this table.
"""
from __future__ import annotations

from typing import Any, Optional

# name: (layers, hidden, intermediate, heads, kv_heads, head_dim or 0 (hidden/heads), vocab, tied,
#        params outside the LM, media tokens per item, modality)
Row = tuple[int, int, int, int, int, int, int, bool, float, int, str]
KNOWN: dict[str, Row] = {
    "smollm2-135m-instruct": (30, 576, 1536, 9, 3, 64, 49152, True, 0, 0, "text"),
    "smollm2-360m-instruct": (32, 960, 2560, 15, 5, 64, 49152, True, 0, 0, "text"),
    "smollm2-1.7b-instruct": (24, 2048, 8192, 32, 32, 64, 49152, True, 0, 0, "text"),
    "gemma2-2b-it": (26, 2304, 9216, 8, 4, 256, 256000, True, 0, 0, "text"),
    "gemma3-1b-it": (26, 1152, 6912, 4, 1, 256, 262144, True, 0, 0, "text"),
    "llama3.2-1b-instruct": (16, 2048, 8192, 32, 8, 64, 128256, True, 0, 0, "text"),
    "llama3.2-3b-instruct": (28, 3072, 8192, 24, 8, 128, 128256, True, 0, 0, "text"),
    "llama3.1-8b-instruct": (32, 4096, 14336, 32, 8, 128, 128256, False, 0, 0, "text"),
    "mistral-7b-instruct-v0.3": (32, 4096, 14336, 32, 8, 128, 32768, False, 0, 0, "text"),
    "phi3.5-mini-instruct": (32, 3072, 8192, 32, 32, 96, 32064, False, 0, 0, "text"),
    "phi4-mini-instruct": (32, 3072, 8192, 24, 8, 128, 200064, True, 0, 0, "text"),
    "qwen2-0.5b-instruct": (24, 896, 4864, 14, 2, 64, 151936, True, 0, 0, "text"),
    "qwen2.5-0.5b-instruct": (24, 896, 4864, 14, 2, 64, 151936, True, 0, 0, "text"),
    "qwen2.5-1.5b-instruct": (28, 1536, 8960, 12, 2, 128, 151936, True, 0, 0, "text"),
    "qwen2.5-7b-instruct": (28, 3584, 18944, 28, 4, 128, 152064, False, 0, 0, "text"),
    "qwen3-0.6b": (28, 1024, 3072, 16, 8, 128, 151936, True, 0, 0, "text"),
    "qwen3-8b": (36, 4096, 12288, 32, 8, 128, 151936, False, 0, 0, "text"),
    "gemma3-4b-it": (34, 2560, 10240, 8, 4, 256, 262208, True, 0.42e9, 256, "image"),
    "gemma3-12b-it": (48, 3840, 15360, 16, 8, 256, 262208, True, 0.42e9, 256, "image"),
    "gemma3-27b-it": (62, 5376, 21504, 32, 16, 128, 262208, True, 0.42e9, 256, "image"),
    "idefics3-8b-llama3": (32, 4096, 14336, 32, 8, 128, 128259, False, 0.47e9, 1183, "image"),
    "smolvlm-256m-instruct": (30, 576, 1536, 9, 3, 64, 49280, True, 0.09e9, 320, "image"),
    "smolvlm-500m-instruct": (32, 960, 2560, 15, 5, 64, 49280, True, 0.10e9, 320, "image"),
    "smolvlm2-2.2b-instruct": (24, 2048, 8192, 32, 32, 64, 49280, True, 0.43e9, 1088, "video"),
    "internvl3-1b": (24, 896, 4864, 14, 2, 64, 151674, False, 0.30e9, 256, "image"),
    "internvl3-2b": (28, 1536, 8960, 12, 2, 128, 151674, False, 0.30e9, 256, "image"),
    "internvl3-8b": (28, 3584, 18944, 28, 4, 128, 151674, False, 0.31e9, 256, "image"),
    "llava-1.5-7b": (32, 4096, 11008, 32, 32, 128, 32064, False, 0.32e9, 576, "image"),
    "llava-v1.6-mistral-7b": (32, 4096, 14336, 32, 8, 128, 32064, False, 0.32e9, 2144, "image"),
    "qwen2-vl-2b-instruct": (28, 1536, 8960, 12, 2, 128, 151936, True, 0.67e9, 256, "video"),
    "qwen2-vl-7b-instruct": (28, 3584, 18944, 28, 4, 128, 152064, False, 0.67e9, 256, "video"),
    "qwen2-vl-72b-instruct": (80, 8192, 29568, 64, 8, 128, 152064, False, 0.67e9, 256, "video"),
    "qwen2.5-omni-3b": (36, 2048, 11008, 16, 2, 128, 151936, False, 2.2e9, 256, "audio"),
    "qwen2.5-omni-7b": (28, 3584, 18944, 28, 4, 128, 152064, False, 3.1e9, 256, "audio"),
    "qwen2.5-vl-3b-instruct": (36, 2048, 11008, 16, 2, 128, 151936, True, 0.67e9, 256, "video"),
    "qwen2.5-vl-7b-instruct": (28, 3584, 18944, 28, 4, 128, 152064, False, 0.67e9, 256, "video"),
    "qwen2.5-vl-32b-instruct": (64, 5120, 27648, 40, 8, 128, 152064, False, 0.67e9, 256, "video"),
    "qwen2.5-vl-72b-instruct": (80, 8192, 29568, 64, 8, 128, 152064, False, 0.67e9, 256, "video"),
    "qwen2-audio-7b-instruct": (32, 4096, 11008, 32, 32, 128, 156032, False, 0.64e9, 750, "audio"),
    "qwen3-vl-2b-instruct": (28, 2048, 6144, 16, 8, 128, 151936, True, 0.41e9, 256, "video"),
    "qwen3-vl-4b-instruct": (36, 2560, 9728, 32, 8, 128, 151936, True, 0.41e9, 256, "video"),
    "qwen3-vl-8b-instruct": (36, 4096, 12288, 32, 8, 128, 151936, False, 0.58e9, 256, "video"),
    "qwen-vl-chat": (32, 4096, 11008, 32, 32, 128, 151936, False, 1.94e9, 256, "image"),
}


def known_config(name: str) -> Optional[dict[str, Any]]:
    """A config dict in config.json's key names for a registered model, or None."""
    row = KNOWN.get(name.lower())
    if row is None:
        return None
    layers, hidden, inter, heads, kv, head_dim, vocab, tied, extra, media, modality = row
    return {"num_hidden_layers": layers, "hidden_size": hidden, "intermediate_size": inter,
            "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": head_dim or hidden // heads,
            "vocab_size": vocab, "tie_word_embeddings": tied, "_extra_params": extra, "_media_tokens": media,
            "_modality": modality, "_source": f"swiftall's stored config of {name}"}
