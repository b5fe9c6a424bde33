"""LLaVA (1.5): a CLIP/SigLIP vision tower, an MLP projector and a causal language model."""
from ..registry import ModelFamily, ModelMeta, register_family, register_model

register_family(ModelFamily(
    "llava", ("llava",), template="chatml", architectures=("LlavaForConditionalGeneration",),
    auto_class="AutoModelForImageTextToText", multimodal=True, vision_tower=("model.vision_tower",),
    aligner=("model.multi_modal_projector",), language_model=("model.language_model", "lm_head")))
register_model(ModelMeta("llava-1.5-7b", "llava", hf_id="llava-hf/llava-1.5-7b-hf", ms_id="llava-hf/llava-1.5-7b-hf"))
