"""Gemma 3 (4B and up): a SigLIP vision tower and a pooling projector; image tokens attend bidirectionally."""
from ..registry import ModelFamily, ModelMeta, register_family, register_model

register_family(ModelFamily(
    "gemma3_vl", ("gemma3",), template="gemma", architectures=("Gemma3ForConditionalGeneration",),
    auto_class="AutoModelForImageTextToText", multimodal=True, vision_tower=("model.vision_tower",),
    aligner=("model.multi_modal_projector",), language_model=("model.language_model", "lm_head")))
for size in ("4b", "12b", "27b"):
    register_model(ModelMeta(f"gemma3-{size}-it", "gemma3_vl", hf_id=f"google/gemma-3-{size}-it",
                             ms_id=f"LLM-Research/gemma-3-{size}-it"))
