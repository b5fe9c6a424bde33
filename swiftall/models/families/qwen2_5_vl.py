"""Qwen2.5-VL: Qwen2-VL with window attention in the vision tower and absolute-time video positions."""
from dataclasses import replace

from ..registry import ModelFamily, ModelMeta, register_family, register_model
from .qwen2_vl import QWEN_BOXES

register_family(ModelFamily(
    "qwen2_5_vl", ("qwen2_5_vl",), template="chatml", architectures=("Qwen2_5_VLForConditionalGeneration",),
    auto_class="AutoModelForImageTextToText", multimodal=True, vision_tower=("model.visual",),
    aligner=("model.visual.merger",), language_model=("model.language_model", "lm_head"),
    notes="images and videos; --max_pixels bounds the image tokens (one per 28x28 pixels)",
    grounding=replace(QWEN_BOXES, coords="pixels")))  # absolute coordinates of the resized image
for size in ("3b", "7b", "32b", "72b"):
    repo = f"Qwen/Qwen2.5-VL-{size.upper()}-Instruct"
    register_model(ModelMeta(f"qwen2.5-vl-{size}-instruct", "qwen2_5_vl", hf_id=repo, ms_id=repo))
