"""Qwen2-VL: dynamic-resolution vision transformer whose patch merger is the aligner; M-RoPE positions."""
from ..registry import BoxFormat, ModelFamily, ModelMeta, register_family, register_model

# Qwen2-VL's grounding tokens; its boxes are 0-1000 of the image (Qwen2.5-VL: pixels of the resized image)
QWEN_BOXES = BoxFormat(ref="<|object_ref_start|>{ref}<|object_ref_end|>",
                       box="<|box_start|>({x1},{y1}),({x2},{y2})<|box_end|>", point="<|box_start|>({x},{y})<|box_end|>")

register_family(ModelFamily(
    "qwen2_vl", ("qwen2_vl",), template="chatml", architectures=("Qwen2VLForConditionalGeneration",),
    auto_class="AutoModelForImageTextToText", multimodal=True, vision_tower=("model.visual",),
    aligner=("model.visual.merger",), language_model=("model.language_model", "lm_head"),
    notes="images and videos; --max_pixels bounds the image tokens (one per 28x28 pixels)", grounding=QWEN_BOXES))
for size in ("2b", "7b", "72b"):
    repo = f"Qwen/Qwen2-VL-{size.upper()}-Instruct"
    register_model(ModelMeta(f"qwen2-vl-{size}-instruct", "qwen2_vl", hf_id=repo, ms_id=repo))
