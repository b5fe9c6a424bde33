"""Qwen3-VL: Qwen3 language model, a vision tower with DeepStack mergers feeding several LLM layers."""
from ..registry import ModelFamily, ModelMeta, register_family, register_model
from .qwen2_vl import QWEN_BOXES

register_family(ModelFamily(
    "qwen3_vl", ("qwen3_vl",), template="chatml", architectures=("Qwen3VLForConditionalGeneration",),
    auto_class="AutoModelForImageTextToText", multimodal=True, vision_tower=("model.visual",),
    aligner=("model.visual.merger", "model.visual.deepstack_merger_list"),
    language_model=("model.language_model", "lm_head"),
    notes="images and videos; --max_pixels bounds the image tokens (one per 32x32 pixels)",
    grounding=QWEN_BOXES))  # Qwen3-VL went back to 0-1000 relative coordinates
for size in ("2b", "4b", "8b"):
    repo = f"Qwen/Qwen3-VL-{size.upper()}-Instruct"
    register_model(ModelMeta(f"qwen3-vl-{size}-instruct", "qwen3_vl", hf_id=repo, ms_id=repo))
